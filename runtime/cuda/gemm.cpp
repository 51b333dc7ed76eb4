#include "runtime/cuda/gemm.h"

#include "ravlt/error.h"
#include "runtime/cuda/cublaslt_library.h"
#include "runtime/cuda/cuda_check.h"

namespace ravlt::runtime::cuda {
namespace {

constexpr size_t kWorkspace = size_t{4} << 20;
constexpr size_t kWorkspaceAlign = 256;

cudaDataType_t data_type(DType s) {
  return s == DType::kFloat16 ? CUDA_R_16F : s == DType::kBFloat16 ? CUDA_R_16BF : CUDA_R_32F;
}

}  // namespace

Gemm::Gemm(CudaContext& context, const std::string& node, int64_t m, int64_t n, int64_t k)
    : context_(context), node_(node) {
  const cudaDataType_t type = data_type(context_.storage);
  const char* what = "setting up the GEMM";
  try {
    // float32 accumulation always; TF32 only for float32 storage, on request.
    const bool tf32 = context_.allow_tf32 && context_.storage == DType::kFloat32;
    check(lt().cublasLtMatmulDescCreate(
              &desc_, tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F, CUDA_R_32F),
          what);
    const cublasOperation_t transa = CUBLAS_OP_T, transb = CUBLAS_OP_N;
    check(lt().cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSA, &transa,
                                              sizeof transa),
          what);
    check(lt().cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSB, &transb,
                                              sizeof transb),
          what);
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    check(lt().cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue,
                                              sizeof epilogue),
          what);
    check(lt().cublasLtMatrixLayoutCreate(&a_, type, static_cast<uint64_t>(k),
                                          static_cast<uint64_t>(n), k),
          what);
    check(lt().cublasLtMatrixLayoutCreate(&b_, type, static_cast<uint64_t>(k),
                                          static_cast<uint64_t>(m), k),
          what);
    check(lt().cublasLtMatrixLayoutCreate(&d_, type, static_cast<uint64_t>(n),
                                          static_cast<uint64_t>(m), n),
          what);
    cublasLtMatmulPreference_t preference = nullptr;
    check(lt().cublasLtMatmulPreferenceCreate(&preference), what);
    // Activations sit at 64-byte offsets in the arena (weights are
    // cudaMalloc'd, 256-byte aligned): only algorithms that accept that.
    const uint32_t align = 64;
    const size_t workspace = kWorkspace;
    lt().cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                              &workspace, sizeof workspace);
    lt().cublasLtMatmulPreferenceSetAttribute(
        preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align, sizeof align);
    lt().cublasLtMatmulPreferenceSetAttribute(
        preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align, sizeof align);
    lt().cublasLtMatmulPreferenceSetAttribute(
        preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align, sizeof align);
    int found = 0;
    const cublasStatus_t status = lt().cublasLtMatmulAlgoGetHeuristic(
        context_.lt, desc_, a_, b_, d_, d_, preference, 1, &heuristic_, &found);
    lt().cublasLtMatmulPreferenceDestroy(preference);
    check(status, "choosing a GEMM algorithm");
    if (found == 0) throw Error("cuBLASLt has no algorithm for this GEMM");
  } catch (const Error& e) {
    release();
    throw Error("node '" + node_ + "' (GEMM " + std::to_string(m) + " x " + std::to_string(k) +
                " by " + std::to_string(n) + "): " + e.what());
  }
}

Gemm::~Gemm() {
  release();
}

void Gemm::release() {
  if (a_ != nullptr) lt().cublasLtMatrixLayoutDestroy(a_);
  if (b_ != nullptr) lt().cublasLtMatrixLayoutDestroy(b_);
  if (d_ != nullptr) lt().cublasLtMatrixLayoutDestroy(d_);
  if (desc_ != nullptr) lt().cublasLtMatmulDescDestroy(desc_);
  a_ = b_ = d_ = nullptr;
  desc_ = nullptr;
}

void Gemm::run(const void* w, const void* x, const void* bias, const void* c, void* y,
               uint8_t* scratch) {
  context_.note(lt().cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                                    sizeof bias),
                node_.c_str());
  const float alpha = 1.0f, beta = c != nullptr ? 1.0f : 0.0f;
  auto* workspace =
      reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(scratch) + kWorkspaceAlign - 1) /
                              kWorkspaceAlign * kWorkspaceAlign);
  context_.note(
      lt().cublasLtMatmul(context_.lt, desc_, &alpha, w, a_, x, b_, &beta, c != nullptr ? c : y, d_,
                          y, d_, &heuristic_.algo, workspace, kWorkspace, context_.stream),
      node_.c_str());
}

}  // namespace ravlt::runtime::cuda
