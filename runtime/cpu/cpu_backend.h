// The CPU backend: oneDNN for convolutions and GEMMs, our own kernels for
// the rest. Threads: OpenMP, shared by oneDNN and our kernels, so one
// setting governs both.
#pragma once

#include <memory>
#include <string>

#include "runtime/backend.h"
#include "runtime/cpu/cpu_context.h"

namespace ravlt::runtime::cpu {

class CpuBackend : public Backend {
 public:
  /// `threads`: what every run of this backend uses (0: all cores); the
  /// kernels also size their work split by it. `precision`: kFloat32, or
  /// kBFloat16 on a CPU that has bfloat16 arithmetic (cpu_bf16_support();
  /// throws ravlt::Error naming what the CPU lacks otherwise).
  /// `float32_interface`: see CpuContext.
  explicit CpuBackend(std::shared_ptr<WeightCache> weights, int threads = 0,
                      DType precision = DType::kFloat32, bool float32_interface = true);
  std::unique_ptr<Kernel> prepare(const Graph& graph, const Node& node,
                                  const std::vector<Shape>& shapes) override;
  /// Over the session's threads: creating oneDNN primitives (code
  /// generation) and reordering weights take most of a plan's time.
  void prepare_all(const Graph& graph, const std::vector<size_t>& steps,
                   const std::vector<Fusion>& fusions, const std::vector<Shape>& shapes,
                   std::vector<std::unique_ptr<Kernel>>& kernels,
                   const std::atomic<bool>* cancel = nullptr) override;
  /// The FFNs that run as one kernel (fused_ffn.h), unless set_fusing(false).
  std::vector<Fusion> fuse(const Graph& graph, const std::vector<size_t>& steps,
                           const std::vector<Shape>& shapes,
                           const std::vector<int>& readers) override;
  std::unique_ptr<Kernel> prepare_fused(const Graph& graph, const Fusion& fusion,
                                        const std::vector<Shape>& shapes) override;
  /// Whether later plans fuse nodes (on by default; tests compare both).
  void set_fusing(bool on) { fusing_ = on; }
  /// Off: later float32 plans run their GEMMs on the weights where the
  /// model file stores them instead of packed copies (a shorter plan,
  /// slower runs: SessionOptions::pack_weights). Convolutions and
  /// bfloat16 weights are packed either way.
  /// `after_first_run` (with `on`): later float32 plans read the weights
  /// in place as if off until end_packing_deferral(), which the executor
  /// calls after such a plan's first run (SessionOptions::defer_packing).
  void set_weight_packing(bool on, bool after_first_run = false);
  bool take_deferred_weights() override;
  void end_packing_deferral() override;
  void begin_run(int threads) override;
  /// In a plan that packs its weights, a copy of a constant that lies in
  /// the model file and that no kernel packed (WeightCache::resident_copy):
  /// such a plan's runs then read nothing in the file's mapping, so a file
  /// shortened under a run cannot end the process (the next run refuses:
  /// Executor::run). A plan that reads weights in place gets the mapped
  /// bytes (verified first where the load left them to a cache file's
  /// copy: Graph::read_constant), as does a graph without a file.
  const void* constant(const Graph& graph, uint32_t value) override;
  /// 8 MB unless set_image_by_image_bytes() said otherwise.
  size_t image_by_image_bytes() const override { return image_by_image_bytes_; }
  /// For tests: where later plans go image by image (0: never).
  void set_image_by_image_bytes(size_t bytes) { image_by_image_bytes_ = bytes; }
  /// For tests: the size of the bands of rows in which later plans run a
  /// convolution with its GELU, where its output is more than four times
  /// that (CpuContext::conv_band_bytes).
  void set_conv_band_bytes(size_t bytes) { context_.conv_band_bytes = bytes; }
  DType value_dtype(const Graph& graph, uint32_t value) const override;

 private:
  CpuContext context_;
  bool fusing_ = true;
  bool deferring_ = false;  // packing waits for end_packing_deferral()
  // GEMMs prepared on their weights in place (CpuContext::stored_weight_gemms).
  std::atomic<size_t> stored_weight_gemms_{0};
  // A quarter of a 32 MB third-level cache (AMD Zen 4; Intel Xeons have
  // about 1.5-2 MB a core). RAVLT-T batch 8, 2 threads: the stem and stages
  // 1-2 (values of 13-26 MB for the batch) ran 1.07-1.19x slower batched
  // than image by image, stage 3 (6.4 MB) the same, stage 4 faster batched.
  size_t image_by_image_bytes_ = size_t{8} << 20;
};

/// Number of threads a run uses when asked for 0: all cores.
int default_threads();

/// Whether oneDNN computes bfloat16 on this CPU with bfloat16 instructions
/// (AVX512_BF16 or AMX-BF16, as far as DNNL_MAX_CPU_ISA lets it); when
/// not, `why` names what the CPU lacks.
bool cpu_bf16_support(std::string* why = nullptr);

}  // namespace ravlt::runtime::cpu
