// The static graph the runtime executes, loaded from a .rvlt model file.
//
// A Graph is immutable after load and shared by every session of a model.
// It knows ops and tensors, not RAVLT: one Node per op of rvlt.fbs, one
// Value per tensor. Float32 constants point into the file's mapping (zero
// copy); float16 and bfloat16 constants are widened to float32 once, here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "formats/rvlt/model_file.h"
#include "formats/rvlt/op_list.h"

namespace ravlt::runtime {

using Shape = std::vector<int64_t>;

/// "(1, 56, 56, 64)".
std::string to_string(const Shape& shape);
/// Product of the sizes.
int64_t element_count(const Shape& shape);

/// Operator kinds: one per line of formats/rvlt/ops.def, in its order,
/// which is fb::OpType's (checked there).
enum class Op : uint8_t {
#define RAVLT_OP(Name, ...) k##Name,
#include "formats/rvlt/ops.def"
#undef RAVLT_OP
};
inline constexpr size_t kOpCount = rvlt::kOpKinds;
#define RAVLT_OP(Name, ...)                                                           \
  static_assert(static_cast<int>(Op::k##Name) == static_cast<int>(fb::OpType_##Name), \
                "runtime::Op::k" #Name " differs from fb::OpType_" #Name);
#include "formats/rvlt/ops.def"
#undef RAVLT_OP

/// Name of an op kind ("Conv2d", ...), as the file format spells it.
inline const char* op_name(Op op) {
  return rvlt::kOpSignatures[static_cast<size_t>(op)].name.data();  // literals: NUL-terminated
}

enum class Activation : uint8_t { kNone, kGelu, kSwish };

struct ConvAttrs {
  int kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, groups = 1;
};

struct Node {
  std::string name;
  Op op;
  std::vector<uint32_t> inputs;
  uint32_t output = 0;
  Activation activation = Activation::kNone;  // Conv2d, Linear
  ConvAttrs conv;                             // Conv2d
  float epsilon = 0.0f;                       // LayerNorm
  int slice_begin = 0, slice_end = 0;         // ChannelSlice
  int heads = 0, head_dim = 0;                // attention
};

struct Value {
  std::string name;
  bool constant = false;
  Shape shape;                  // as declared; -1 where known only at run time
  const float* data = nullptr;  // constants: float32 elements
};

class Graph {
 public:
  /// Builds the graph of a verified model file. Throws ravlt::Error if the
  /// file asks for something this runtime does not support.
  static std::shared_ptr<const Graph> load(std::shared_ptr<const rvlt::ModelFile> file);
  /// A graph from its parts, for tests: constants' data must outlive it.
  static std::shared_ptr<const Graph> from_parts(std::vector<Value> values, std::vector<Node> nodes,
                                                 uint32_t input, std::vector<uint32_t> outputs);

  const std::vector<Value>& values() const { return values_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  uint32_t input() const { return input_; }
  /// The values the file declares as outputs, in its order (at least one).
  const std::vector<uint32_t>& outputs() const { return outputs_; }
  /// The node that computes `value`, or -1 (constants, the input).
  int producer(uint32_t value) const;
  const rvlt::ModelFile& file() const { return *file_; }
  /// Bytes of constants widened to float32 at load (0 for a float32 file).
  size_t widened_bytes() const { return widened_bytes_; }
  /// Constant `value` has been copied where the kernels read it (a packed
  /// layout): its pages in the file mapping stop counting in the resident
  /// memory (MappedFile::release; read back from the file if touched
  /// again). Nothing for a widened constant (owned, not mapped).
  void release_constant(uint32_t value) const;
  /// Whether constant `value`'s data lies in the model file's mapping
  /// (false for a widened copy and in a graph from parts).
  bool mapped_constant(uint32_t value) const;
  /// Constant `value`'s float32 data, for a kernel that reads it in place:
  /// verified first where the model file left it unread at load
  /// (rvlt::ModelFile::verify_constant; throws ravlt::Error if damaged).
  /// Kernels read constants' bytes through this or the weight cache
  /// (cpu::packed_weight()), so that no unverified byte is read.
  const float* read_constant(uint32_t value) const;
  /// Throws ravlt::Error if the model file was written since it was loaded
  /// (rvlt::ModelFile::check_unchanged(); nothing for a graph without a
  /// file): called before work that reads constants in the mapping (a
  /// plan, a run).
  void check_file_unchanged() const;

 private:
  std::shared_ptr<const rvlt::ModelFile> file_;
  std::vector<Value> values_;
  std::vector<Node> nodes_;
  uint32_t input_ = 0;
  std::vector<uint32_t> outputs_;
  std::vector<std::unique_ptr<float[]>> widened_;  // owned float32 copies
  size_t widened_bytes_ = 0;
};

}  // namespace ravlt::runtime
