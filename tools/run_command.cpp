#include <cstdio>
#include <memory>

#include "ravlt/error.h"
#include "ravlt/model.h"
#include "ravlt/tensor_io.h"
#include "tools/commands.h"
#include "tools/device_options.h"

namespace ravlt::tools {

Runner add_run_command(CLI::App& app) {
  struct Args {
    std::string model, input, output;
    int threads = 0;
    bool no_checksum = false;
    std::vector<std::string> captures;  // NODE=FILE.npy
    DeviceArgs device;
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
  cmd->add_option("--capture", args->captures,
                  "also write a node's output: NODE=FILE.npy (repeatable; feature maps NCHW; "
                  "`ravlt inspect --nodes` lists the nodes)");
  add_device_options(cmd, &args->device);
  return [args] {
    SessionOptions options;
    options.threads = args->threads;
    apply_device_options(args->device, options);
    LoadOptions load;
    load.verify_checksum = !args->no_checksum;
    const auto model = Model::load(args->model, load);
    Session session(model, options);
    const Tensor input = load_npy(args->input);
    if (args->captures.empty()) {
      save_npy(args->output, session.run(input));
      return 0;
    }
    std::vector<std::string> nodes, files;
    for (const std::string& c : args->captures) {
      const size_t eq = c.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == c.size()) {
        throw Error("--capture '" + c + "' is not NODE=FILE.npy");
      }
      nodes.push_back(c.substr(0, eq));
      files.push_back(c.substr(eq + 1));
    }
    nodes.push_back(model->node_names().back());  // the logits, from the same run
    const std::vector<Tensor> values = session.capture(input, nodes);
    for (size_t i = 0; i < files.size(); ++i) save_npy(files[i], values[i]);
    save_npy(args->output, values.back());
    return 0;
  };
}

}  // namespace ravlt::tools
