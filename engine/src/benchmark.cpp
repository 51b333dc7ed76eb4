#include "ravlt/benchmark.h"

#include "runtime/cpu/gemm_rate.h"

namespace ravlt {

double measure_gemm_gflops(int threads, int size) {
  return runtime::cpu::gemm_gflops(threads, size);
}

double measure_gemm_gflops(int threads, int size, DType precision) {
  return runtime::cpu::gemm_gflops(threads, size, precision);
}

struct GemmProbe::Impl {
  runtime::cpu::GemmRateProbe probe;
};

GemmProbe::GemmProbe(int threads, int size)
    : impl_(new Impl{runtime::cpu::GemmRateProbe(threads, size)}) {}

GemmProbe::GemmProbe(int threads, int size, DType precision)
    : impl_(new Impl{runtime::cpu::GemmRateProbe(threads, size, precision)}) {}

GemmProbe::~GemmProbe() = default;

double GemmProbe::gflops() {
  return impl_->probe.measure();
}

}  // namespace ravlt
