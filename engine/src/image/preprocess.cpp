// torchvision's evaluation transform on a PIL image, step by step:
// Resize(int) -> CenterCrop -> ToTensor -> Normalize (spec §7).
#include <cmath>
#include <string>

#include "ravlt/error.h"
#include "ravlt/image.h"

namespace ravlt {
namespace {

// torchvision's _compute_resized_output_size for an int size: the shorter
// side becomes `size`, the longer int(size * long / short) (Python's true
// division of the exact product, then truncation).
std::pair<int, int> resized_size(int width, int height, int size) {
  const bool portrait = width <= height;
  const int64_t shorter = portrait ? width : height, longer = portrait ? height : width;
  const auto new_long = static_cast<int64_t>(static_cast<double>(int64_t{size} * longer) /
                                             static_cast<double>(shorter));
  if (new_long > INT32_MAX / 4) throw Error("preprocess: resized image would be too large");
  const int l = static_cast<int>(new_long);
  return portrait ? std::pair{size, l} : std::pair{l, size};
}

// Python's round() of a half-integer-or-integer value: halves to even.
int round_half_even(int twice) {
  if (twice % 2 == 0) return twice / 2;
  const int down = (twice - 1) / 2;  // twice is odd: the two candidates are down, down + 1
  return down % 2 == 0 ? down : down + 1;
}

}  // namespace

Tensor preprocess(const Image& image, const Preprocessing& p) {
  if (image.width <= 0 || image.height <= 0) throw Error("preprocess: the image is empty");
  // 0 means: not resized / not cropped (a backbone's default).
  if (p.resize < 0 || p.crop_height < 0 || p.crop_width < 0 ||
      (p.crop_height == 0) != (p.crop_width == 0)) {
    throw Error("preprocess: resize and crop sizes must be positive, or 0 for none");
  }
  const auto [rw, rh] = p.resize > 0 ? resized_size(image.width, image.height, p.resize)
                                     : std::pair<int, int>(image.width, image.height);
  const Image resized = p.resize > 0 ? resize_like_pillow(image, rw, rh, p.bilinear) : image;
  const int crop_h = p.crop_height > 0 ? p.crop_height : rh;
  const int crop_w = p.crop_width > 0 ? p.crop_width : rw;

  // CenterCrop: an image smaller than the crop is padded with zeros first,
  // left/top getting the smaller half (torchvision's padding_ltrb).
  const int pad_left = crop_w > rw ? (crop_w - rw) / 2 : 0;
  const int pad_top = crop_h > rh ? (crop_h - rh) / 2 : 0;
  const int pw = crop_w > rw ? crop_w : rw;
  const int ph = crop_h > rh ? crop_h : rh;
  // Offsets round((size - crop) / 2.0): (size - crop) is an integer, so its
  // half is an integer or a half-integer.
  const int top = round_half_even(ph - crop_h);
  const int left = round_half_even(pw - crop_w);

  Tensor t;
  t.shape = {1, 3, crop_h, crop_w};
  const size_t plane = static_cast<size_t>(crop_h) * static_cast<size_t>(crop_w);
  t.data.resize(3 * plane);
  for (int c = 0; c < 3; ++c) {
    const float mean = p.mean[c], std = p.std[c];
    for (int y = 0; y < crop_h; ++y) {
      const int sy = y + top - pad_top;  // row in the resized image
      for (int x = 0; x < crop_w; ++x) {
        const int sx = x + left - pad_left;
        const bool inside = sy >= 0 && sy < rh && sx >= 0 && sx < rw;
        const uint8_t v = inside ? resized.rgb[(static_cast<size_t>(sy) * static_cast<size_t>(rw) +
                                                static_cast<size_t>(sx)) *
                                                   3 +
                                               static_cast<size_t>(c)]
                                 : 0;
        // ToTensor divides by 255, Normalize subtracts and divides: float32
        // operations in that order (not a multiply by a reciprocal).
        const float scaled = static_cast<float>(v) / 255.0f;
        t.data[static_cast<size_t>(c) * plane + static_cast<size_t>(y) * crop_w +
               static_cast<size_t>(x)] = (scaled - mean) / std;
      }
    }
  }
  return t;
}

}  // namespace ravlt
