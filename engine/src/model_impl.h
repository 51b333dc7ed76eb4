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
  ModelKind kind = ModelKind::kClassifier;
  std::vector<std::string> output_names;           // the default first
  std::vector<uint32_t> output_values;             // graph values, as output_names
  std::vector<std::vector<bool>> output_upstream;  // engine::NamedOutputs::upstream
  // planned_outputs() of the first output, kept so that Session::run()
  // allocates nothing.
  std::vector<uint32_t> first_output_plan;
  std::vector<std::string> labels;
  std::vector<std::string> dataset_classes;
  Preprocessing preprocessing;

  /// The graph values of the outputs named in `select` (empty: all), in
  /// that order. Throws ravlt::Error naming an output the model lacks.
  std::vector<uint32_t> select_outputs(const std::vector<std::string>& select) const;
  /// The outputs a run of `values` plans: every output where the others
  /// are computed on the way anyway (a classifier's logits), so that
  /// run(), run_all() and plan() share one plan; else `values` themselves.
  std::vector<uint32_t> planned_outputs(const std::vector<uint32_t>& values) const;
  /// The name of output value `value` (one of output_values).
  const std::string& output_name(uint32_t value) const;

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
