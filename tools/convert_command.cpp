#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>

#include "ravlt/convert.h"
#include "ravlt/error.h"
#include "report/model_report.h"
#include "tools/commands.h"
#include "tools/number_checks.h"
#include "tools/progress_bar.h"

namespace ravlt::tools {
namespace {

struct ConvertArgs {
  std::string checkpoint;
  std::string output;
  std::string state_dict;
  std::string attention;
  std::string labels_file;
  std::string dtype = "fp32";
  std::optional<int> resize;
  std::optional<int> crop;
  std::vector<int> out_indices;
  std::vector<float> mean = {0.485f, 0.456f, 0.406f};
  std::vector<float> std = {0.229f, 0.224f, 0.225f};
  bool quiet = false;
};

std::vector<std::string> read_labels(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open labels file");
  std::vector<std::string> labels;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    labels.push_back(line);
  }
  while (!labels.empty() && labels.back().empty()) labels.pop_back();
  return labels;
}

int run(const ConvertArgs& a) {
  ConvertOptions options;
  options.state_dict_entry = a.state_dict;
  options.attention = a.attention;
  if (!a.labels_file.empty()) options.labels = read_labels(a.labels_file);
  options.weight_type = parse_weight_type(a.dtype);
  options.resize = a.resize;
  options.crop = a.crop;
  options.out_indices = a.out_indices;
  std::copy(a.mean.begin(), a.mean.end(), options.mean.begin());
  std::copy(a.std.begin(), a.std.end(), options.std.begin());
  ProgressBar bar;
  if (!a.quiet) options.progress = [&](std::string_view phase, double f) { bar.update(phase, f); };
  const ConvertResult result = convert_checkpoint(a.checkpoint, a.output, options);
  bar.finish();
  if (!a.quiet) std::printf("%s\n", report::conversion_summary(result).c_str());
  return 0;
}

}  // namespace

Runner add_convert_command(CLI::App& app) {
  auto args = std::make_shared<ConvertArgs>();
  CLI::App* cmd = app.add_subcommand(
      "convert",
      "Convert a PyTorch RAVLT checkpoint (.pth) into a .rvlt model file: an ImageNet "
      "classifier, or the backbone of an mmdetection / mmsegmentation checkpoint");
  cmd->add_option("checkpoint", args->checkpoint,
                  "torch.save file: a state dict or a training checkpoint")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", args->output, "model file to write (.rvlt)")->required();
  cmd->add_option("--state-dict", args->state_dict,
                  "entry of a training checkpoint to convert (default: model; e.g. model_ema)");
  cmd->add_option("--attention", args->attention,
                  "attention kind per stage, l (RALA) or v (softmax) (default: l,l,v,v)");
  cmd->add_option("--labels", args->labels_file,
                  "class names, one per line (default: ImageNet-1k for 1000 classes, else class_N)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--dtype", args->dtype, "stored weight type")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}))
      ->capture_default_str();
  cmd->add_option("--resize", args->resize,
                  "preprocessing: shorter side resized to (default: 256 for a classifier, none "
                  "for a backbone)")
      ->check(positive_integer());
  cmd->add_option("--crop", args->crop,
                  "preprocessing: centre crop size (default: 224 for a classifier, none for a "
                  "backbone)")
      ->check(positive_integer());
  cmd->add_option("--out-indices", args->out_indices,
                  "backbones: stages to output, 0-based as in mmdetection (default: all; "
                  "outputs stage{i+1})")
      ->delimiter(',');
  cmd->add_option("--mean", args->mean, "preprocessing: per-channel mean (3 values)")
      ->expected(3)
      ->capture_default_str();
  cmd->add_option("--std", args->std, "preprocessing: per-channel std (3 values)")
      ->expected(3)
      ->capture_default_str();
  cmd->add_flag("-q,--quiet", args->quiet, "print nothing on success");
  return [args] { return run(*args); };
}

}  // namespace ravlt::tools
