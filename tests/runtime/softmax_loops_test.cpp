// The bfloat16 online-softmax step (SoftmaxLoops::softmax_block_bf16, run
// between the two matmuls of bfloat16 softmax attention) on every
// instruction set against float64: running maxima, the rescaling factors,
// the weights rounded to bfloat16 and the running sums of two key blocks.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "base/half_float.h"
#include "runtime/cpu/isa.h"
#include "runtime/cpu/isa_kernels.h"

using namespace ravlt::runtime::cpu;

TEST_CASE("the bfloat16 softmax step keeps maxima, sums and weights within their bounds") {
  // 5 rows of 70 keys (no multiple of a register), padded to 80 columns,
  // rows 96 floats apart. Block 2 lifts the odd rows' scores by 10 (their
  // maximum grows, so the sums so far are rescaled) and lowers the even
  // rows' by 10 (their maximum stays: a factor of exactly 1).
  constexpr int64_t kRows = 5, kCount = 70, kPadded = 80, kStride = 96;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> uniform(-20.0f, 5.0f);
  std::vector<std::vector<float>> blocks(2, std::vector<float>(kRows * kStride, -1e30f));
  for (int64_t r = 0; r < kRows; ++r) {
    for (int64_t j = 0; j < kCount; ++j) {
      const float s = uniform(rng);
      blocks[0][static_cast<size_t>(r * kStride + j)] = s;
      blocks[1][static_cast<size_t>(r * kStride + j)] = r % 2 == 1 ? s + 10.0f : s - 10.0f;
    }
  }
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (static_cast<int>(isa) > static_cast<int>(detected_isa())) continue;
    const std::string isa_label = isa_name(isa);
    CAPTURE(isa_label);
    std::vector<float> max(kRows, -std::numeric_limits<float>::infinity()), sum(kRows, 0.0f);
    std::vector<float> correction(kRows);
    std::vector<double> want_max(kRows, -INFINITY), want_sum(kRows, 0.0);
    for (const std::vector<float>& s : blocks) {
      std::vector<uint16_t> p(kRows * kStride, 0xffff);
      softmax_loops(isa).softmax_block_bf16(s.data(), kStride, kRows, kCount, kPadded, max.data(),
                                            sum.data(), correction.data(), p.data());
      for (int64_t r = 0; r < kRows; ++r) {
        CAPTURE(r);
        const float* row = s.data() + r * kStride;
        const double block_max = *std::max_element(row, row + kCount);
        const double new_max = std::max(want_max[static_cast<size_t>(r)], block_max);
        const double factor = std::exp2(want_max[static_cast<size_t>(r)] - new_max);
        CHECK(max[static_cast<size_t>(r)] == new_max);
        if (block_max <= want_max[static_cast<size_t>(r)]) {
          CHECK(correction[static_cast<size_t>(r)] == 1.0f);
        } else {
          CHECK(std::abs(correction[static_cast<size_t>(r)] - factor) <= 1e-6 * factor + 1e-30);
        }
        double block_sum = 0.0;
        for (int64_t j = 0; j < kPadded; ++j) {
          const float got = ravlt::bfloat16_to_float(p[static_cast<size_t>(r * kStride + j)]);
          if (j >= kCount) {
            CHECK(got == 0.0f);
            continue;
          }
          const double want = std::exp2(row[j] - new_max);
          block_sum += want;
          // A bfloat16 rounding (2^-8 relative at most) of a value within 1e-4.
          CHECK(std::abs(got - want) <= want * (1.0 / 256 + 1e-4));
        }
        for (int64_t j = kPadded; j < kStride; ++j) {  // past the padding: untouched
          CHECK(p[static_cast<size_t>(r * kStride + j)] == 0xffff);
        }
        want_sum[static_cast<size_t>(r)] = want_sum[static_cast<size_t>(r)] * factor + block_sum;
        want_max[static_cast<size_t>(r)] = new_max;
        // The sums add the weights before rounding: within the fit's 7.5e-5.
        CHECK(std::abs(sum[static_cast<size_t>(r)] - want_sum[static_cast<size_t>(r)]) <=
              1.5e-4 * want_sum[static_cast<size_t>(r)]);
      }
    }
  }
}
