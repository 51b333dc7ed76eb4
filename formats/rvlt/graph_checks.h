// Semantic checks of a verified .rvlt graph, run before anyone reads it.
//
// The FlatBuffers verifier proves every offset inside the buffer; these
// checks prove what the engine relies on beyond that: constants lie inside
// the data section, nodes are in a valid order, and each op has the inputs,
// attributes, dtypes and weight shapes its kind requires.
#pragma once

#include <cstdint>

#include "formats/rvlt/rvlt_generated.h"

namespace ravlt::rvlt {

/// Limits a file may not exceed; they bound what a hostile file can ask for.
inline constexpr uint32_t kMaxRank = 8;
inline constexpr int64_t kMaxDim = int64_t{1} << 40;

/// Throws ravlt::Error naming the tensor, node or field at fault.
/// `data_size` is the size of the file's data section.
void check_model(const fb::Model& model, uint64_t data_size);

}  // namespace ravlt::rvlt
