// Conversions between float32 and the other element types: exact bit
// manipulations (round to nearest even when narrowing), matching PyTorch's
// float <-> half/bfloat16 casts.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ravlt/dtype.h"

namespace ravlt {

float half_to_float(uint16_t h);
uint16_t float_to_half(float f);
float bfloat16_to_float(uint16_t b);
uint16_t float_to_bfloat16(float f);

/// Converts n elements of type `from` at src to float32 at dst.
/// int64 values are converted with a C++ cast.
void convert_to_float32(DType from, const void* src, float* dst, size_t n);
/// Converts n float32 values to `to` (kFloat32, kFloat16 or kBFloat16) at dst.
void convert_from_float32(DType to, const float* src, void* dst, size_t n);

}  // namespace ravlt
