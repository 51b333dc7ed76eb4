// GemmProbe and measure_gemm_gflops (ravlt/benchmark.h): the float32 and
// bfloat16 rates that `ravlt bench --floor` divides by, and the errors for
// a precision the CPU cannot probe.
#include <doctest/doctest.h>

#include <string>

#include "ravlt/benchmark.h"
#include "ravlt/error.h"
#include "ravlt/model.h"

using namespace ravlt;

namespace {

// The message of the ravlt::Error that `f` throws ("" if none).
template <typename F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("GemmProbe: float32 by default and when asked, a positive rate each time") {
  GemmProbe plain(1, 128);
  GemmProbe float32(1, 128, DType::kFloat32);
  for (int i = 0; i < 3; ++i) {
    CHECK(plain.gflops() > 0.0);
    CHECK(float32.gflops() > 0.0);
  }
  CHECK(measure_gemm_gflops(1, 128, DType::kFloat32) > 0.0);
}

TEST_CASE(
    "GemmProbe: bfloat16 where the CPU has bfloat16 units, else an error naming what it lacks") {
  std::string why;
  if (precision_available(Device::kCpu, Precision::kBFloat16, &why)) {
    GemmProbe probe(2, 256, DType::kBFloat16);
    CHECK(probe.gflops() > 0.0);
    CHECK(measure_gemm_gflops(2, 256, DType::kBFloat16) > 0.0);
  } else {
    const std::string message = error_of([] { GemmProbe probe(1, 128, DType::kBFloat16); });
    CHECK(message.find("no bfloat16 GEMM rate on this CPU") != std::string::npos);
    CHECK(message.find("neither AVX512_BF16 nor AMX-BF16") != std::string::npos);
  }
}

TEST_CASE("GemmProbe: float16 and int64 are refused by name") {
  CHECK(error_of([] { GemmProbe probe(1, 64, DType::kFloat16); }) ==
        "the GEMM rate is measured in float32 or bfloat16, not float16");
  CHECK(error_of([] { measure_gemm_gflops(1, 64, DType::kInt64); }) ==
        "the GEMM rate is measured in float32 or bfloat16, not int64");
}
