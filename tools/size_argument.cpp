#include "tools/size_argument.h"

#include <climits>

#include "ravlt/error.h"

namespace ravlt::tools {

std::pair<int, int> parse_size(const std::string& text, const char* option) {
  const auto side = [&](const std::string& s) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != s.size()) {
      throw Error(std::string(option) + " '" + text +
                  "' is not HxW (e.g. 224x224) or a single side");
    }
    if (v <= 0 || v > INT_MAX / 8) {
      throw Error(std::string(option) + " '" + text + "': sides must be positive and reasonable");
    }
    return static_cast<int>(v);
  };
  const size_t x = text.find('x');
  if (x == std::string::npos) {
    const int s = side(text);
    return {s, s};
  }
  return {side(text.substr(0, x)), side(text.substr(x + 1))};
}

}  // namespace ravlt::tools
