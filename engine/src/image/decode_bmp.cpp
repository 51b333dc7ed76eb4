// BMP through Debian's stb_image (libstb): uncompressed 1/4/8-bit palette,
// 24 and 32-bit, bottom-up or top-down; alpha dropped as Pillow's
// convert("RGB") does. Refused with an error, though Pillow reads them:
// RLE-compressed BMPs (stb_image cannot) and 16-bit ones (see below).
#include <stb_image.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "engine/src/image/decoders.h"
#include "ravlt/error.h"

namespace ravlt::image {
namespace {

uint32_t le(std::span<const uint8_t> b, size_t at, size_t bytes) {
  uint32_t v = 0;
  for (size_t i = 0; i < bytes; ++i) v |= static_cast<uint32_t>(b[at + i]) << (8 * i);
  return v;
}

// stb_image decodes a BMP whose pixel data is cut short (it reads zeros
// past the end); Pillow refuses it, and so do we: an uncompressed BMP must
// hold offset + stride x height bytes.
void check_not_truncated(std::span<const uint8_t> b) {
  if (b.size() < 30) throw Error("corrupt BMP: file is truncated (no complete header)");
  const uint32_t offset = le(b, 10, 4), header = le(b, 14, 4);
  uint64_t width = 0, height = 0, bits = 0, compression = 0;
  if (header == 12) {  // OS/2 core header: 16-bit sizes
    width = le(b, 18, 2);
    height = le(b, 20, 2);
    bits = le(b, 24, 2);
  } else {
    if (b.size() < 34) throw Error("corrupt BMP: file is truncated (no complete header)");
    width =
        static_cast<uint64_t>(std::abs(static_cast<int64_t>(static_cast<int32_t>(le(b, 18, 4)))));
    height =
        static_cast<uint64_t>(std::abs(static_cast<int64_t>(static_cast<int32_t>(le(b, 22, 4)))));
    bits = le(b, 28, 2);
    compression = le(b, 30, 4);
  }
  // Pillow expands 5-bit channels as v * 255 / 31, stb_image by bit
  // replication: they differ, so 16-bit BMPs are refused rather than
  // decoded differently.
  if (bits == 16) throw Error("16-bit BMP images are not supported");
  if (compression != 0 && compression != 3) return;  // compressed: stb_image refuses it
  const uint64_t stride = (width * bits + 31) / 32 * 4;
  if (uint64_t{offset} + stride * height > b.size()) {
    throw Error("corrupt BMP: file is truncated (" + std::to_string(b.size()) +
                " bytes, the pixels need " + std::to_string(uint64_t{offset} + stride * height) +
                ")");
  }
}

}  // namespace

Image decode_bmp(std::span<const uint8_t> encoded, uint64_t max_pixels) {
  if (encoded.size() > static_cast<size_t>(INT_MAX)) throw Error("BMP file is too large");
  const auto* data = reinterpret_cast<const stbi_uc*>(encoded.data());
  const int length = static_cast<int>(encoded.size());
  int width = 0, height = 0, channels = 0;
  if (!stbi_info_from_memory(data, length, &width, &height, &channels)) {
    throw Error(std::string("corrupt BMP: ") + stbi_failure_reason());
  }
  check_size("BMP", static_cast<uint64_t>(width), static_cast<uint64_t>(height), max_pixels);
  check_not_truncated(encoded);
  std::unique_ptr<stbi_uc, decltype(&stbi_image_free)> pixels(
      stbi_load_from_memory(data, length, &width, &height, &channels, 3), stbi_image_free);
  if (!pixels) throw Error(std::string("corrupt BMP: ") + stbi_failure_reason());
  Image out;
  out.width = width;
  out.height = height;
  out.rgb.assign(pixels.get(), pixels.get() + static_cast<size_t>(width) * height * 3);
  return out;
}

}  // namespace ravlt::image
