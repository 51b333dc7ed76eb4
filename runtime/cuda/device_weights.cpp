#include <cuda_runtime_api.h>

#include <map>
#include <mutex>
#include <vector>

#include "runtime/cuda/cuda_backend.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/device_weights_layout.h"

namespace ravlt::runtime::cuda {

struct DeviceWeights::State {
  mutable std::mutex mutex;
  std::map<std::pair<uint32_t, WeightLayout>, float*> uploaded;
  size_t bytes = 0;
  ~State() {
    for (auto& [key, pointer] : uploaded) cudaFree(pointer);
  }
};

DeviceWeights::DeviceWeights() : state_(std::make_unique<State>()) {}
DeviceWeights::~DeviceWeights() = default;

const float* DeviceWeights::get(const Graph& graph, uint32_t value) {
  return get(graph, value, WeightLayout::kAsStored);
}

const float* DeviceWeights::get(const Graph& graph, uint32_t value, WeightLayout layout) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  const auto key = std::make_pair(value, layout);
  if (auto it = state_->uploaded.find(key); it != state_->uploaded.end()) return it->second;
  const Value& v = graph.values()[value];
  const size_t count = static_cast<size_t>(element_count(v.shape));
  std::vector<float> host(v.data, v.data + count);
  if (layout == WeightLayout::kConvHwio) host = conv_weight_to_hwio(v.shape, v.data);
  float* device = nullptr;
  check(cudaMalloc(reinterpret_cast<void**>(&device), count * sizeof(float) + (count == 0 ? 4 : 0)),
        ("allocating weights '" + v.name + "'").c_str());
  const cudaError_t copied =
      cudaMemcpy(device, host.data(), count * sizeof(float), cudaMemcpyHostToDevice);
  if (copied != cudaSuccess) {
    cudaFree(device);
    check(copied, ("uploading weights '" + v.name + "'").c_str());
  }
  state_->uploaded.emplace(key, device);
  state_->bytes += count * sizeof(float);
  return device;
}

size_t DeviceWeights::bytes() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->bytes;
}

}  // namespace ravlt::runtime::cuda
