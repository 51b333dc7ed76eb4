// The CUDA backend: cuBLASLt for the GEMMs, our own kernels for the rest
// (runtime/cuda/*.cu), one stream per session, and each plan recorded as a
// CUDA graph on its first run and replayed after.
//
// This header has no CUDA types, so the engine includes it whether or not
// the backend was built: without nvcc, cuda_unavailable.cpp implements it
// and every function says so.
#pragma once

#include <memory>
#include <string>

#include "runtime/backend.h"
#include "runtime/cuda/device_weights_layout.h"

namespace ravlt::runtime::cuda {

/// Whether this build has the CUDA backend and the machine a usable GPU;
/// when not, `why` says which ("built without CUDA", "no CUDA device: ...").
bool available(std::string* why = nullptr);

/// "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB)" for device 0.
std::string device_description();

/// Device 0's memory in bytes (0 when there is no usable GPU).
size_t device_memory_bytes();

/// Device copies of a graph's constants, uploaded once and shared by every
/// session of one Model (thread-safe).
class DeviceWeights {
 public:
  DeviceWeights();
  ~DeviceWeights();
  /// Device float32 copy of constant `value` of `graph`, uploaded on first
  /// request. Throws ravlt::Error when the device cannot hold it.
  const float* get(const Graph& graph, uint32_t value);
  /// The same in another layout and storage type (a separate upload, also
  /// made once): device memory holding elements of `storage`.
  const void* get(const Graph& graph, uint32_t value, WeightLayout layout, DType storage);
  /// Bytes uploaded so far.
  size_t bytes() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

struct CudaOptions {
  /// Let float32 GEMMs use TF32 tensor cores (about 1e-3 relative error
  /// instead of float32's 1e-6). Off by default.
  bool allow_tf32 = false;
  /// Record each plan as a CUDA graph and replay it.
  bool use_graphs = true;
  /// How activations and weights are stored; every kernel computes and
  /// accumulates in float32.
  DType storage = DType::kFloat32;
  /// Host threads that copy the input into page-locked staging memory and
  /// the outputs out of it (host_copy.h); 0: all cores.
  int host_threads = 0;
};

/// A backend on device 0 using `weights` (shared by the model's sessions).
/// Throws ravlt::Error naming the reason when no GPU can be used.
std::unique_ptr<Backend> make_backend(std::shared_ptr<DeviceWeights> weights,
                                      const CudaOptions& options);

}  // namespace ravlt::runtime::cuda
