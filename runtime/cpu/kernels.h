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
/// that a weight is resident once. A plan that packs its weights gets a
/// copy even where `want` is the stored layout (no packed plan asked for
/// that on the CPUs tested), so that its runs read nothing in the model
/// file (CpuBackend::constant()).
inline const void* packed_weight(const PrepareArgs& args, size_t slot,
                                 const dnnl::memory::desc& stored, const dnnl::memory::desc& want) {
  const uint32_t value = args.node.inputs[slot];
  const float* original = args.graph.values()[value].data;
  const bool copy = args.context.pack_weights && args.graph.mapped_constant(value);
  const void* packed =
      args.context.weights->get(value, original, stored, want, args.context.engine, copy);
  if (packed != original) args.graph.release_constant(value);
  return packed;
}

/// Constant `value` in its stored layout, where kernels read it: in a plan
/// that packs its weights, the weight cache's copy (made once per model,
/// its mapped original released, kept in the cache file), so that runs
/// read nothing in the model file; else the model file's bytes, verified
/// (Graph::read_constant). For the constants no kernel packs (biases,
/// norms: CpuBackend::constant) and those a kernel reads as it prepares.
inline const float* stored_constant(const Graph& graph, uint32_t value, const CpuContext& context) {
  const Value& v = graph.values()[value];
  const auto count = static_cast<size_t>(element_count(v.shape));
  if (!context.pack_weights || !context.weights || count == 0 || !graph.mapped_constant(value)) {
    return graph.read_constant(value);
  }
  const float* copy = context.weights->resident_copy(value, v.data, count, context.engine);
  graph.release_constant(value);
  return copy;
}

/// A depthwise convolution's (C, 1, K, K) weight (the node's input 1) as
/// (K, K, C), a register of channels per tap: the layout of our depthwise
/// loops (depthwise_loops.inc), from the weight cache like any packed
/// weight.
inline const float* depthwise_taps(const PrepareArgs& args, int64_t k, int64_t channels) {
  const dnnl::memory::dims shape = {channels, 1, 1, k, k};
  const dnnl::memory::desc stored(shape, dnnl::memory::data_type::f32,
                                  dnnl::memory::format_tag::goihw);
  const dnnl::memory::desc taps(
      shape, dnnl::memory::data_type::f32,
      dnnl::memory::dims{1, k * k * channels, k * k * channels, k * channels, channels});
  return static_cast<const float*>(packed_weight(args, 1, stored, taps));
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
