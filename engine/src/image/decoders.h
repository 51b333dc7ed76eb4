// One decoder per format, behind decode_image() (image_decode.cpp), which
// recognises the format by its signature. Each returns RGB as Pillow's
// convert("RGB") would, checks the pixel count against the limit before
// decoding pixels, and throws ravlt::Error (without a path: the caller adds
// it) on corrupt or truncated data.
#pragma once

#include <cstdint>
#include <span>

#include "ravlt/image.h"

namespace ravlt::image {

Image decode_jpeg(std::span<const uint8_t> encoded, uint64_t max_pixels);
Image decode_png(std::span<const uint8_t> encoded, uint64_t max_pixels);
Image decode_bmp(std::span<const uint8_t> encoded, uint64_t max_pixels);

/// Throws if width x height is empty or above `max_pixels`.
void check_size(const char* format, uint64_t width, uint64_t height, uint64_t max_pixels);

}  // namespace ravlt::image
