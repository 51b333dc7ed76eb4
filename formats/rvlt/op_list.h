// The op kinds a model file may name, generated from ops.def: their
// signatures (name, arity, attributes, which inputs are weights), in the
// order of fb::OpType, each checked against the schema's value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "formats/rvlt/rvlt_generated.h"

namespace ravlt::rvlt {

/// The fixed signature of one operator kind.
struct OpSignature {
  std::string_view name;  // "Conv2d"
  uint32_t min_inputs;
  uint32_t max_inputs;
  fb::OpAttrs attrs;         // required attribute table (OpAttrs_NONE: none)
  uint32_t constant_inputs;  // bit i set: input i must be a constant
};

/// One entry per line of ops.def, in its order.
inline constexpr OpSignature kOpSignatures[] = {
#define RAVLT_OP(Name, snake, min_in, max_in, attrs, constant) \
  {#Name, min_in, max_in, fb::OpAttrs_##attrs, constant},
#include "formats/rvlt/ops.def"
#undef RAVLT_OP
};
inline constexpr size_t kOpKinds = sizeof(kOpSignatures) / sizeof(kOpSignatures[0]);

namespace op_list_detail {
enum Position : size_t {
#define RAVLT_OP(Name, ...) k##Name,
#include "formats/rvlt/ops.def"
#undef RAVLT_OP
};
// The list names every fb::OpType at its on-disk id, and nothing else.
#define RAVLT_OP(Name, ...)                                        \
  static_assert(static_cast<size_t>(fb::OpType_##Name) == k##Name, \
                "ops.def: " #Name " is not at its rvlt.fbs OpType value");
#include "formats/rvlt/ops.def"
#undef RAVLT_OP
}  // namespace op_list_detail
static_assert(kOpKinds == static_cast<size_t>(fb::OpType_MAX) + 1,
              "ops.def must list every rvlt.fbs OpType");

/// Signature of `op`, or nullptr for a value this reader does not know.
inline const OpSignature* op_signature(fb::OpType op) {
  const auto index = static_cast<size_t>(op);
  return index < kOpKinds ? &kOpSignatures[index] : nullptr;
}

}  // namespace ravlt::rvlt
