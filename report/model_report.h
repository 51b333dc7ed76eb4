// The library's structured descriptions as a person or a program reads
// them: the text and JSON of `ravlt inspect`, the summary of `ravlt
// convert`. The library returns data (ModelInfo, ConvertResult); the CLI
// and the Python module print it through here, so both say the same.
#pragma once

#include <string>

#include "ravlt/convert.h"
#include "ravlt/model_info.h"

namespace ravlt::report {

/// The human-readable report of `ravlt inspect`.
std::string model_info_text(const ModelInfo& info);
/// The same as one JSON document (`ravlt inspect --json`), newline-terminated.
std::string model_info_json(const ModelInfo& info);
/// The one paragraph `ravlt convert` prints.
std::string conversion_summary(const ConvertResult& result);

}  // namespace ravlt::report
