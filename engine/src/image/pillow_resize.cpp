// Pillow 9.4's resampling (libImaging/Resample.c), reproduced to the bit:
//   - per output pixel, the input window and filter weights in double, the
//     filter's support widened by the reduction factor (antialiasing);
//   - weights normalised to sum 1, then rounded to fixed point with 22
//     fractional bits (away from zero at halves);
//   - the horizontal pass first, its result rounded and clipped to 8 bits,
//     then the vertical pass on that; a pass is skipped when its side keeps
//     its size.
// This file is compiled without floating-point contraction (CMake), as
// Pillow is on x86-64: a fused multiply-add would change some weights.
#include <climits>
#include <cmath>
#include <vector>

#include "ravlt/error.h"
#include "ravlt/image.h"

namespace ravlt {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

double bicubic(double x) {  // a = -0.5
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double bilinear(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

// Window start, window length and fixed-point weights of every output pixel
// along one axis (precompute_coeffs + normalize_coeffs_8bpc).
struct Coefficients {
  int ksize = 0;
  std::vector<int> start, length;
  std::vector<int32_t> weights;  // out_size x ksize
};

Coefficients precompute(int in_size, int out_size, bool use_bilinear) {
  const double support_of_filter = use_bilinear ? 1.0 : 2.0;
  const float in0 = 0.0f, in1 = static_cast<float>(in_size);
  double scale = static_cast<double>(in1 - in0) / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = support_of_filter * filterscale;
  Coefficients c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.start.resize(static_cast<size_t>(out_size));
  c.length.resize(static_cast<size_t>(out_size));
  c.weights.assign(static_cast<size_t>(out_size) * static_cast<size_t>(c.ksize), 0);
  std::vector<double> k(static_cast<size_t>(c.ksize));
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double arg = (x + xmin - center + 0.5) * ss;
      const double w = use_bilinear ? bilinear(arg) : bicubic(arg);
      k[static_cast<size_t>(x)] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; ++x) {
      if (ww != 0.0) k[static_cast<size_t>(x)] /= ww;
    }
    int32_t* fixed = c.weights.data() + static_cast<size_t>(xx) * static_cast<size_t>(c.ksize);
    for (int x = 0; x < xmax; ++x) {
      const double v = k[static_cast<size_t>(x)] * (1 << kPrecisionBits);
      fixed[x] = static_cast<int32_t>(v < 0 ? -0.5 + v : 0.5 + v);
    }
    c.start[static_cast<size_t>(xx)] = xmin;
    c.length[static_cast<size_t>(xx)] = xmax;
  }
  return c;
}

uint8_t clip8(int32_t in) {
  const int32_t v = in >> kPrecisionBits;  // arithmetic shift, as Pillow's table lookup
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

Image horizontal(const Image& in, int out_width, bool use_bilinear) {
  const Coefficients c = precompute(in.width, out_width, use_bilinear);
  Image out;
  out.width = out_width;
  out.height = in.height;
  out.rgb.resize(static_cast<size_t>(out_width) * static_cast<size_t>(in.height) * 3);
  for (int y = 0; y < in.height; ++y) {
    const uint8_t* src = in.rgb.data() + static_cast<size_t>(y) * in.width * 3;
    uint8_t* dst = out.rgb.data() + static_cast<size_t>(y) * out_width * 3;
    for (int xx = 0; xx < out_width; ++xx) {
      const int xmin = c.start[static_cast<size_t>(xx)], xmax = c.length[static_cast<size_t>(xx)];
      const int32_t* k = c.weights.data() + static_cast<size_t>(xx) * static_cast<size_t>(c.ksize);
      int32_t ss0 = 1 << (kPrecisionBits - 1), ss1 = ss0, ss2 = ss0;
      for (int x = 0; x < xmax; ++x) {
        const uint8_t* p = src + static_cast<size_t>(x + xmin) * 3;
        ss0 += p[0] * k[x];
        ss1 += p[1] * k[x];
        ss2 += p[2] * k[x];
      }
      dst[3 * xx] = clip8(ss0);
      dst[3 * xx + 1] = clip8(ss1);
      dst[3 * xx + 2] = clip8(ss2);
    }
  }
  return out;
}

Image vertical(const Image& in, int out_height, bool use_bilinear) {
  const Coefficients c = precompute(in.height, out_height, use_bilinear);
  Image out;
  out.width = in.width;
  out.height = out_height;
  const size_t row = static_cast<size_t>(in.width) * 3;
  out.rgb.resize(row * static_cast<size_t>(out_height));
  for (int yy = 0; yy < out_height; ++yy) {
    const int ymin = c.start[static_cast<size_t>(yy)], ymax = c.length[static_cast<size_t>(yy)];
    const int32_t* k = c.weights.data() + static_cast<size_t>(yy) * static_cast<size_t>(c.ksize);
    uint8_t* dst = out.rgb.data() + static_cast<size_t>(yy) * row;
    for (size_t i = 0; i < row; ++i) {
      int32_t ss = 1 << (kPrecisionBits - 1);
      for (int y = 0; y < ymax; ++y) ss += in.rgb[static_cast<size_t>(y + ymin) * row + i] * k[y];
      dst[i] = clip8(ss);
    }
  }
  return out;
}

}  // namespace

Image resize_like_pillow(const Image& image, int width, int height, bool use_bilinear) {
  if (width <= 0 || height <= 0 || image.width <= 0 || image.height <= 0) {
    throw Error("resize: sizes must be positive (" + std::to_string(image.width) + "x" +
                std::to_string(image.height) + " -> " + std::to_string(width) + "x" +
                std::to_string(height) + ")");
  }
  if (image.rgb.size() != static_cast<size_t>(image.width) * image.height * 3) {
    throw Error("resize: image holds " + std::to_string(image.rgb.size()) + " bytes, not " +
                std::to_string(image.width) + " x " + std::to_string(image.height) + " x 3");
  }
  // Pillow refuses windows whose coefficient table would overflow.
  if (width > INT_MAX / 64 || height > INT_MAX / 64) throw Error("resize: output too large");
  // Each pass reads the previous one's result; the input is copied only
  // when neither side changes (Pillow returns a copy then too).
  if (width == image.width) {
    return height == image.height ? image : vertical(image, height, use_bilinear);
  }
  Image out = horizontal(image, width, use_bilinear);
  return height == image.height ? out : vertical(out, height, use_bilinear);
}

}  // namespace ravlt
