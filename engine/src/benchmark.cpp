#include "ravlt/benchmark.h"

#include "runtime/cpu/gemm_rate.h"

namespace ravlt {

double measure_gemm_gflops(int threads, int size) {
  return runtime::cpu::gemm_gflops(threads, size);
}

}  // namespace ravlt
