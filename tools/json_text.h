// JSON string literals for the tools' --json output.
#pragma once

#include <string>

namespace ravlt::tools {

/// `text` as a quoted JSON string: quotes, backslashes and control
/// characters escaped; other bytes (UTF-8) passed through.
std::string json_string(const std::string& text);

}  // namespace ravlt::tools
