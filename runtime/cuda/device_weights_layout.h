// Layouts the CUDA kernels want their weights in, made once at upload.
// Host code only, tested on any machine (tests/runtime/device_path_test.cpp,
// "convolution weights reordered for the CUDA kernels keep every tap").
#pragma once

#include <vector>

#include "runtime/graph.h"

namespace ravlt::runtime::cuda {

enum class WeightLayout : int {
  kAsStored,  ///< as in the file (Linear: [out][in], row-major)
  kConvHwio,  ///< Conv2d [kh][kw][in / groups][out], from PyTorch's [out][in / groups][kh][kw]
  kConvOhwi,  ///< Conv2d [out][kh][kw][in]: the GEMM operand matching im2col's columns
};

/// A copy of an [co][ci][kh][kw] convolution weight with element (o, i, y,
/// x) at index(o, i, y, x).
template <typename Index>
std::vector<float> reorder_conv_weight(const Shape& oihw, const float* data, Index index) {
  const int64_t co = oihw[0], ci = oihw[1], kh = oihw[2], kw = oihw[3];
  std::vector<float> out(static_cast<size_t>(co * ci * kh * kw));
  for (int64_t o = 0; o < co; ++o)
    for (int64_t i = 0; i < ci; ++i)
      for (int64_t y = 0; y < kh; ++y)
        for (int64_t x = 0; x < kw; ++x)
          out[static_cast<size_t>(index(o, i, y, x))] = data[((o * ci + i) * kh + y) * kw + x];
  return out;
}

/// The [kh][kw][ci][co] copy (the direct kernel's order).
inline std::vector<float> conv_weight_to_hwio(const Shape& oihw, const float* data) {
  const int64_t co = oihw[0], ci = oihw[1], kw = oihw[3];
  return reorder_conv_weight(oihw, data, [=](int64_t o, int64_t i, int64_t y, int64_t x) {
    return ((y * kw + x) * ci + i) * co + o;
  });
}

/// The [co][kh][kw][ci] copy (the GEMM's, matching im2col's columns).
inline std::vector<float> conv_weight_to_ohwi(const Shape& oihw, const float* data) {
  const int64_t ci = oihw[1], kh = oihw[2], kw = oihw[3];
  return reorder_conv_weight(oihw, data, [=](int64_t o, int64_t i, int64_t y, int64_t x) {
    return ((o * kh + y) * kw + x) * ci + i;
  });
}

}  // namespace ravlt::runtime::cuda
