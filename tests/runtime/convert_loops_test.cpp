// The row conversions of every instruction set (ConvertLoops) against
// base's scalar ones, bit for bit: the bfloat16 activations of a plan and
// the weights P of softmax attention on AMX are narrowed by them, with
// AVX512_BF16's own instruction where the CPU has one.
#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "base/half_float.h"
#include "runtime/cpu/isa.h"
#include "runtime/cpu/isa_kernels.h"

using namespace ravlt::runtime::cpu;

namespace {

float from_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// Values where rounding can go wrong: ties to even (both ways), the
// largest finite float (rounds to infinity), infinities, quiet and
// signalling NaNs of both signs, zeros; then random floats over the whole
// exponent range. The length is no multiple of a register (a tail).
std::vector<float> edge_values() {
  std::vector<float> v;
  for (uint32_t bits :
       {0x3f808000u, 0x3f818000u, 0x3f807fffu, 0x3f808001u, 0xbf808000u, 0x7f7fffffu, 0xff7fffffu,
        0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00001u, 0x7f800001u, 0xff80ffffu, 0x00000000u,
        0x80000000u, 0x3f800000u, 0x477fe000u}) {
    v.push_back(from_bits(bits));
  }
  std::mt19937 rng(5);
  std::uniform_int_distribution<uint32_t> any;
  while (v.size() < 1000 + 7) {
    const uint32_t bits = any(rng);
    // Subnormals aside: AVX512_BF16's conversion flushes them to zero.
    if ((bits & 0x7f800000u) == 0 && (bits & 0x007fffffu) != 0) continue;
    v.push_back(from_bits(bits));
  }
  return v;
}

}  // namespace

TEST_CASE("bfloat16 rows narrow and widen as base's casts, on every instruction set") {
  const std::vector<float> values = edge_values();
  std::vector<uint16_t> want(values.size());
  for (size_t i = 0; i < values.size(); ++i) want[i] = ravlt::float_to_bfloat16(values[i]);
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (static_cast<int>(isa) > static_cast<int>(detected_isa())) continue;
    const ConvertLoops& loops = convert_loops(isa);
    std::vector<uint16_t> got(values.size(), 0xdead);
    loops.f32_to_bf16(values.data(), got.data(), static_cast<int64_t>(values.size()));
    size_t wrong = 0;
    for (size_t i = 0; i < values.size(); ++i) {
      if (got[i] != want[i]) {
        if (wrong++ < 5) {
          uint32_t bits;
          std::memcpy(&bits, &values[i], sizeof bits);
          std::ostringstream line;
          line << isa_name(isa) << ": 0x" << std::hex << bits << " -> 0x" << got[i] << ", want 0x"
               << want[i];
          MESSAGE(line.str());
        }
      }
    }
    INFO(std::string(isa_name(isa)));
    CHECK(wrong == 0);
    std::vector<float> back(values.size());
    loops.bf16_to_f32(want.data(), back.data(), static_cast<int64_t>(want.size()));
    size_t widened_wrong = 0;
    for (size_t i = 0; i < values.size(); ++i) {
      const float expected = ravlt::bfloat16_to_float(want[i]);
      widened_wrong += std::memcmp(&back[i], &expected, sizeof expected) != 0 ? 1 : 0;
    }
    CHECK(widened_wrong == 0);
  }
}

TEST_CASE("strided bfloat16 rows convert in one call and leave the gaps between rows alone") {
  // 5 rows of 37 elements, 50 apart: a head's columns within token rows.
  constexpr int64_t kRows = 5, kCols = 37, kStride = 50;
  std::vector<uint16_t> strided(kRows * kStride, 0xbeef);
  std::vector<float> dense(kRows * kCols);
  for (size_t i = 0; i < dense.size(); ++i) dense[i] = 0.37f * static_cast<float>(i) - 11.0f;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (static_cast<int>(isa) > static_cast<int>(detected_isa())) continue;
    INFO(std::string(isa_name(isa)));
    const ConvertLoops& loops = convert_loops(isa);
    std::vector<uint16_t> out(strided);
    loops.f32_rows_to_bf16(dense.data(), kRows, kCols, out.data(), kStride);
    std::vector<float> back(kRows * kCols, -1.0f);
    loops.bf16_rows_to_f32(out.data(), kStride, kRows, kCols, back.data());
    size_t wrong = 0, gaps_touched = 0;
    for (int64_t r = 0; r < kRows; ++r) {
      for (int64_t e = 0; e < kStride; ++e) {
        const uint16_t got = out[static_cast<size_t>(r * kStride + e)];
        if (e >= kCols) {
          gaps_touched += got != 0xbeef ? 1 : 0;
          continue;
        }
        const float x = dense[static_cast<size_t>(r * kCols + e)];
        wrong += got != ravlt::float_to_bfloat16(x) ? 1 : 0;
        wrong += back[static_cast<size_t>(r * kCols + e)] != ravlt::bfloat16_to_float(got) ? 1 : 0;
      }
    }
    CHECK(wrong == 0);
    CHECK(gaps_touched == 0);
  }
}
