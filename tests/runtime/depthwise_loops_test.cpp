// Our depthwise convolution rows (DepthwiseLoops: the fused FFN's 3x3 and
// the Conv2d nodes' 3x3 and 5x5) on every instruction set against a plain
// float64 loop: every width from 1 to 21 (blocks of 8 and a last one of 1 to 7
// at and away from the edges), channels beyond whole registers, input
// pixels wider than the channels computed (a slice read in place), rows
// missing above and below the image; float32 rows and bfloat16 ones, and
// float32 rows into bfloat16 outputs (the 5x5 of bfloat16 plans, which
// widens its input first, and the fused FFN's 3x3 in bfloat16).
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "base/half_float.h"
#include "runtime/cpu/isa.h"
#include "runtime/cpu/isa_kernels.h"
#include "tests/runtime/cpu_test_util.h"
#include "tests/test_util.h"

using namespace ravlt::runtime::cpu;
using ravlt::test::random_vector;

namespace {

// Element type T of the rows: float, or bfloat16 as its raw bits.
float widen(float x) {
  return x;
}
float widen(uint16_t x) {
  return ravlt::bfloat16_to_float(x);
}
template <typename T>
std::vector<T> narrow(const std::vector<float>& x) {
  if constexpr (std::is_same_v<T, float>) {
    return x;
  } else {
    std::vector<T> out(x.size());
    for (size_t i = 0; i < x.size(); ++i) out[i] = ravlt::float_to_bfloat16(x[i]);
    return out;
  }
}

// The largest error of the output row `out` against a float64 loop over
// `rows` (K of them, nullptr outside the image) beyond the rounding of its
// element type: float32 rows are checked within 1e-5 by the callers,
// bfloat16 ones past their rounding of the result (half a unit in the last
// place is 2^-9 of the value).
template <typename In, typename Out>
double worst_error(int k, const In* const* rows, const std::vector<float>& taps,
                   const std::vector<float>& bias, int64_t width, int64_t channels,
                   int64_t in_stride, const Out* out) {
  double worst = 0.0;
  for (int64_t x = 0; x < width; ++x) {
    for (int64_t c = 0; c < channels; ++c) {
      double want = bias[static_cast<size_t>(c)];
      for (int i = 0; i < k; ++i) {
        for (int j = 0; j < k; ++j) {
          const int64_t at = x + j - k / 2;
          if (rows[i] == nullptr || at < 0 || at >= width) continue;
          want += static_cast<double>(taps[static_cast<size_t>((i * k + j) * channels + c)]) *
                  widen(rows[i][at * in_stride + c]);
        }
      }
      const double rounding = std::is_same_v<Out, float> ? 0.0 : std::abs(want) / 256.0;
      worst = std::max(worst, std::abs(widen(out[x * channels + c]) - want) - rounding);
    }
  }
  return worst;
}

// In, Out: the element types of the input rows and of the output (T for
// both where given one).
template <typename In, typename Out = In, typename RowLoop>
void check_rows(const std::string& path, int k, RowLoop row_loop) {
  for (int64_t channels : {5, 16, 37}) {
    for (int64_t in_stride : {channels, 4 * channels}) {
      for (int64_t width = 1; width <= 21; ++width) {
        const auto seed = static_cast<uint32_t>(width * 100 + channels + k);
        const std::vector<In> input =
            narrow<In>(random_vector(static_cast<size_t>(k * width * in_stride), seed));
        const std::vector<float> taps =
            random_vector(static_cast<size_t>(k * k * channels), seed + 1, 0.3f);
        const std::vector<float> bias = random_vector(static_cast<size_t>(channels), seed + 2);
        // The first and last rows outside the image where width is odd.
        const bool cut = width % 2 == 1;
        const In* rows[5];
        for (int i = 0; i < k; ++i) {
          const bool outside = cut && (i == 0 || i == k - 1);
          rows[i] = outside ? nullptr : input.data() + i * width * in_stride;
        }
        std::vector<Out> out =
            narrow<Out>(std::vector<float>(static_cast<size_t>(width * channels) + 1, -7.0f));
        row_loop(rows, taps.data(), bias.data(), width, channels, in_stride, out.data());
        const double worst =
            worst_error(k, rows, taps, bias, width, channels, in_stride, out.data());
        INFO(path << ", " << k << "x" << k << ", width " << width << ", " << channels
                  << " channels of " << in_stride << ": worst error beyond rounding " << worst);
        CHECK(worst <= 1e-5);
        CHECK(widen(out.back()) == -7.0f);  // nothing written past the row
      }
    }
  }
}

}  // namespace

