// JPEG through libjpeg-turbo, the library Debian's Pillow decodes with, at
// its defaults (accurate integer IDCT, fancy upsampling), as Pillow does.
//
// libjpeg reports errors by calling a function that must not return; it
// longjmps back here. Every C++ object of decode_jpeg() is constructed
// before setjmp, so the jump skips no destructor (the C++ rule for
// setjmp/longjmp), and the guard destroys libjpeg's state on every exit.
#include <csetjmp>
#include <cstdio>  // jpeglib.h needs FILE
#include <string>
#include <vector>

// clang-format off
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

#include "engine/src/image/decoders.h"
#include "ravlt/error.h"

namespace ravlt::image {
namespace {

struct ErrorManager {
  jpeg_error_mgr pub;  // first: libjpeg sees a jpeg_error_mgr*
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void on_error(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->message);
  std::longjmp(e->jump, 1);
}

// Warnings are corrupt-data notices libjpeg recovers from. Running out of
// data is one of them (libjpeg pads the image with gray); Pillow refuses
// such a file ("image file is truncated"), and so do we.
void on_message(j_common_ptr cinfo, int level) {
  if (level == -1 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
    auto* e = reinterpret_cast<ErrorManager*>(cinfo->err);
    std::snprintf(e->message, sizeof e->message, "file is truncated");
    std::longjmp(e->jump, 1);
  }
}

struct Guard {
  jpeg_decompress_struct* cinfo;
  ~Guard() { jpeg_destroy_decompress(cinfo); }
};

}  // namespace

Image decode_jpeg(std::span<const uint8_t> encoded, uint64_t max_pixels) {
  jpeg_decompress_struct cinfo{};
  ErrorManager err{};
  Image out;
  std::vector<uint8_t> row;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = on_error;
  err.pub.emit_message = on_message;
  jpeg_create_decompress(&cinfo);
  const Guard guard{&cinfo};
  if (setjmp(err.jump)) throw Error(std::string("corrupt JPEG: ") + err.message);

  jpeg_mem_src(&cinfo, encoded.data(), static_cast<unsigned long>(encoded.size()));
  jpeg_read_header(&cinfo, TRUE);
  check_size("JPEG", cinfo.image_width, cinfo.image_height, max_pixels);
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    throw Error("CMYK JPEG images are not supported");
  }
  // Pillow decodes a one-component JPEG as "L", anything else as "RGB".
  cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  const size_t width = cinfo.output_width, height = cinfo.output_height;
  const int channels = cinfo.output_components;
  out.width = static_cast<int>(width);
  out.height = static_cast<int>(height);
  out.rgb.resize(width * height * 3);
  row.resize(width * static_cast<size_t>(channels));
  while (cinfo.output_scanline < cinfo.output_height) {
    const size_t y = cinfo.output_scanline;
    JSAMPROW rows[1] = {row.data()};
    jpeg_read_scanlines(&cinfo, rows, 1);
    uint8_t* dst = out.rgb.data() + y * width * 3;
    if (channels == 3) {
      std::copy(row.begin(), row.end(), dst);
    } else {
      for (size_t x = 0; x < width; ++x) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = row[x];
    }
  }
  jpeg_finish_decompress(&cinfo);
  return out;
}

}  // namespace ravlt::image
