// Semantic checks of a verified .rvlt graph, run before anyone reads it.
//
// The FlatBuffers verifier proves every offset inside the buffer; these
// checks prove what the engine relies on beyond that: constants lie inside
// the data section, nodes are in a valid order, and each op has the inputs,
// attributes, dtypes and weight shapes its kind requires.
#pragma once

#include <cstdint>
#include <string_view>

#include "formats/rvlt/rvlt_generated.h"

namespace ravlt::rvlt {

/// Limits a file may not exceed; they bound what a hostile file can ask for.
inline constexpr uint32_t kMaxRank = 8;
inline constexpr int64_t kMaxDim = int64_t{1} << 40;

/// The fixed signature of one operator kind.
struct OpSignature {
  std::string_view name;
  uint32_t min_inputs;
  uint32_t max_inputs;
  fb::OpAttrs attrs;         // required attribute table (OpAttrs_NONE: none)
  uint32_t constant_inputs;  // bit i set: input i must be a constant
};

/// Signature of `op`, or nullptr for a value this reader does not know.
const OpSignature* op_signature(fb::OpType op);

/// Throws ravlt::Error naming the tensor, node or field at fault.
/// `data_size` is the size of the file's data section.
void check_model(const fb::Model& model, uint64_t data_size);

}  // namespace ravlt::rvlt
