// ravlt embed: the pooled features of image files and folders, as one
// (N, width) .npy with the images' paths beside it.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "ravlt/classifier.h"
#include "ravlt/error.h"
#include "ravlt/tensor_io.h"
#include "report/json_writer.h"
#include "tools/commands.h"
#include "tools/device_options.h"
#include "tools/image_command.h"
#include "tools/progress_bar.h"

namespace ravlt::tools {
namespace {

struct EmbedArgs : ImageArgs {
  std::string output;
};

// emb.npy -> emb.txt: the paths of the rows, one per line.
std::string paths_file(const std::string& output) {
  return std::filesystem::path(output).replace_extension(".txt").string();
}

int run(const EmbedArgs& a) {
  const std::vector<std::string> files = collect_images(a.inputs);
  std::shared_ptr<const Model> model;
  const std::unique_ptr<Classifier> classifier = open_classifier(a, files.size(), 5, &model);

  ProgressBar bar;
  const bool show_progress = files.size() > 8;
  std::vector<float> rows;
  size_t width = 0;
  std::vector<std::string> embedded;
  std::vector<std::pair<std::string, std::string>> failed;  // (path, error)
  for (size_t start = 0; start < files.size(); start += static_cast<size_t>(a.batch)) {
    const size_t end = std::min(files.size(), start + static_cast<size_t>(a.batch));
    const std::span<const std::string> chunk(files.data() + start, end - start);
    const std::vector<EmbedResult> results = classifier->embed_files(chunk);
    if (show_progress) bar.finish();  // keep error lines clean
    for (size_t i = 0; i < results.size(); ++i) {
      if (!results[i].ok()) {
        failed.emplace_back(chunk[i], results[i].error);
        if (!a.json) std::fprintf(stderr, "ravlt: error: %s\n", results[i].error.c_str());
        continue;
      }
      width = results[i].embedding.size();
      rows.insert(rows.end(), results[i].embedding.begin(), results[i].embedding.end());
      embedded.push_back(chunk[i]);
    }
    if (show_progress) {
      bar.update("embedding", static_cast<double>(end) / static_cast<double>(files.size()));
    }
  }
  bar.finish();
  if (a.verbose) print_weights_summary(a.device, files.size(), *model);
  if (width == 0) {
    // No image decoded: still a (0, width) array, the width from the model
    // (asked of a session, which plans nothing for it).
    Session session(model);
    const std::vector<int64_t> one = {1, 3, 224, 224};
    width = static_cast<size_t>(session.output_shapes(one, {"embedding"})[0].shape[1]);
  }
  save_npy(a.output,
           Tensor{{static_cast<int64_t>(embedded.size()), static_cast<int64_t>(width)}, rows});
  const std::string list = paths_file(a.output);
  std::ofstream out(list, std::ios::trunc);
  for (const std::string& p : embedded) out << p << '\n';
  if (!out) throw Error(list + ": cannot write");

  if (a.json) {
    std::string paths, errors;
    for (const std::string& p : embedded)
      paths += (paths.empty() ? "" : ", ") + report::json_quote(p);
    for (const auto& [path, error] : failed) {
      errors += std::string(errors.empty() ? "" : ",\n    ") +
                "{\"path\": " + report::json_quote(path) +
                ", \"error\": " + report::json_quote(error) + "}";
    }
    std::printf(
        "{\"model\": %s, \"output\": %s, \"paths_file\": %s, \"images\": %zu, \"embedded\": %zu, "
        "\"width\": %zu,\n  \"paths\": [%s],\n  \"failed\": [%s%s%s]}\n",
        report::json_quote(a.model).c_str(), report::json_quote(a.output).c_str(),
        report::json_quote(list).c_str(), files.size(), embedded.size(), width, paths.c_str(),
        failed.empty() ? "" : "\n    ", errors.c_str(), failed.empty() ? "" : "\n  ");
  } else {
    std::fprintf(stderr,
                 "ravlt: %zu of %zu images embedded (%zu values each) into %s, paths in %s\n",
                 embedded.size(), files.size(), width, a.output.c_str(), list.c_str());
  }
  return failed.empty() ? 0 : 1;
}

}  // namespace

Runner add_embed_command(CLI::App& app) {
  auto args = std::make_shared<EmbedArgs>();
  CLI::App* cmd = app.add_subcommand(
      "embed",
      "Embed images (the pooled features a classifier's head reads) into one .npy, rows in "
      "input order, their paths in a .txt beside it");
  add_image_options(cmd, args.get(),
                    "print one JSON document: the output files, the paths embedded and the "
                    "images that failed with their errors");
  cmd->add_option("-o,--output", args->output,
                  "embeddings to write (.npy, float32, images x width); the paths go to the "
                  "same name with .txt")
      ->required();
  return [args] { return run(*args); };
}

}  // namespace ravlt::tools
