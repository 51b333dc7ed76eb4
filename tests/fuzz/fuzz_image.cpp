// Fuzzes the image decoders (JPEG, PNG, BMP, by signature) and the
// preprocessing behind them. The pixel limit is small so that a mutated
// header cannot make one execution decode gigapixels.
#include "ravlt/error.h"
#include "ravlt/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ravlt::DecodeOptions options;
  options.max_pixels = 4u << 20;
  try {
    const ravlt::Image im = ravlt::decode_image(std::span<const uint8_t>(data, size), options);
    if (im.rgb.size() != static_cast<size_t>(im.width) * im.height * 3) __builtin_trap();
    ravlt::Preprocessing p;
    p.resize = 40;
    p.crop_height = 32;
    p.crop_width = 36;
    const ravlt::Tensor t = ravlt::preprocess(im, p);
    if (t.data.size() != 3u * 32 * 36) __builtin_trap();
  } catch (const ravlt::Error&) {
  }
  return 0;
}
