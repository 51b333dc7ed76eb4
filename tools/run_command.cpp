// ravlt run: a model on an NCHW float32 .npy tensor; its outputs to .npy or .npz.
#include <cstdio>
#include <memory>

#include "ravlt/error.h"
#include "ravlt/model.h"
#include "ravlt/tensor_io.h"
#include "tools/commands.h"
#include "tools/device_options.h"
#include "tools/number_checks.h"

namespace ravlt::tools {
namespace {

struct RunArgs {
  std::string model, input, output;
  std::vector<std::string> select;
  int threads = 0;
  bool no_checksum = false;
  bool verbose = false;
  std::vector<std::string> captures;  // NODE=FILE.npy
  DeviceArgs device;
};

bool ends_with(const std::string& s, const char* suffix) {
  const std::string x(suffix);
  return s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
}

// --capture NODE=FILE.npy: the node outputs, written NCHW.
void write_captures(Session& session, const Tensor& input, const std::vector<std::string>& args) {
  std::vector<std::string> nodes, files;
  for (const std::string& c : args) {
    const size_t eq = c.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == c.size()) {
      throw Error("--capture '" + c + "' is not NODE=FILE.npy");
    }
    nodes.push_back(c.substr(0, eq));
    files.push_back(c.substr(eq + 1));
  }
  const std::vector<Tensor> values = session.capture(input, nodes);
  for (size_t i = 0; i < files.size(); ++i) save_npy(files[i], values[i]);
}

int run(const RunArgs& a) {
  const bool npz = ends_with(a.output, ".npz");  // else one array, .npy
  if (!npz && a.select.size() > 1) {
    throw Error("-o " + a.output + ": a .npy file holds one output; " +
                std::to_string(a.select.size()) + " are selected (write a .npz)");
  }
  const Tensor input = load_npy(a.input);
  // The images through the network: the batch, once more for the captures' run.
  const size_t images =
      static_cast<size_t>(input.shape.empty() ? 1 : input.shape[0]) * (a.captures.empty() ? 1 : 2);
  SessionOptions options;
  options.threads = a.threads;
  apply_device_options(a.device, options, images);
  const auto model = Model::load(a.model, load_options(a.device, a.no_checksum));
  Session session(model, options);
  if (!a.captures.empty()) write_captures(session, input, a.captures);
  // A .npy holds the selected output, else the model's first.
  const std::vector<std::string> select =
      npz || !a.select.empty() ? a.select : std::vector<std::string>{model->output_names()[0]};
  const std::vector<Output> outputs = session.run_all(input.data.data(), input.shape, select);
  if (npz) {
    save_npz(a.output, outputs);
  } else {
    save_npy(a.output, Tensor{outputs[0].shape, {outputs[0].data.begin(), outputs[0].data.end()}});
  }
  if (a.verbose) print_weights_summary(a.device, images, *model);
  return 0;
}

}  // namespace

Runner add_run_command(CLI::App& app) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* cmd = app.add_subcommand(
      "run", "Run a model on an NCHW float32 .npy tensor (any batch and size); write its outputs");
  cmd->add_option("-m,--model", args->model, "model file (.rvlt)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("-i,--input", args->input, "input tensor (.npy, float32, N x 3 x H x W)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", args->output,
                  "out.npz: every output (or those --select names) as arrays named by output, "
                  "for numpy.load; out.npy: the first (a classifier's logits, a backbone's "
                  "first stage)")
      ->required();
  cmd->add_option("--select", args->select,
                  "an output to compute and write (repeatable; `ravlt inspect` lists them: "
                  "logits, embedding / stage1..stage4)");
  cmd->add_option("--threads", args->threads, "threads (0: all cores)")
      ->check(non_negative_integer())
      ->capture_default_str();
  cmd->add_flag("--no-checksum", args->no_checksum, "skip the model file checksum (trusted files)");
  cmd->add_option("--capture", args->captures,
                  "also write a node's output: NODE=FILE.npy (repeatable; feature maps NCHW; "
                  "`ravlt inspect --nodes` lists the nodes)");
  add_device_options(cmd, &args->device);
  add_verbose_flag(cmd, &args->verbose);
  return [args] { return run(*args); };
}

}  // namespace ravlt::tools
