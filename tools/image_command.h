// What the image commands (classify, embed) share: their inputs, options
// and how they open the model.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ravlt/classifier.h"
#include "tools/device_options.h"

namespace ravlt::tools {

struct ImageArgs {
  std::string model;
  std::vector<std::string> inputs;
  int batch = 8;
  int threads = 0;
  bool json = false;
  bool verbose = false;
  DeviceArgs device;
  uint64_t max_pixels = DecodeOptions{}.max_pixels;
};

/// Registers -m, the image arguments, --batch, --threads, --json (with
/// `json_help`), the device options, --max-pixels and --verbose.
void add_image_options(CLI::App* cmd, ImageArgs* args, const std::string& json_help);

/// Files as given (whatever their name), and the JPEG, PNG and BMP files
/// under the folders given, recursively, sorted by path for a stable
/// order. Throws ravlt::Error on a folder that cannot be listed, or when
/// nothing is found.
std::vector<std::string> collect_images(const std::vector<std::string>& inputs);

/// The classifier the arguments ask for (`top_k` classes per image) for a
/// job of `images` (which decides the weights' packing by default), and
/// its model in `model` where given (opened once: loading verifies the
/// whole file). Throws ravlt::Error with a one-line reason on a backbone,
/// pointing at `ravlt run`.
std::unique_ptr<Classifier> open_classifier(const ImageArgs& args, size_t images, int top_k,
                                            std::shared_ptr<const Model>* model);

}  // namespace ravlt::tools
