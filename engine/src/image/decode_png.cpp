// PNG through libpng's progressive-free classic API, converted as Pillow's
// PngImagePlugin + convert("RGB") do:
//   - palette -> RGB through the palette; grayscale 1/2/4-bit scaled to
//     0..255 (Pillow's "1", "L;2", "L;4" unpackers do the same);
//   - 16-bit grayscale opens in Pillow's mode "I" with its 16-bit values,
//     and I -> RGB clips them to 255 (not scaled);
//   - other 16-bit images keep the high byte ("RGB;16B", "LA;16B", ...);
//   - alpha and tRNS transparency are dropped, never blended;
//   - no gamma, colour profile or background handling (Pillow applies none).
// libpng's errors longjmp back here: every C++ object is constructed before
// setjmp, as in decode_jpeg.cpp.
#include <png.h>

#include <cstring>
#include <string>
#include <vector>

#include "engine/src/image/decoders.h"
#include "formats/fuzzing.h"
#include "ravlt/error.h"

namespace ravlt::image {
namespace {

struct Reader {
  std::span<const uint8_t> data;
  size_t offset = 0;
  char message[256] = {};
};

void read_bytes(png_structp png, png_bytep out, png_size_t length) {
  auto* r = static_cast<Reader*>(png_get_io_ptr(png));
  if (length > r->data.size() - r->offset) png_error(png, "file is truncated");
  std::memcpy(out, r->data.data() + r->offset, length);
  r->offset += length;
}

[[noreturn]] void on_error(png_structp png, png_const_charp message) {
  auto* r = static_cast<Reader*>(png_get_error_ptr(png));
  std::strncpy(r->message, message, sizeof r->message - 1);
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}  // recoverable: as Pillow, go on

struct Guard {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~Guard() { png_destroy_read_struct(&png, &info, nullptr); }
};

}  // namespace

Image decode_png(std::span<const uint8_t> encoded, uint64_t max_pixels) {
  // The size guard reads IHDR itself (the first chunk, at byte 8): libpng
  // would want the whole header up to the first IDAT before telling.
  if (encoded.size() >= 24 && std::memcmp(encoded.data() + 12, "IHDR", 4) == 0) {
    const auto be32 = [&](size_t at) {
      return uint64_t{encoded[at]} << 24 | uint64_t{encoded[at + 1]} << 16 |
             uint64_t{encoded[at + 2]} << 8 | uint64_t{encoded[at + 3]};
    };
    const uint64_t w = be32(16), h = be32(20);
    if (w > 0 && h > 0) check_size("PNG", w, h, max_pixels);
  }
  Reader reader{encoded, 0, {}};
  Image out;
  std::vector<uint8_t> pixels;
  std::vector<png_bytep> rows;
  Guard guard;
  guard.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &reader, on_error, on_warning);
  if (guard.png == nullptr) throw Error("PNG: out of memory");
  guard.info = png_create_info_struct(guard.png);
  if (guard.info == nullptr) throw Error("PNG: out of memory");
  png_structp png = guard.png;
  png_infop info = guard.info;
  if (setjmp(png_jmpbuf(png))) throw Error(std::string("corrupt PNG: ") + reader.message);

  png_set_read_fn(png, &reader, read_bytes);
  // A bad checksum on any chunk is an error, as in Pillow (libpng would
  // only warn about ancillary chunks).
  png_set_crc_action(png, PNG_CRC_DEFAULT, PNG_CRC_ERROR_QUIT);
  if (kFuzzingBuild) {  // mutated inputs must reach the decoder (formats/fuzzing.h)
    png_set_crc_action(png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
#ifdef PNG_IGNORE_ADLER32
    png_set_option(png, PNG_IGNORE_ADLER32, PNG_OPTION_ON);
#endif
  }
  // Image size limits are ours (check_size); libpng's own default (1e6
  // per side) stays as a second guard.
  png_read_info(png, info);
  const png_uint_32 width = png_get_image_width(png, info);
  const png_uint_32 height = png_get_image_height(png, info);
  check_size("PNG", width, height, max_pixels);
  const int color_type = png_get_color_type(png, info);
  const int bit_depth = png_get_bit_depth(png, info);
  const bool gray16 = color_type == PNG_COLOR_TYPE_GRAY && bit_depth == 16;

  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (bit_depth == 16) {
    if (gray16) {
      png_set_swap(png);  // host-order uint16 values, clipped below
    } else {
      png_set_strip_16(png);  // the high byte
    }
  }
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  const size_t channels = png_get_channels(png, info);
  const size_t row_bytes = png_get_rowbytes(png, info);
  if (channels < 1 || channels > 4 || row_bytes != width * channels * (gray16 ? 2 : 1)) {
    throw Error("PNG: unexpected pixel layout after conversion");
  }
  pixels.resize(row_bytes * height);
  rows.resize(height);
  for (size_t y = 0; y < height; ++y) rows[y] = pixels.data() + y * row_bytes;
  png_read_image(png, rows.data());
  png_read_end(png, nullptr);

  out.width = static_cast<int>(width);
  out.height = static_cast<int>(height);
  out.rgb.resize(static_cast<size_t>(width) * height * 3);
  const size_t count = static_cast<size_t>(width) * height;
  uint8_t* dst = out.rgb.data();
  if (gray16) {
    for (size_t i = 0; i < count; ++i) {
      uint16_t v;
      std::memcpy(&v, pixels.data() + 2 * i, 2);
      dst[3 * i] = dst[3 * i + 1] = dst[3 * i + 2] = static_cast<uint8_t>(v > 255 ? 255 : v);
    }
    return out;
  }
  for (size_t i = 0; i < count; ++i) {
    const uint8_t* p = pixels.data() + i * channels;
    if (channels >= 3) {  // RGB, RGBA: alpha dropped
      dst[3 * i] = p[0];
      dst[3 * i + 1] = p[1];
      dst[3 * i + 2] = p[2];
    } else {  // gray, gray + alpha: replicated, alpha dropped
      dst[3 * i] = dst[3 * i + 1] = dst[3 * i + 2] = p[0];
    }
  }
  return out;
}

}  // namespace ravlt::image
