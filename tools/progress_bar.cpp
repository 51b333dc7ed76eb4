#include "tools/progress_bar.h"

#include <unistd.h>

#include <cstdio>

namespace ravlt::tools {

ProgressBar::ProgressBar() : enabled_(::isatty(STDERR_FILENO) == 1) {}

ProgressBar::~ProgressBar() {
  finish();
}

void ProgressBar::update(std::string_view phase, double fraction) {
  if (!enabled_) return;
  const int percent = static_cast<int>(fraction * 100.0);
  if (phase == phase_ && percent == percent_) return;
  phase_ = std::string(phase);
  percent_ = percent;
  constexpr int kWidth = 30;
  const int filled = percent * kWidth / 100;
  std::fprintf(stderr, "\r%-10s [%s%s] %3d%%", phase_.c_str(),
               std::string(static_cast<size_t>(filled), '#').c_str(),
               std::string(static_cast<size_t>(kWidth - filled), ' ').c_str(), percent);
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (!enabled_ || percent_ < 0) return;
  std::fprintf(stderr, "\r%60s\r", "");
  std::fflush(stderr);
  percent_ = -1;
  phase_.clear();
}

}  // namespace ravlt::tools
