// Every CUDA and cuBLASLt call's status, turned into ravlt::Error.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <string>

#include "ravlt/error.h"
#include "runtime/cuda/cublaslt_library.h"

namespace ravlt::runtime::cuda {

inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw Error(std::string("CUDA: ") + what + ": " + cudaGetErrorString(status));
  }
}

inline void check(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw Error(std::string("cuBLASLt: ") + what + ": " + lt().cublasLtGetStatusString(status));
  }
}

}  // namespace ravlt::runtime::cuda
