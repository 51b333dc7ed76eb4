#include "tools/image_command.h"

#include <algorithm>
#include <filesystem>

#include "ravlt/error.h"
#include "tools/number_checks.h"

namespace ravlt::tools {
namespace {

bool is_image_name(const std::filesystem::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp";
}

}  // namespace

std::vector<std::string> collect_images(const std::vector<std::string>& inputs) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  for (const std::string& in : inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      std::vector<std::string> found;
      fs::recursive_directory_iterator it(in, fs::directory_options::skip_permission_denied, ec);
      if (ec) throw Error(in + ": cannot list: " + ec.message());
      for (const fs::directory_entry& e : it) {
        if (e.is_regular_file(ec) && is_image_name(e.path())) found.push_back(e.path().string());
      }
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else {
      files.push_back(in);  // a missing file becomes its own error line
    }
  }
  if (files.empty()) throw Error("no images found (JPEG, PNG or BMP files, or folders of them)");
  return files;
}

std::unique_ptr<Classifier> open_classifier(const ImageArgs& a, size_t images, int top_k,
                                            std::shared_ptr<const Model>* model_out) {
  ClassifierOptions options;
  options.session.threads = a.threads;
  options.top_k = top_k;
  apply_device_options(a.device, options.session, images);
  options.decode.max_pixels = a.max_pixels;
  const auto model = Model::load(a.model, load_options(a.device));
  if (model->kind() != ModelKind::kClassifier) {
    throw Error(a.model + " is a backbone: it outputs feature maps, not classes; write them " +
                "with `ravlt run -m " + a.model + " -i input.npy -o out.npz`");
  }
  if (model_out != nullptr) *model_out = model;
  return std::make_unique<Classifier>(model, options);
}

void add_image_options(CLI::App* cmd, ImageArgs* args, const std::string& json_help) {
  cmd->add_option("-m,--model", args->model, "model file (.rvlt, a classifier)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("images", args->inputs, "image files and folders (searched recursively)")
      ->required();
  cmd->add_option("--batch", args->batch, "images per run of the network")
      ->check(positive_integer())
      ->capture_default_str();
  cmd->add_option("--threads", args->threads, "threads (0: all cores)")
      ->check(non_negative_integer())
      ->capture_default_str();
  cmd->add_flag("--json", args->json, json_help);
  add_device_options(cmd, &args->device);
  cmd->add_option("--max-pixels", args->max_pixels,
                  "largest image accepted, in pixels (decompression-bomb guard)")
      ->capture_default_str();
  add_verbose_flag(cmd, &args->verbose);
}

}  // namespace ravlt::tools
