#include <cstdio>
#include <memory>

#include "ravlt/model.h"
#include "ravlt/tensor_io.h"
#include "tools/commands.h"

namespace ravlt::tools {

Runner add_run_command(CLI::App& app) {
  struct Args {
    std::string model, input, output;
    int threads = 0;
    bool no_checksum = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "run", "Run a model on an NCHW float32 .npy tensor (any batch and size); write the logits");
  cmd->add_option("-m,--model", args->model, "model file (.rvlt)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("-i,--input", args->input, "input tensor (.npy, float32, N x 3 x H x W)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", args->output, "logits to write (.npy, float32, N x classes)")
      ->required();
  cmd->add_option("--threads", args->threads, "threads (0: all cores)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_flag("--no-checksum", args->no_checksum, "skip the model file checksum (trusted files)");
  return [args] {
    LoadOptions load;
    load.verify_checksum = !args->no_checksum;
    const auto model = Model::load(args->model, load);
    Session session(model, SessionOptions{args->threads});
    const Tensor input = load_npy(args->input);
    save_npy(args->output, session.run(input));
    return 0;
  };
}

}  // namespace ravlt::tools
