// The float32 GEMM rate of this machine with oneDNN (the benchmark floor).
#pragma once

namespace ravlt::runtime::cpu {

/// GFLOP/s of an n x n x n float32 matmul on `threads` threads (0: all).
double gemm_gflops(int threads, int n);

}  // namespace ravlt::runtime::cpu
