// The float32 GEMM rate of this machine with oneDNN (the benchmark floor).
#pragma once

#include <memory>

namespace ravlt::runtime::cpu {

/// An n x n x n float32 oneDNN matmul kept ready to be timed on `threads`
/// threads (0: all cores). A benchmark times one between its own runs, so
/// that each run has a floor measured at the same moment of a host whose
/// speed drifts by tens of percent within a minute.
class GemmRateProbe {
 public:
  GemmRateProbe(int threads, int n);
  ~GemmRateProbe();
  GemmRateProbe(const GemmRateProbe&) = delete;
  GemmRateProbe& operator=(const GemmRateProbe&) = delete;

  /// GFLOP/s of one matmul, timed now.
  double measure();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// GFLOP/s of an n x n x n float32 matmul on `threads` threads (0: all):
/// the best of several timed batches, the rate the machine can reach.
double gemm_gflops(int threads, int n);

}  // namespace ravlt::runtime::cpu
