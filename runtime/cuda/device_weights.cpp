#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <compare>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "runtime/cuda/cuda_backend.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/device_weights_layout.h"

namespace ravlt::runtime::cuda {
namespace {

// Float32 values as `storage` elements (round to nearest even).
std::vector<uint8_t> encode(const std::vector<float>& values, DType storage) {
  std::vector<uint8_t> out(values.size() * (storage == DType::kFloat32 ? 4 : 2));
  if (storage == DType::kFloat32) {
    std::memcpy(out.data(), values.data(), out.size());
  } else if (storage == DType::kFloat16) {
    auto* h = reinterpret_cast<__half*>(out.data());
    for (size_t i = 0; i < values.size(); ++i) h[i] = __float2half_rn(values[i]);
  } else {
    auto* b = reinterpret_cast<__nv_bfloat16*>(out.data());
    for (size_t i = 0; i < values.size(); ++i) b[i] = __float2bfloat16_rn(values[i]);
  }
  return out;
}

// One upload: a value in one layout and type. (A type of internal linkage:
// the map's code stays private to the library.)
struct UploadKey {
  uint32_t value;
  WeightLayout layout;
  DType storage;
  auto operator<=>(const UploadKey&) const = default;
};

}  // namespace

struct DeviceWeights::State {
  mutable std::mutex mutex;
  std::map<UploadKey, void*> uploaded;
  size_t bytes = 0;
  ~State() {
    for (auto& [key, pointer] : uploaded) cudaFree(pointer);
  }
};

DeviceWeights::DeviceWeights() : state_(std::make_unique<State>()) {}
DeviceWeights::~DeviceWeights() = default;

const float* DeviceWeights::get(const Graph& graph, uint32_t value) {
  return static_cast<const float*>(get(graph, value, WeightLayout::kAsStored, DType::kFloat32));
}

const void* DeviceWeights::get(const Graph& graph, uint32_t value, WeightLayout layout,
                               DType storage) {
  std::lock_guard<std::mutex> lock(state_->mutex);
  const UploadKey key{value, layout, storage};
  if (auto it = state_->uploaded.find(key); it != state_->uploaded.end()) return it->second;
  const Value& v = graph.values()[value];
  const size_t count = static_cast<size_t>(element_count(v.shape));
  std::vector<float> host(v.data, v.data + count);
  if (layout == WeightLayout::kConvHwio) host = conv_weight_to_hwio(v.shape, v.data);
  if (layout == WeightLayout::kConvOhwi) host = conv_weight_to_ohwi(v.shape, v.data);
  const std::vector<uint8_t> bytes = encode(host, storage);
  void* device = nullptr;
  check(cudaMalloc(&device, bytes.empty() ? 4 : bytes.size()),
        ("allocating weights '" + v.name + "'").c_str());
  const cudaError_t copied = cudaMemcpy(device, bytes.data(), bytes.size(), cudaMemcpyHostToDevice);
  if (copied != cudaSuccess) {
    cudaFree(device);
    check(copied, ("uploading weights '" + v.name + "'").c_str());
  }
  state_->uploaded.emplace(key, device);
  state_->bytes += bytes.size();
  return device;
}

size_t DeviceWeights::bytes() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->bytes;
}

}  // namespace ravlt::runtime::cuda
