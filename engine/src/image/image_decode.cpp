#include <cstring>
#include <string>

#include "engine/src/image/decoders.h"
#include "formats/mapped_file.h"
#include "ravlt/error.h"

namespace ravlt {
namespace image {

void check_size(const char* format, uint64_t width, uint64_t height, uint64_t max_pixels) {
  if (width == 0 || height == 0) {
    throw Error(std::string(format) + " image is empty (" + std::to_string(width) + " x " +
                std::to_string(height) + ")");
  }
  // Both sides come from 32-bit header fields: the product fits 64 bits.
  if (width * height > max_pixels) {
    throw Error(std::string(format) + " image of " + std::to_string(width) + " x " +
                std::to_string(height) + " = " + std::to_string(width * height) +
                " pixels exceeds the limit of " + std::to_string(max_pixels) +
                " (a decompression-bomb guard; raise it if the file is trusted)");
  }
}

}  // namespace image

namespace {

bool starts_with(std::span<const uint8_t> bytes, const char* signature, size_t length) {
  return bytes.size() >= length && std::memcmp(bytes.data(), signature, length) == 0;
}

}  // namespace

Image decode_image(std::span<const uint8_t> encoded, const DecodeOptions& options) {
  if (starts_with(encoded, "\xFF\xD8\xFF", 3))
    return image::decode_jpeg(encoded, options.max_pixels);
  if (starts_with(encoded, "\x89PNG\r\n\x1A\n", 8)) {
    return image::decode_png(encoded, options.max_pixels);
  }
  if (starts_with(encoded, "BM", 2)) return image::decode_bmp(encoded, options.max_pixels);
  throw Error("not a JPEG, PNG or BMP image (unrecognised signature)");
}

Image load_image(const std::string& path, const DecodeOptions& options) {
  const MappedFile file(path);
  try {
    return decode_image(file.bytes(), options);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

}  // namespace ravlt
