// Measurements that put benchmark figures in context.
#pragma once

#include <memory>

#include "ravlt/dtype.h"
#include "ravlt/export.h"

namespace ravlt {

/// This machine's float32 GEMM rate in GFLOP/s, measured with oneDNN's
/// matmul on `size` x `size` matrices using `threads` threads (0: all
/// cores): the rate a convolution-and-GEMM network can at best reach (the
/// best of 20 matmuls in batches of four). Takes about a second.
RAVLT_API double measure_gemm_gflops(int threads, int size = 1024);
/// The same in `precision` (a Precision): DType::kFloat32 as above, or
/// DType::kBFloat16, bfloat16 operands with float32 accumulation and the
/// weights packed for the kernel (the rate a bfloat16 Session's GEMMs can
/// reach). Throws ravlt::Error for bfloat16 on a CPU without AVX512_BF16
/// or AMX-BF16 (naming what it lacks) and for any other precision.
RAVLT_API double measure_gemm_gflops(int threads, int size, DType precision);

/// One float32 `size`^3 oneDNN matmul, set up once and timed on demand:
/// `ravlt bench --macs` times one after each run of the model, so that each
/// run's floor comes from the same moment (the host's speed drifts).
class RAVLT_API GemmProbe {
 public:
  explicit GemmProbe(int threads, int size = 1024);
  /// A `precision` matmul, as measure_gemm_gflops(threads, size, precision)
  /// times it (`ravlt bench --precision bf16 --floor`: bfloat16).
  GemmProbe(int threads, int size, DType precision);
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
