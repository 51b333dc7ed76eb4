// Our GELU (ActivationLoops, in place after a GEMM or convolution) on every
// instruction set against float64 GELU, and its bfloat16 form against its
// float32 one rounded once.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "base/half_float.h"
#include "runtime/cpu/isa.h"
#include "runtime/cpu/isa_kernels.h"

using namespace ravlt::runtime::cpu;

namespace {

double gelu(double x) {
  return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
}

// A dense grid over where GELU bends, normal activations, large and tiny
// magnitudes, zeros; 4099 values (no multiple of a register).
std::vector<float> inputs() {
  std::vector<float> v;
  for (int i = -3000; i <= 3000; i += 3) v.push_back(static_cast<float>(i) / 375.0f);  // +-8
  for (float f : {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-3f, -1e-3f, 30.0f, -30.0f, 1e30f, -1e30f,
                  std::numeric_limits<float>::max()}) {
    v.push_back(f);
  }
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  while (v.size() < 4099) v.push_back(normal(rng));
  return v;
}

std::vector<Isa> isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (static_cast<int>(isa) <= static_cast<int>(detected_isa())) out.push_back(isa);
  }
  return out;
}

}  // namespace

TEST_CASE(
    "GELU in float32 is within a few float32 roundings of float64's, on every instruction set") {
  const std::vector<float> x = inputs();
  for (Isa isa : isas()) {
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    std::vector<float> y = x;
    y.push_back(-7.0f);  // past n: must stay as it is
    activation_loops(isa).gelu_f32(y.data(), static_cast<int64_t>(x.size()));
    CHECK(y.back() == -7.0f);
    // AVX-512's table of polynomials measured 1.5e-7, the rational form
    // of the other instruction sets 9e-7.
    const double bound = isa == Isa::kAvx512 ? 3e-7 : 1.5e-6;
    double worst = 0.0;
    for (size_t i = 0; i < x.size(); ++i) {
      const double want = gelu(x[i]);
      const double err = std::fabs(y[i] - want) / std::max(1.0, std::fabs(want));
      if (!(err <= worst)) worst = err;  // (a NaN makes worst NaN)
      CAPTURE(x[i]);
      REQUIRE(err <= bound);
    }
    MESSAGE(isa_label, ": worst error ", worst);
    // Tails: every length up to two registers gives the same values as the
    // whole row (the same arithmetic on a padded register).
    for (int64_t n = 1; n <= 33; ++n) {
      std::vector<float> part(x.begin() + 100, x.begin() + 100 + n);
      activation_loops(isa).gelu_f32(part.data(), n);
      for (int64_t i = 0; i < n; ++i) REQUIRE(part[static_cast<size_t>(i)] == y[100 + i]);
    }
  }
}

TEST_CASE("GELU carries NaN through and keeps the infinities' limits") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (Isa isa : isas()) {
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    std::vector<float> y = {nan, -nan, inf, 1.0f, nan};
    activation_loops(isa).gelu_f32(y.data(), static_cast<int64_t>(y.size()));
    CHECK(std::isnan(y[0]));
    CHECK(std::isnan(y[1]));
    CHECK(y[2] == inf);
    CHECK(y[3] == doctest::Approx(0.8413447460685429).epsilon(1e-6));
    CHECK(std::isnan(y[4]));
  }
}

TEST_CASE("GELU into bfloat16 is the float32 one rounded once") {
  const std::vector<float> x = inputs();
  for (Isa isa : isas()) {
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    const ActivationLoops& loops = activation_loops(isa);
    std::vector<float> want = x;
    loops.gelu_f32(want.data(), static_cast<int64_t>(want.size()));
    // Every length up to two registers (tails), then the whole row.
    for (size_t n :
         {size_t{1}, size_t{7}, size_t{15}, size_t{16}, size_t{17}, size_t{33}, x.size()}) {
      std::vector<uint16_t> got(n + 1, 0x1234);
      loops.gelu_f32_to_bf16(x.data(), got.data(), static_cast<int64_t>(n));
      CHECK(got[n] == 0x1234);  // past n: untouched
      for (size_t i = 0; i < n; ++i) {
        CAPTURE(x[i]);
        REQUIRE(got[i] == ravlt::float_to_bfloat16(want[i]));
      }
    }
  }
}
