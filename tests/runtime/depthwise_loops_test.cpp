// Our depthwise convolution rows (DepthwiseLoops: the fused FFN's 3x3 and
// the Conv2d nodes' 3x3 and 5x5) on every instruction set against a plain
// float64 loop: every width from 1 to 21 (blocks of 8 and a last one of 1 to 7
// at and away from the edges), channels beyond whole registers, input
// pixels wider than the channels computed (a slice read in place), rows
// missing above and below the image.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "runtime/cpu/isa.h"
#include "runtime/cpu/isa_kernels.h"
#include "tests/runtime/cpu_test_util.h"
#include "tests/test_util.h"

using namespace ravlt::runtime::cpu;
using ravlt::test::random_vector;

TEST_CASE("depthwise rows match a float64 loop on every instruction set, 3x3 and 5x5") {
  for (Isa isa : ravlt::test::isas_present()) {
    const DepthwiseLoops& loops = depthwise_loops(isa);
    for (int k : {3, 5}) {
      for (int64_t channels : {5, 16, 37}) {
        for (int64_t in_stride : {channels, 4 * channels}) {
          for (int64_t width = 1; width <= 21; ++width) {
            const auto seed = static_cast<uint32_t>(width * 100 + channels + k);
            const std::vector<float> input =
                random_vector(static_cast<size_t>(k * width * in_stride), seed);
            const std::vector<float> taps =
                random_vector(static_cast<size_t>(k * k * channels), seed + 1, 0.3f);
            const std::vector<float> bias = random_vector(static_cast<size_t>(channels), seed + 2);
            // The first and last rows outside the image where width is odd.
            const bool cut = width % 2 == 1;
            const float* rows[5];
            for (int i = 0; i < k; ++i) {
              const bool outside = cut && (i == 0 || i == k - 1);
              rows[i] = outside ? nullptr : input.data() + i * width * in_stride;
            }
            std::vector<float> out(static_cast<size_t>(width * channels) + 1, -7.0f);
            (k == 3 ? loops.depthwise3x3_row : loops.depthwise5x5_row)(
                rows, taps.data(), bias.data(), width, channels, in_stride, out.data());
            double worst = 0.0;
            for (int64_t x = 0; x < width; ++x) {
              for (int64_t c = 0; c < channels; ++c) {
                double want = bias[static_cast<size_t>(c)];
                for (int i = 0; i < k; ++i) {
                  for (int j = 0; j < k; ++j) {
                    const int64_t at = x + j - k / 2;
                    if (rows[i] == nullptr || at < 0 || at >= width) continue;
                    want +=
                        static_cast<double>(taps[static_cast<size_t>((i * k + j) * channels + c)]) *
                        rows[i][at * in_stride + c];
                  }
                }
                worst =
                    std::max(worst, std::abs(out[static_cast<size_t>(x * channels + c)] - want));
              }
            }
            const std::string what = std::string(isa_name(isa)) + ", " + std::to_string(k) + "x" +
                                     std::to_string(k) + ", width " + std::to_string(width) + ", " +
                                     std::to_string(channels) + " channels of " +
                                     std::to_string(in_stride);
            INFO(what << ": worst error " << worst);
            CHECK(worst <= 1e-5);
            CHECK(out.back() == -7.0f);  // nothing written past the row
          }
        }
      }
    }
  }
}
