// ravlt preprocess: the tensor the network sees for an image.
#include <memory>

#include "ravlt/error.h"
#include "ravlt/image.h"
#include "ravlt/model.h"
#include "ravlt/tensor_io.h"
#include "tools/commands.h"
#include "tools/number_checks.h"
#include "tools/size_argument.h"

namespace ravlt::tools {

Runner add_preprocess_command(CLI::App& app) {
  struct Args {
    std::string image, output, model, crop;
    int resize = 0;
    std::vector<float> mean, std;
    uint64_t max_pixels = DecodeOptions{}.max_pixels;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "preprocess",
      "Decode an image and write the tensor the network sees (.npy, 1 x 3 x H x W float32)");
  cmd->add_option("image", args->image, "JPEG, PNG or BMP file")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", args->output, "tensor to write (.npy)")->required();
  cmd->add_option("-m,--model", args->model,
                  "take the preprocessing recorded in this model (default: ImageNet evaluation: "
                  "resize 256, crop 224, ImageNet mean and std)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--resize", args->resize, "override: shorter side resized to")
      ->check(positive_integer());
  cmd->add_option("--crop", args->crop, "override: centre crop, N or HxW");
  cmd->add_option("--mean", args->mean, "override: per-channel mean (3 values)")->expected(3);
  cmd->add_option("--std", args->std, "override: per-channel std (3 values)")->expected(3);
  cmd->add_option("--max-pixels", args->max_pixels,
                  "largest image accepted, in pixels (decompression-bomb guard)")
      ->capture_default_str();
  return [args] {
    Preprocessing p;
    if (!args->model.empty()) p = Model::load(args->model)->preprocessing();
    if (args->resize > 0) p.resize = args->resize;
    if (!args->crop.empty()) {
      const auto [h, w] = parse_size(args->crop, "--crop");
      p.crop_height = h;
      p.crop_width = w;
    }
    for (size_t c = 0; c < args->mean.size(); ++c) p.mean[c] = args->mean[c];
    for (size_t c = 0; c < args->std.size(); ++c) {
      if (!(args->std[c] > 0.0f)) throw Error("--std values must be positive");
      p.std[c] = args->std[c];
    }
    DecodeOptions decode;
    decode.max_pixels = args->max_pixels;
    save_npy(args->output, preprocess(load_image(args->image, decode), p));
    return 0;
  };
}

}  // namespace ravlt::tools
