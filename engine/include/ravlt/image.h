// Decoding images and preparing them for the network exactly as the
// authors' evaluation does (Pillow 9.4 + torchvision; spec §7).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ravlt/model.h"

#include "ravlt/export.h"

namespace ravlt {

/// An 8-bit RGB image: rows top to bottom, pixels left to right, channels
/// interleaved R, G, B (`rgb.size() == width * height * 3`).
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;
};

struct DecodeOptions {
  /// Largest width * height accepted, checked from the file's header before
  /// any pixel is decoded (a decompression-bomb guard). The default is the
  /// pixel count at which Pillow refuses an image (2 * MAX_IMAGE_PIXELS).
  uint64_t max_pixels = 178956970;
};

/// Decodes a JPEG (baseline or progressive), PNG (any bit depth, palette,
/// grayscale, alpha, interlaced) or BMP held in memory and converts it to
/// RGB as Pillow's `Image.open(f).convert("RGB")` does: alpha is dropped,
/// not blended; grayscale is replicated; a 16-bit grayscale PNG keeps its
/// values and clips them to 255 (Pillow's mode "I"), while other 16-bit
/// PNGs keep the high byte; EXIF orientation is ignored. The format is
/// recognised by its signature, not by a file name. Throws ravlt::Error on
/// anything else, on a corrupt or truncated file and on an image larger than
/// `options.max_pixels`. CMYK JPEGs and RLE-compressed or 16-bit BMPs are
/// refused (Pillow reads them; we do not yet).
RAVLT_API Image decode_image(std::span<const uint8_t> encoded, const DecodeOptions& options = {});

/// decode_image() on the contents of `path`; errors name the path.
RAVLT_API Image load_image(const std::string& path, const DecodeOptions& options = {});

/// Resizes with Pillow's resampling (`Image.resize`, bicubic a = -0.5 or
/// bilinear, support scaled by the reduction factor, fixed-point weights,
/// horizontal pass first and a rounding to 8 bits between the passes):
/// bit-identical to Pillow 9.4.
RAVLT_API Image resize_like_pillow(const Image& image, int width, int height,
                                   bool bilinear = false);

/// The tensor the network sees for `image`: torchvision's
/// `Resize(resize, BICUBIC)` (shorter side to `resize`, the longer to
/// `int(resize * long / short)`), `CenterCrop` (offsets rounded half to
/// even, as Python does; an image smaller than the crop is first padded
/// with zeros as torchvision does), `ToTensor` and `Normalize`, in float32.
/// Returns (1, 3, crop_height, crop_width). Throws ravlt::Error on an empty
/// image or non-positive sizes.
RAVLT_API Tensor preprocess(const Image& image, const Preprocessing& preprocessing);

}  // namespace ravlt
