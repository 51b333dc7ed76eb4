// --device, --precision, --tf32, --packing / --no-packing and --cache-dir: the same options on
// every command that runs a model (run, bench, classify, embed).
#pragma once

#include <CLI/CLI.hpp>
#include <cstddef>
#include <cstdint>
#include <string>

#include "ravlt/model.h"

namespace ravlt::tools {

struct DeviceArgs {
  std::string device = "cpu";
  std::string precision = "fp32";
  bool tf32 = false;
  bool packing = false;        // --packing: packed copies whatever the job
  bool no_packing = false;     // --no-packing: the file's own weights
  bool defer_packing = false;  // --defer-packing (bench): packed after the first run
  std::string cache_dir;
};

/// What a command's weights default to when neither --packing nor --no-packing is given.
enum class PackingDefault {
  kPacked,     // a command that runs the model many times (bench)
  kByJobSize,  // run, classify, embed: in place for a job of at most kInPlaceImages images
};

/// The largest job (images through the network, counted once per run) whose float32 CPU
/// weights are read in place by default: the start saved outweighs the slower runs up to
/// here for RAVLT-T, S, B and L alike (`ravlt classify` of 4 images 0.84-0.92x the packed
/// time, of 8 images 0.92-1.01x; Zen 5, README "Weights read in place").
constexpr size_t kInPlaceImages = 4;

void add_device_options(CLI::App* cmd, DeviceArgs* args,
                        PackingDefault packing = PackingDefault::kByJobSize);

/// Sets options' device, precision, TF32 and weight packing for a job of `images` (SIZE_MAX:
/// many); throws ravlt::Error saying why when the device cannot run here or an option does
/// not apply to it.
void apply_device_options(const DeviceArgs& args, SessionOptions& options,
                          size_t images = SIZE_MAX);

/// -v, --verbose on the commands that run a job (run, classify, embed).
void add_verbose_flag(CLI::App* cmd, bool* verbose);

/// --verbose: prints to stderr how a job of `images` held the weights and why ("weights read
/// in place where oneDNN can (a job of 1 image; --packing packs them)"), and the bytes it
/// copied out of the mapped file (which show what happened where oneDNN packs every weight).
void print_weights_summary(const DeviceArgs& args, size_t images, const Model& model);

/// The model's load options: --cache-dir, and the checksum verified unless
/// `no_checksum`.
LoadOptions load_options(const DeviceArgs& args, bool no_checksum = false);

}  // namespace ravlt::tools
