// Measurements that put benchmark figures in context.
#pragma once

#include <memory>

#include "ravlt/export.h"

namespace ravlt {

/// This machine's float32 GEMM rate in GFLOP/s, measured with oneDNN's
/// matmul on `size` x `size` matrices using `threads` threads (0: all
/// cores): the rate a convolution-and-GEMM network can at best reach (the
/// best of 20 matmuls in batches of four). Takes about a second.
RAVLT_API double measure_gemm_gflops(int threads, int size = 1024);

/// One float32 `size`^3 oneDNN matmul, set up once and timed on demand:
/// `ravlt bench --macs` times one after each run of the model, so that each
/// run's floor comes from the same moment (the host's speed drifts).
class RAVLT_API GemmProbe {
 public:
  explicit GemmProbe(int threads, int size = 1024);
  ~GemmProbe();
  GemmProbe(const GemmProbe&) = delete;
  GemmProbe& operator=(const GemmProbe&) = delete;

  /// GFLOP/s of one matmul timed now (its first runs happen untimed in the
  /// constructor).
  double gflops();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ravlt
