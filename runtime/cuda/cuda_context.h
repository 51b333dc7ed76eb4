// What every CUDA kernel of one session shares: its stream, its cuBLASLt
// handle, and the first launch error of a run (Kernel::run cannot throw;
// the backend reports the error when the run finishes).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <memory>
#include <vector>

#include "runtime/backend.h"
#include "runtime/cuda/device_weights_layout.h"
#include "runtime/cuda/launchers.h"

namespace ravlt::runtime::cuda {

struct CudaContext {
  cudaStream_t stream = nullptr;
  cublasLtHandle_t lt = nullptr;
  bool allow_tf32 = false;
  /// How activations and weights are stored (float32, float16, bfloat16).
  DType storage = DType::kFloat32;
  cudaError_t first_error = cudaSuccess;
  const char* first_error_node = nullptr;
  /// Constants a kernel wants in another layout (set in prepare, read by
  /// CudaBackend::constant); indexed by value.
  std::vector<WeightLayout> constant_layouts;
  /// And in which type: the session's storage, except where a kernel wants
  /// float32 (the RoPE angles).
  std::vector<DType> constant_storage;

  cublasStatus_t first_blas_error = CUBLAS_STATUS_SUCCESS;

  /// Keeps the first error of the run with the node that met it.
  void note(cudaError_t status, const char* node) {
    if (status != cudaSuccess && first_error == cudaSuccess &&
        first_blas_error == CUBLAS_STATUS_SUCCESS) {
      first_error = status;
      first_error_node = node;
    }
  }
  void note(cublasStatus_t status, const char* node) {
    if (status != CUBLAS_STATUS_SUCCESS && first_error == cudaSuccess &&
        first_blas_error == CUBLAS_STATUS_SUCCESS) {
      first_blas_error = status;
      first_error_node = node;
    }
  }
};

using PrepareArgs = PrepareArgsFor<CudaContext>;

using KernelFactory = std::unique_ptr<Kernel> (*)(const PrepareArgs&);

// One factory per op, runtime/cuda/<snake_name>.cpp (formats/rvlt/ops.def).
#define RAVLT_OP(Name, snake, ...) std::unique_ptr<Kernel> make_##snake(const PrepareArgs& args);
#include "formats/rvlt/ops.def"
#undef RAVLT_OP

}  // namespace ravlt::runtime::cuda
