// --device, --precision and --tf32: the same options on every command that
// runs a model (run, bench, classify).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "ravlt/model.h"

namespace ravlt::tools {

struct DeviceArgs {
  std::string device = "cpu";
  std::string precision = "fp32";
  bool tf32 = false;
};

void add_device_options(CLI::App* cmd, DeviceArgs* args);

/// Sets options' device, precision and TF32; throws ravlt::Error saying why
/// when the device cannot run here.
void apply_device_options(const DeviceArgs& args, SessionOptions& options);

}  // namespace ravlt::tools
