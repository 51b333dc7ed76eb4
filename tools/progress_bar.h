// A one-line progress display on standard error, drawn only when standard
// error is a terminal (logs and pipes stay clean).
#pragma once

#include <string>
#include <string_view>

namespace ravlt::tools {

class ProgressBar {
 public:
  ProgressBar();
  ~ProgressBar();
  /// Shows `phase` at `fraction` (0..1); redraws at most once per percent.
  void update(std::string_view phase, double fraction);
  /// Clears the line.
  void finish();

 private:
  bool enabled_;
  std::string phase_;
  int percent_ = -1;
};

}  // namespace ravlt::tools
