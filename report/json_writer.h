// A minimal streaming JSON writer for reports (inspect --json).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ravlt::report {

/// Builds one JSON document. Calls must nest correctly (begin/end pairs);
/// separators and string escaping are handled here.
class JsonWriter {
 public:
  JsonWriter& begin_object();
  JsonWriter& end_object();
  JsonWriter& begin_array();
  JsonWriter& end_array();
  JsonWriter& key(std::string_view k);
  JsonWriter& value(std::string_view v);
  JsonWriter& value(const char* v) { return value(std::string_view(v)); }
  JsonWriter& value(int64_t v);
  JsonWriter& value(uint64_t v);
  JsonWriter& value(int v) { return value(static_cast<int64_t>(v)); }
  JsonWriter& value(double v);
  JsonWriter& value(bool v);
  const std::string& str() const { return out_; }

 private:
  void separate();
  std::string out_;
  std::vector<bool> first_;  // per open container: no element written yet
  bool after_key_ = false;
};

/// `s` as a quoted JSON string.
std::string json_quote(std::string_view s);

}  // namespace ravlt::report
