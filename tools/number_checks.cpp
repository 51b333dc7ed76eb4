#include "tools/number_checks.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>

namespace ravlt::tools {
namespace {

// "" if `text` is a whole integer >= minimum, else what is wrong with it.
std::string check_integer(const std::string& text, long long minimum, const char* what) {
  errno = 0;
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE || value < minimum) {
    return "'" + text + "' is not " + what;
  }
  return "";
}

}  // namespace

const CLI::Validator& positive_integer() {
  static const CLI::Validator check(
      [](std::string& text) { return check_integer(text, 1, "a positive integer"); }, "POSITIVE",
      "positive integer");
  return check;
}

const CLI::Validator& non_negative_integer() {
  static const CLI::Validator check(
      [](std::string& text) { return check_integer(text, 0, "an integer >= 0"); }, "NONNEGATIVE",
      "non-negative integer");
  return check;
}

const CLI::Validator& non_negative_number() {
  static const CLI::Validator check(
      [](std::string& text) -> std::string {
        char* end = nullptr;
        const double value = std::strtod(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(value) ||
            value < 0) {
          return "'" + text + "' is not a number >= 0";
        }
        return "";
      },
      "NONNEGATIVE", "non-negative number");
  return check;
}

}  // namespace ravlt::tools
