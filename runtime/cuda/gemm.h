// One cuBLASLt GEMM, set up once per plan: Y (M x N) = X (M x K) W^T + bias
// (+ C), all row-major in the session's storage type, float32 accumulation.
// Row-major X and W are, read column-major, X^T and W^T; cuBLASLt computes
// D = op(A) op(B) column-major, so A = W (transposed), B = X, and D (N x M
// column-major) is Y.
#pragma once

#include <cublasLt.h>

#include <cstdint>
#include <string>

#include "runtime/cuda/cuda_context.h"

namespace ravlt::runtime::cuda {

class Gemm {
 public:
  /// Workspace run() needs (from the arena), alignment slack included.
  static constexpr size_t kScratchBytes = (size_t{4} << 20) + 256;

  /// Throws ravlt::Error naming `node` if cuBLASLt has no algorithm.
  Gemm(CudaContext& context, const std::string& node, int64_t m, int64_t n, int64_t k);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  /// Enqueues Y = X W^T + bias (+ C when `c` is given, else beta = 0);
  /// records a failure in the context (never throws).
  void run(const void* w, const void* x, const void* bias, const void* c, void* y,
           uint8_t* scratch);

 private:
  void release();

  CudaContext& context_;
  std::string node_;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, d_ = nullptr;
  cublasLtMatmulHeuristicResult_t heuristic_{};
};

}  // namespace ravlt::runtime::cuda
