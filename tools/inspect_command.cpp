#include <cstdio>
#include <memory>

#include "ravlt/model.h"
#include "ravlt/model_info.h"
#include "report/model_report.h"
#include "tools/commands.h"
#include "tools/size_argument.h"

namespace ravlt::tools {

Runner add_inspect_command(CLI::App& app) {
  struct Args {
    std::string model;
    bool json = false;
    bool no_checksum = false;
    bool nodes = false;
    std::string size;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("inspect", "Describe a .rvlt model file");
  cmd->add_option("model", args->model, "model file (.rvlt)")->required()->check(CLI::ExistingFile);
  cmd->add_flag("--json", args->json, "print one JSON document");
  cmd->add_flag("--no-checksum", args->no_checksum,
                "skip the file checksum (for trusted files; structure is still verified)");
  cmd->add_option("--size", args->size,
                  "input size HxW (or N) the outputs' shapes are given at (default: the "
                  "recorded crop, else 224x224)");
  cmd->add_flag("--nodes", args->nodes,
                "list the graph's node names, one per line (what `ravlt run --capture` takes)");
  return [args] {
    if (args->nodes) {
      LoadOptions load;
      load.verify_checksum = !args->no_checksum;
      for (const std::string& name : Model::load(args->model, load)->node_names()) {
        std::printf("%s\n", name.c_str());
      }
      return 0;
    }
    const auto [height, width] =
        args->size.empty() ? std::pair<int, int>(0, 0) : parse_size(args->size, "--size");
    const ModelInfo info = describe_model(args->model, !args->no_checksum, height, width);
    const std::string text =
        args->json ? report::model_info_json(info) : report::model_info_text(info);
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  };
}

}  // namespace ravlt::tools
