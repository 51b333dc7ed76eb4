// cuBLASLt, loaded when the first CUDA session needs it (dlopen), not when
// the program starts: linked directly, its 540 MB library costs every run of
// the engine, CPU-only ones included, about 70 ms and 200 MB of resident
// memory for relocations. The CUDA runtime is linked statically for the same
// reason (it opens the driver itself on first use).
#pragma once

#include <cublasLt.h>

namespace ravlt::runtime::cuda {

struct CublasLt {
// clang-format off
#define RAVLT_CUBLASLT_FUNCTIONS(X)                                                  \
  X(cublasLtCreate) X(cublasLtDestroy) X(cublasLtGetStatusString) X(cublasLtMatmul)  \
  X(cublasLtMatmulAlgoGetHeuristic) X(cublasLtMatmulDescCreate)                      \
  X(cublasLtMatmulDescDestroy) X(cublasLtMatmulDescSetAttribute)                     \
  X(cublasLtMatmulPreferenceCreate) X(cublasLtMatmulPreferenceDestroy)               \
  X(cublasLtMatmulPreferenceSetAttribute) X(cublasLtMatrixLayoutCreate)              \
  X(cublasLtMatrixLayoutDestroy)
// clang-format on
#define RAVLT_DECLARE(name) decltype(&::name) name = nullptr;
  RAVLT_CUBLASLT_FUNCTIONS(RAVLT_DECLARE)
#undef RAVLT_DECLARE
};

/// The loaded library (libcublasLt.so.<major of the headers>); loads it on
/// first call. Throws ravlt::Error naming what is missing.
const CublasLt& lt();

}  // namespace ravlt::runtime::cuda
