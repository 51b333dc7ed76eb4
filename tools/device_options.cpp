#include "tools/device_options.h"

#include "ravlt/error.h"

namespace ravlt::tools {

void add_device_options(CLI::App* cmd, DeviceArgs* args) {
  cmd->add_option("--device", args->device, "where to run: cpu, or cuda (GPU 0)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  cmd->add_option(
         "--precision", args->precision,
         "storage and arithmetic: fp32; bf16 (cpu with AVX512_BF16 or AMX, or cuda); fp16 (cuda); "
         "16-bit types accumulate in float32")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}))
      ->capture_default_str();
  cmd->add_flag("--tf32", args->tf32,
                "cuda: let float32 GEMMs use TF32 tensor cores (about 1e-3 relative error)");
  cmd->add_flag("--no-packing", args->no_packing,
                "cpu, fp32: GEMMs read the weights where the model file stores them instead of "
                "packed copies: a shorter start, each run about 3-7% slower (for a process that "
                "runs a model a few times)");
  cmd->add_option("--cache-dir", args->cache_dir,
                  "cpu: keep the model's packed weights in this directory (created if missing), so "
                  "that the next start of the same model is ready sooner");
}

void apply_device_options(const DeviceArgs& args, SessionOptions& options) {
  options.device = args.device == "cuda" ? Device::kCuda : Device::kCpu;
  options.precision = args.precision == "fp16"   ? Precision::kFloat16
                      : args.precision == "bf16" ? Precision::kBFloat16
                                                 : Precision::kFloat32;
  options.allow_tf32 = args.tf32;
  std::string why;
  if (!device_available(options.device, &why)) throw Error("--device " + args.device + ": " + why);
  if (args.tf32 && options.device != Device::kCuda) throw Error("--tf32 applies to --device cuda");
  options.pack_weights = !args.no_packing;
  if (args.no_packing && options.device != Device::kCpu) {
    throw Error("--no-packing applies to --device cpu");
  }
  if (args.no_packing && options.precision != Precision::kFloat32) {
    throw Error("--no-packing applies to --precision fp32 (" + args.precision +
                " weights are narrowed into packed copies)");
  }
}

LoadOptions load_options(const DeviceArgs& args, bool no_checksum) {
  LoadOptions load;
  load.verify_checksum = !no_checksum;
  load.cache_dir = args.cache_dir;
  return load;
}

}  // namespace ravlt::tools