TEST_CASE("depthwise rows match a float64 loop on every instruction set, 3x3 and 5x5") {
  for (Isa isa : ravlt::test::isas_present()) {
    const DepthwiseLoops& loops = depthwise_loops(isa);
    const std::string name = isa_name(isa);
    check_rows<float>(name, 3, loops.depthwise3x3_row);
    check_rows<float>(name, 5, loops.depthwise5x5_row);
    check_rows<uint16_t>(name + " bf16", 3, loops.depthwise3x3_row_bf16);
    check_rows<float, uint16_t>(name + " float32 to bf16", 5, loops.depthwise5x5_row_bf16_out);
    check_rows<float, uint16_t>(name + " float32 to bf16", 3, loops.depthwise3x3_row_bf16_out);
  }
}

namespace {

// Two rows at once (input rows 0-2 and 1-3 of four) against a float64
// loop on each, within float32 or bfloat16 rounding: not against the one-row
// loop bit for bit, as compilers contract its multiply-adds differently
// (clang's and GCC's AVX2 code differed in the last bit). Input rows
// missing above, below or neither. In, Out: the element types of the input
// rows and of the output (T for both where given one).
template <typename In, typename Out = In, typename TwoRows>
void check_two_rows(const std::string& path, TwoRows two_rows) {
  for (int64_t channels : {5, 16, 37}) {
    for (int64_t in_stride : {channels, 4 * channels}) {
      for (int64_t width = 1; width <= 21; ++width) {
        for (int missing : {-1, 0, 3}) {  // none, the top row, the bottom row
          const auto seed = static_cast<uint32_t>(width * 100 + channels + missing);
          const std::vector<In> input =
              narrow<In>(random_vector(static_cast<size_t>(4 * width * in_stride), seed));
          const std::vector<float> taps =
              random_vector(static_cast<size_t>(9 * channels), seed + 1, 0.3f);
          const std::vector<float> bias = random_vector(static_cast<size_t>(channels), seed + 2);
          const In* rows[4];
          for (int i = 0; i < 4; ++i) {
            rows[i] = i == missing ? nullptr : input.data() + i * width * in_stride;
          }
          const size_t count = static_cast<size_t>(width * channels);
          std::vector<Out> got = narrow<Out>(std::vector<float>(2 * count + 1, -7.0f));
          Out* const out[2] = {got.data(), got.data() + count};
          two_rows(rows, taps.data(), bias.data(), width, channels, in_stride, out);
          const double worst =
              std::max(worst_error(3, rows, taps, bias, width, channels, in_stride, out[0]),
                       worst_error(3, rows + 1, taps, bias, width, channels, in_stride, out[1]));
          INFO(path << ", width " << width << ", " << channels << " channels of " << in_stride
                    << ", row " << missing << " missing: worst error beyond rounding " << worst);
          CHECK(worst <= 1e-5);
          CHECK(widen(got.back()) == -7.0f);  // nothing written past the second row
        }
      }
    }
  }
}

}  // namespace

TEST_CASE("two 3x3 depthwise rows at once match a float64 loop on every instruction set") {
  for (Isa isa : ravlt::test::isas_present()) {
    const DepthwiseLoops& loops = depthwise_loops(isa);
    const std::string name = isa_name(isa);
    check_two_rows<float>(name, loops.depthwise3x3_two_rows);
    check_two_rows<uint16_t>(name + " bf16", loops.depthwise3x3_two_rows_bf16);
    check_two_rows<float, uint16_t>(name + " float32 to bf16",
                                    loops.depthwise3x3_two_rows_bf16_out);
  }
}
