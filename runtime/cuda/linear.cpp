// Linear (x W^T + b, then the activation, then the residual) through
// cuBLASLt, float32 in and out, with the bias fused as an epilogue and the
// residual as C (beta = 1) when no activation comes between. GELU is ours
// (launch_activation): cuBLASLt's GELU epilogue is the tanh approximation,
// and the model was trained with erf's. TF32 only when asked for.
//
// Row-major X (M x K) and W (N x K) are, read column-major, X^T and W^T;
// cuBLASLt computes D = op(A) op(B) column-major, so A = W (transposed),
// B = X, and D (N x M column-major) is Y (M x N row-major).
#include <cublasLt.h>

#include "ravlt/error.h"
#include "runtime/cuda/cublaslt_library.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/cuda_context.h"
#include "runtime/cuda/launchers.h"

namespace ravlt::runtime::cuda {
namespace {

constexpr size_t kWorkspace = size_t{4} << 20;
constexpr size_t kWorkspaceAlign = 256;

class LinearKernel : public Kernel {
 public:
  explicit LinearKernel(const PrepareArgs& args) : context_(args.context), node_(args.node.name) {
    const Shape& x = args.input_shape(0);
    const Shape& w = args.input_shape(1);  // (N, K)
    const int64_t k = w[1], n = w[0];
    const int64_t m = element_count(x) / (k > 0 ? k : 1);
    count_ = m * n;
    act_ = static_cast<Act>(static_cast<int>(args.node.activation));
    has_residual_ = args.node.inputs.size() == 4;
    fuse_residual_ = has_residual_ && act_ == Act::kNone;
    storage_ = context_.storage;
    const cudaDataType_t type = storage_ == Storage::kF16    ? CUDA_R_16F
                                : storage_ == Storage::kBF16 ? CUDA_R_16BF
                                                             : CUDA_R_32F;
    const char* what = "setting up the GEMM";
    try {
      // float32 accumulation always; TF32 only for float32 storage, on request.
      const bool tf32 = context_.allow_tf32 && storage_ == Storage::kF32;
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
      lt().cublasLtMatmulPreferenceSetAttribute(
          preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof workspace);
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
      throw Error("node '" + node_ + "' (Linear, " + std::to_string(m) + " x " + std::to_string(k) +
                  " by " + std::to_string(n) + "): " + e.what());
    }
  }
  ~LinearKernel() override { release(); }

  size_t scratch_bytes() const override { return kWorkspace + kWorkspaceAlign; }

  void run(const float* const* inputs, float* output, uint8_t* scratch) override {
    const float* bias = inputs[2];
    context_.note(lt().cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                      &bias, sizeof bias),
                  node_.c_str());
    const float alpha = 1.0f, beta = fuse_residual_ ? 1.0f : 0.0f;
    const float* c = fuse_residual_ ? inputs[3] : output;
    auto* workspace =
        reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(scratch) + kWorkspaceAlign - 1) /
                                kWorkspaceAlign * kWorkspaceAlign);
    context_.note(
        lt().cublasLtMatmul(context_.lt, desc_, &alpha, inputs[1], a_, inputs[0], b_, &beta, c, d_,
                            output, d_, &heuristic_.algo, workspace, kWorkspace, context_.stream),
        node_.c_str());
    if (act_ != Act::kNone || (has_residual_ && !fuse_residual_)) {
      launch_activation(storage_, output, count_, act_, has_residual_ ? inputs[3] : nullptr,
                        context_.stream);
      context_.note(cudaGetLastError(), node_.c_str());
    }
  }

 private:
  void release() {
    if (a_ != nullptr) lt().cublasLtMatrixLayoutDestroy(a_);
    if (b_ != nullptr) lt().cublasLtMatrixLayoutDestroy(b_);
    if (d_ != nullptr) lt().cublasLtMatrixLayoutDestroy(d_);
    if (desc_ != nullptr) lt().cublasLtMatmulDescDestroy(desc_);
    a_ = b_ = d_ = nullptr;
    desc_ = nullptr;
  }

  CudaContext& context_;
  std::string node_;
  int64_t count_ = 0;
  Act act_ = Act::kNone;
  Storage storage_ = Storage::kF32;
  bool has_residual_ = false, fuse_residual_ = false;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, d_ = nullptr;
  cublasLtMatmulHeuristicResult_t heuristic_{};
};

}  // namespace

std::unique_ptr<Kernel> make_linear(const PrepareArgs& args) {
  return std::make_unique<LinearKernel>(args);
}

}  // namespace ravlt::runtime::cuda
