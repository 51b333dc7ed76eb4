// What a Model holds, visible to the engine's own sources only.
#pragma once

#include <memory>
#include <mutex>

#include "ravlt/model.h"
#include "runtime/cpu/cpu_context.h"
#include "runtime/cuda/cuda_backend.h"
#include "runtime/graph.h"

namespace ravlt {

class Model::Impl {
 public:
  std::shared_ptr<const runtime::Graph> graph;
  std::shared_ptr<runtime::cpu::WeightCache> weights;  // shared by all sessions
  std::vector<std::string> labels;
  Preprocessing preprocessing;

  /// The weights on the GPU, uploaded when the first CUDA session needs
  /// them and shared by all the model's CUDA sessions.
  std::shared_ptr<runtime::cuda::DeviceWeights> device_weights() const {
    std::lock_guard<std::mutex> lock(device_mutex_);
    if (!device_weights_) device_weights_ = std::make_shared<runtime::cuda::DeviceWeights>();
    return device_weights_;
  }

 private:
  mutable std::mutex device_mutex_;
  mutable std::shared_ptr<runtime::cuda::DeviceWeights> device_weights_;
};

/// A Model's internals (the friend declared in model.h).
inline const Model::Impl& model_impl(const Model& model) {
  return *model.impl_;
}

}  // namespace ravlt
