// State the CPU kernels of one session share: the oneDNN engine and stream,
// and the model-wide cache of reordered weights.
#pragma once

#include <atomic>
#include <deque>
#include <dnnl.hpp>
#include <memory>
#include <mutex>
#include <vector>

#include "ravlt/dtype.h"
#include "runtime/graph.h"
#include "runtime/host_pages.h"

namespace ravlt::runtime::cpu {

/// Weights reordered into the layouts oneDNN's primitives chose, kept once
/// per model and shared by every session (thread-safe: kernels of one plan
/// are prepared concurrently, and sessions too).
class WeightCache {
 public:
  /// The weights of graph value `value` (float32 in `src_desc` layout at
  /// `src`) in layout `want`: `src` itself if the layouts agree, else a
  /// reordered copy made on first request (by the first caller; another
  /// asking for the same copy meanwhile waits for it).
  const void* get(uint32_t value, const float* src, const dnnl::memory::desc& src_desc,
                  const dnnl::memory::desc& want, const dnnl::engine& engine);
  /// Bytes copied by reorders so far.
  size_t reordered_bytes() const;

 private:
  struct Entry {
    Entry(uint32_t v, dnnl::memory::desc d, uint8_t* b) : value(v), desc(std::move(d)), bytes(b) {}
    uint32_t value;
    dnnl::memory::desc desc;
    uint8_t* bytes;  // in one of pages_
    std::once_flag reordered;
  };
  /// `bytes` (64-byte aligned) from the current block of pages, a new
  /// block when it is full. Under mutex_.
  uint8_t* take(size_t bytes);

  mutable std::mutex mutex_;
  std::deque<Entry> entries_;  // a deque: entries stay where they are
  std::vector<HostPages> pages_;
  size_t used_ = 0;  // of pages_.back()
  std::atomic<size_t> reordered_bytes_{0};
};

struct CpuContext {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::shared_ptr<WeightCache> weights;
  /// The threads a run uses (the session's setting, resolved: at least 1).
  int threads = 1;
  /// The session's precision: kFloat32, or kBFloat16 (value_dtype()).
  DType precision = DType::kFloat32;
  /// Whether the graph's input and outputs stay float32 in a bfloat16 plan
  /// (sessions: yes; tests of single kernels: no, to cover every kernel's
  /// bfloat16 operands).
  bool float32_interface = true;

  /// The element type of `value` in this session's plans: float32 in a
  /// float32 session; in bfloat16, the activations between layers in
  /// bfloat16 and the residual stream, pooled features, NCHW maps and
  /// (unless float32_interface is off) the graph's input and outputs in
  /// float32. value_types.cpp says why.
  DType value_dtype(const Graph& graph, uint32_t value) const;
  /// The type a GEMM or convolution node computes in (sources, weights):
  /// the precision, except float32 for a convolution on the residual
  /// stream. A source of another type is converted first.
  DType compute_dtype(const Graph& graph, const Node& node) const;
};

}  // namespace ravlt::runtime::cpu
