// The CPU kernels, one factory per op kind (cpu_backend.cpp holds the
// table that maps runtime::Op to these).
#pragma once

#include <memory>
#include <vector>

#include "runtime/backend.h"
#include "runtime/cpu/cpu_context.h"

namespace ravlt::runtime::cpu {

using PrepareArgs = PrepareArgsFor<CpuContext>;

using KernelFactory = std::unique_ptr<Kernel> (*)(const PrepareArgs&);

/// `bytes` rounded up to whole 64-byte cache lines: the unit in which
/// kernels lay out their scratch, so that every part starts on a line.
constexpr size_t cache_lines(size_t bytes) {
  return (bytes + 63) / 64 * 64;
}

/// The kernel for args.node's op (the factory table of cpu_backend.cpp).
std::unique_ptr<Kernel> make_kernel(const PrepareArgs& args);

/// Constant input `slot` of the node in layout `want` (its stored layout
/// being `stored`), from the model's weight cache. Once a packed copy
/// exists the mapped original is released (Graph::release_constant), so
/// that a weight is resident once.
inline const void* packed_weight(const PrepareArgs& args, size_t slot,
                                 const dnnl::memory::desc& stored, const dnnl::memory::desc& want) {
  const uint32_t value = args.node.inputs[slot];
  const float* original = args.graph.values()[value].data;
  const void* packed =
      args.context.weights->get(value, original, stored, want, args.context.engine);
  if (packed != original) args.graph.release_constant(value);
  return packed;
}

/// For a GEMM whose weight (input `slot`) is `weights`: counts it in
/// CpuContext::stored_weight_gemms where that is the model file's own copy.
inline void count_stored_weight_gemm(const PrepareArgs& args, size_t slot, const void* weights) {
  if (args.context.stored_weight_gemms != nullptr &&
      weights == args.graph.values()[args.node.inputs[slot]].data) {
    ++*args.context.stored_weight_gemms;
  }
}

/// The element type of the node's input `slot` and of its output in the
/// plan being prepared (CpuContext::value_dtype).
inline DType input_dtype(const PrepareArgs& args, size_t slot) {
  return args.context.value_dtype(args.graph, args.node.inputs[slot]);
}
inline DType output_dtype(const PrepareArgs& args) {
  return args.context.value_dtype(args.graph, args.node.output);
}

// One factory per op, runtime/cpu/<snake_name>.cpp (formats/rvlt/ops.def).
#define RAVLT_OP(Name, snake, ...) std::unique_ptr<Kernel> make_##snake(const PrepareArgs& args);
#include "formats/rvlt/ops.def"
#undef RAVLT_OP

}  // namespace ravlt::runtime::cpu
