#include "tools/device_options.h"

#include <cstdio>

#include "ravlt/error.h"

namespace ravlt::tools {
namespace {

// Whether the job is small enough for the weights to be read in place by default.
bool short_job(size_t images) {
  return images <= kInPlaceImages;
}

// The packing default applies (neither flag given) and could choose in place: float32 on the
// CPU without a packed-weight cache (whose packed copies make the start short already).
bool in_place_possible(const DeviceArgs& args, const SessionOptions& options) {
  return options.device == Device::kCpu && options.precision == Precision::kFloat32 &&
         args.cache_dir.empty();
}

std::string job_of(size_t images) {
  return "a job of " + std::to_string(images) + (images == 1 ? " image" : " images");
}

// Why the weights are packed or not, for --verbose.
std::string describe_packing(const DeviceArgs& args, const SessionOptions& options, size_t images) {
  if (options.device != Device::kCpu) return "weights on the device";
  if (args.packing) return "weights packed (--packing)";
  if (args.no_packing) return "weights read in place where oneDNN can (--no-packing)";
  if (options.precision != Precision::kFloat32) {
    return "weights packed (" + args.precision + " weights are narrowed into packed copies)";
  }
  if (!args.cache_dir.empty()) return "weights packed (--cache-dir keeps them)";
  if (images == SIZE_MAX) return "weights packed (the default; --no-packing reads them in place)";
  if (!options.pack_weights) {
    return "weights read in place where oneDNN can (" + job_of(images) + "; --packing packs them)";
  }
  return "weights packed (" + job_of(images) + "; --no-packing reads them in place)";
}

}  // namespace

void add_device_options(CLI::App* cmd, DeviceArgs* args, PackingDefault packing) {
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
  const bool by_job = packing == PackingDefault::kByJobSize;
  const std::string short_jobs = std::to_string(kInPlaceImages);
  CLI::Option* pack = cmd->add_flag(
      "--packing", args->packing,
      by_job ? "cpu: GEMMs read copies of the weights packed for them, whatever the job (the "
               "default from " +
                   std::to_string(kInPlaceImages + 1) + " images up)"
             : "cpu: GEMMs read copies of the weights packed for them (the default)");
  CLI::Option* no_pack = cmd->add_flag(
      "--no-packing", args->no_packing,
      "cpu, fp32: GEMMs read the weights where the model file stores them instead of packed "
      "copies: a shorter start, each run about 3-7% slower" +
          (by_job ? std::string(" (the default for a job of at most ") + short_jobs +
                        " images without --cache-dir)"
                  : std::string(" (for a process that runs a model a few times)")));
  pack->excludes(no_pack);
  if (!by_job) {
    CLI::Option* defer = cmd->add_flag(
        "--defer-packing", args->defer_packing,
        "cpu, fp32: the first run reads the weights in place and they are packed after it, on a "
        "thread of the session (SessionOptions::defer_packing): a sooner first result");
    defer->excludes(no_pack);
    defer->excludes(pack);
  }
  cmd->add_option("--cache-dir", args->cache_dir,
                  "cpu: keep the model's packed weights in this directory (created if missing), so "
                  "that the next start of the same model is ready sooner");
}

void apply_device_options(const DeviceArgs& args, SessionOptions& options, size_t images) {
  options.device = args.device == "cuda" ? Device::kCuda : Device::kCpu;
  options.precision = args.precision == "fp16"   ? Precision::kFloat16
                      : args.precision == "bf16" ? Precision::kBFloat16
                                                 : Precision::kFloat32;
  options.allow_tf32 = args.tf32;
  // Options that do not apply to the device asked for first: wrong on any machine.
  if (args.tf32 && options.device != Device::kCuda) throw Error("--tf32 applies to --device cuda");
  if (args.packing && options.device != Device::kCpu) {
    throw Error("--packing applies to --device cpu");
  }
  if (args.no_packing && options.device != Device::kCpu) {
    throw Error("--no-packing applies to --device cpu");
  }
  if (args.defer_packing && options.device != Device::kCpu) {
    throw Error("--defer-packing applies to --device cpu");
  }
  if (args.no_packing && options.precision != Precision::kFloat32) {
    throw Error("--no-packing applies to --precision fp32 (" + args.precision +
                " weights are narrowed into packed copies)");
  }
  std::string why;
  if (!device_available(options.device, &why)) throw Error("--device " + args.device + ": " + why);
  const bool by_default = !args.packing && !args.no_packing;
  options.pack_weights =
      by_default ? !(in_place_possible(args, options) && short_job(images)) : args.packing;
  options.defer_packing = args.defer_packing;
}

void add_verbose_flag(CLI::App* cmd, bool* verbose) {
  cmd->add_flag("-v,--verbose", *verbose,
                "also print to stderr how the weights were held (packed or read in place) and "
                "the bytes copied");
}

void print_weights_summary(const DeviceArgs& args, size_t images, const Model& model) {
  SessionOptions options;
  apply_device_options(args, options, images);
  std::fprintf(stderr, "ravlt: %s; %.2f MB copied out of the model file\n",
               describe_packing(args, options, images).c_str(),
               static_cast<double>(model.copied_weight_bytes()) / 1e6);
}

LoadOptions load_options(const DeviceArgs& args, bool no_checksum) {
  LoadOptions load;
  load.verify_checksum = !no_checksum;
  load.cache_dir = args.cache_dir;
  return load;
}

}  // namespace ravlt::tools
