// The GEMM rate of this machine with oneDNN (the benchmark floor), in
// float32 or, on CPUs with bfloat16 units, bfloat16.
#pragma once

#include <memory>

#include "ravlt/dtype.h"

namespace ravlt::runtime::cpu {

/// An n x n x n oneDNN matmul kept ready to be timed on `threads` threads
/// (0: all cores). A benchmark times one between its own runs, so that
/// each run has a floor measured at the same moment of a host whose speed
/// drifts by tens of percent within a minute. `dtype`: kFloat32 (operands
/// in rows, as the floor has always been measured), or kBFloat16 (bfloat16
/// operands, float32 accumulation and output, the weights packed for the
/// kernel as a bfloat16 plan's are: the rate a bfloat16 run's GEMMs can
/// reach). Throws ravlt::Error for bfloat16 on a CPU without bfloat16
/// instructions (naming what it lacks) and for any other type.
class GemmRateProbe {
 public:
  GemmRateProbe(int threads, int n, DType dtype = DType::kFloat32);
  ~GemmRateProbe();
  GemmRateProbe(const GemmRateProbe&) = delete;
  GemmRateProbe& operator=(const GemmRateProbe&) = delete;

  /// GFLOP/s of one matmul, timed now.
  double measure();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// GFLOP/s of an n x n x n matmul of `dtype` (as GemmRateProbe) on
/// `threads` threads (0: all): the best of several timed batches, the rate
/// the machine can reach.
double gemm_gflops(int threads, int n, DType dtype = DType::kFloat32);

}  // namespace ravlt::runtime::cpu
