// Checks for numeric options, with messages that say what the option takes
// (CLI11's own PositiveNumber / NonNegativeNumber print their range as
// 0.000000 to 1.797...e308 written out in full).
#pragma once

#include <CLI/CLI.hpp>

namespace ravlt::tools {

/// An integer >= 1 (batch sizes, iteration counts, image sides).
const CLI::Validator& positive_integer();
/// An integer >= 0 (thread counts, where 0 means all cores; warm-up runs).
const CLI::Validator& non_negative_integer();
/// A number >= 0 (multiply-add counts, which 2.61e9 writes).
const CLI::Validator& non_negative_number();

}  // namespace ravlt::tools
