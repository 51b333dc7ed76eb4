// The CUDA backend's interface in a build without nvcc: every entry point
// says the backend is missing.
#include "ravlt/error.h"
#include "runtime/cuda/cuda_backend.h"

namespace ravlt::runtime::cuda {
namespace {

constexpr const char* kMissing =
    "this build has no CUDA backend (nvcc was not found when it was configured)";

}  // namespace

bool available(std::string* why) {
  if (why != nullptr) *why = kMissing;
  return false;
}

std::string device_description() {
  return "none";
}

size_t device_memory_bytes() {
  return 0;
}

struct DeviceWeights::State {};
DeviceWeights::DeviceWeights() = default;
DeviceWeights::~DeviceWeights() = default;

const float* DeviceWeights::get(const Graph&, uint32_t) {
  throw Error(kMissing);
}

const void* DeviceWeights::get(const Graph&, uint32_t, WeightLayout, DType) {
  throw Error(kMissing);
}

size_t DeviceWeights::bytes() const {
  return 0;
}

std::unique_ptr<Backend> make_backend(std::shared_ptr<DeviceWeights>, const CudaOptions&) {
  throw Error(kMissing);
}

}  // namespace ravlt::runtime::cuda
