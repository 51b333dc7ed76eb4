#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "base/half_float.h"

using namespace ravlt;

TEST_CASE("half precision conversions match IEEE binary16") {
  CHECK(float_to_half(0.0f) == 0x0000);
  CHECK(float_to_half(-0.0f) == 0x8000);
  CHECK(float_to_half(1.0f) == 0x3c00);
  CHECK(float_to_half(-2.0f) == 0xc000);
  CHECK(float_to_half(65504.0f) == 0x7bff);            // largest finite
  CHECK(float_to_half(65520.0f) == 0x7c00);            // rounds to infinity
  CHECK(float_to_half(5.9604645e-08f) == 0x0001);      // smallest subnormal
  CHECK(float_to_half(2.9802322e-08f) == 0x0000);      // half of it: ties to even (0)
  CHECK(float_to_half(1.0f + 1.0f / 2048) == 0x3c00);  // tie, rounds to even
  CHECK(float_to_half(1.0f + 3.0f / 2048) == 0x3c02);  // tie, rounds to even (up)
  CHECK(float_to_half(std::numeric_limits<float>::infinity()) == 0x7c00);
  CHECK((float_to_half(std::nanf("")) & 0x7c00) == 0x7c00);
  CHECK((float_to_half(std::nanf("")) & 0x03ff) != 0);
  CHECK(half_to_float(0x3555) == doctest::Approx(0.333251953125));
  CHECK(half_to_float(0x0001) == 5.9604645e-08f);
  CHECK(half_to_float(0x03ff) == 6.0975552e-05f);  // largest subnormal
  CHECK(std::isinf(half_to_float(0xfc00)));
  // Every finite half survives a round trip through float.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00) continue;
    REQUIRE(float_to_half(half_to_float(static_cast<uint16_t>(h))) == h);
  }
}

TEST_CASE("bfloat16 conversions round to nearest even") {
  CHECK(float_to_bfloat16(1.0f) == 0x3f80);
  CHECK(bfloat16_to_float(0x3f80) == 1.0f);
  float f;
  uint32_t bits = 0x3f808000;  // exactly between 0x3f80 and 0x3f81
  std::memcpy(&f, &bits, 4);
  CHECK(float_to_bfloat16(f) == 0x3f80);
  bits = 0x3f818000;  // between 0x3f81 and 0x3f82: to even
  std::memcpy(&f, &bits, 4);
  CHECK(float_to_bfloat16(f) == 0x3f82);
  CHECK((float_to_bfloat16(std::nanf("")) & 0x7fc0) == 0x7fc0);
}

TEST_CASE("bulk conversions") {
  const float in[4] = {1.5f, -2.25f, 0.0f, 1024.0f};
  uint16_t half[4];
  float back[4];
  convert_from_float32(DType::kFloat16, in, half, 4);
  convert_to_float32(DType::kFloat16, half, back, 4);
  for (int i = 0; i < 4; ++i) CHECK(back[i] == in[i]);
  convert_from_float32(DType::kBFloat16, in, half, 4);
  convert_to_float32(DType::kBFloat16, half, back, 4);
  for (int i = 0; i < 4; ++i) CHECK(back[i] == in[i]);
  const int64_t ints[2] = {-3, 12345};
  float fi[2];
  convert_to_float32(DType::kInt64, ints, fi, 2);
  CHECK(fi[0] == -3.0f);
  CHECK(fi[1] == 12345.0f);
  CHECK_THROWS(convert_from_float32(DType::kInt64, in, half, 1));
  CHECK(dtype_size(DType::kBFloat16) == 2);
  CHECK(dtype_name(DType::kInt64) == "int64");
}
