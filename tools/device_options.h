// --device, --precision, --tf32, --no-packing and --cache-dir: the same options on every
// command that runs a model (run, bench, classify, embed).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "ravlt/model.h"

namespace ravlt::tools {

struct DeviceArgs {
  std::string device = "cpu";
  std::string precision = "fp32";
  bool tf32 = false;
  bool no_packing = false;
  std::string cache_dir;
};

void add_device_options(CLI::App* cmd, DeviceArgs* args);

/// Sets options' device, precision, TF32 and weight packing; throws ravlt::Error saying why
/// when the device cannot run here.
void apply_device_options(const DeviceArgs& args, SessionOptions& options);

/// The model's load options: --cache-dir, and the checksum verified unless
/// `no_checksum`.
LoadOptions load_options(const DeviceArgs& args, bool no_checksum = false);

}  // namespace ravlt::tools
