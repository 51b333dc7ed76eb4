// "HxW" or a single side, as the --size and --crop options take them.
#pragma once

#include <string>
#include <utility>

namespace ravlt::tools {

/// (height, width) of "HxW" or "N" (N x N). Throws ravlt::Error naming the
/// option on anything else or on a non-positive side.
std::pair<int, int> parse_size(const std::string& text, const char* option);

}  // namespace ravlt::tools
