// ravlt classify: top-k classes of image files and folders.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "ravlt/classifier.h"
#include "ravlt/error.h"
#include "report/json_writer.h"
#include "tools/commands.h"
#include "tools/device_options.h"
#include "tools/image_command.h"
#include "tools/number_checks.h"
#include "tools/progress_bar.h"

namespace ravlt::tools {
namespace {

struct ClassifyArgs : ImageArgs {
  int top_k = 5;
};

void print_text(const std::string& path, const ClassifyResult& r) {
  if (!r.ok()) {
    std::fprintf(stderr, "ravlt: error: %s\n", r.error.c_str());
    return;
  }
  std::printf("%s\n", path.c_str());
  for (const Prediction& p : r.top) {
    std::printf("  %7.4f  %s (%d)\n", p.probability, p.label.c_str(), p.index);
  }
}

std::string result_json(const std::string& path, const ClassifyResult& r) {
  std::string s = "{\"path\": " + report::json_quote(path);
  if (!r.ok()) return s + ", \"error\": " + report::json_quote(r.error) + "}";
  std::string indices, labels, probs;
  for (size_t i = 0; i < r.top.size(); ++i) {
    const char* sep = i == 0 ? "" : ", ";
    indices += sep + std::to_string(r.top[i].index);
    labels += sep + report::json_quote(r.top[i].label);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.7g", static_cast<double>(r.top[i].probability));
    probs += sep + std::string(buf);
  }
  return s + ", \"indices\": [" + indices + "], \"labels\": [" + labels +
         "], \"probabilities\": [" + probs + "]}";
}

int run(const ClassifyArgs& a) {
  const std::vector<std::string> files = collect_images(a.inputs);
  std::shared_ptr<const Model> model;
  const std::unique_ptr<Classifier> classifier = open_classifier(a, files.size(), a.top_k, &model);

  ProgressBar bar;
  const bool show_progress = files.size() > 8;
  size_t failed = 0;
  std::vector<std::string> json_results;
  for (size_t start = 0; start < files.size(); start += static_cast<size_t>(a.batch)) {
    const size_t end = std::min(files.size(), start + static_cast<size_t>(a.batch));
    const std::span<const std::string> chunk(files.data() + start, end - start);
    const std::vector<ClassifyResult> results = classifier->classify_files(chunk);
    if (show_progress) bar.finish();  // keep printed lines clean
    for (size_t i = 0; i < results.size(); ++i) {
      failed += results[i].ok() ? 0 : 1;
      if (a.json) {
        json_results.push_back(result_json(chunk[i], results[i]));
      } else {
        print_text(chunk[i], results[i]);
      }
    }
    std::fflush(stdout);
    if (show_progress) {
      bar.update("classifying", static_cast<double>(end) / static_cast<double>(files.size()));
    }
  }
  bar.finish();
  if (a.verbose) print_weights_summary(a.device, files.size(), *model);
  if (a.json) {
    std::printf("{\"model\": %s, \"images\": %zu, \"failed\": %zu, \"results\": [\n",
                report::json_quote(a.model).c_str(), files.size(), failed);
    for (size_t i = 0; i < json_results.size(); ++i) {
      std::printf("  %s%s\n", json_results[i].c_str(), i + 1 < json_results.size() ? "," : "");
    }
    std::printf("]}\n");
  }
  if (failed > 0 && !a.json) {
    std::fprintf(stderr, "ravlt: %zu of %zu images could not be classified\n", failed,
                 files.size());
  }
  return failed > 0 ? 1 : 0;
}

}  // namespace

Runner add_classify_command(CLI::App& app) {
  auto args = std::make_shared<ClassifyArgs>();
  CLI::App* cmd = app.add_subcommand(
      "classify", "Classify images (JPEG, PNG, BMP; files or folders, searched recursively)");
  add_image_options(cmd, args.get(),
                    "print one JSON document: per image its path, top-k indices, labels and "
                    "probabilities, or its error");
  cmd->add_option("-k,--top-k", args->top_k, "classes shown per image")
      ->check(positive_integer())
      ->capture_default_str();
  return [args] { return run(*args); };
}

}  // namespace ravlt::tools
