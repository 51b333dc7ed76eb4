// Linear (x W^T + b, then the activation, then the residual) through
// cuBLASLt (gemm.h), with the bias fused as an epilogue and the residual as
// C (beta = 1) when no activation comes between. GELU is ours
// (launch_activation): cuBLASLt's GELU epilogue is the tanh approximation,
// and the model was trained with erf's.
#include "runtime/cuda/cuda_context.h"
#include "runtime/cuda/gemm.h"
#include "runtime/cuda/launchers.h"

namespace ravlt::runtime::cuda {
namespace {

class LinearKernel : public Kernel {
 public:
  LinearKernel(const PrepareArgs& args, int64_t m, int64_t n, int64_t k)
      : context_(args.context),
        node_(args.node.name),
        gemm_(args.context, args.node.name, m, n, k),
        count_(m * n),
        act_(static_cast<Act>(static_cast<int>(args.node.activation))),
        has_residual_(args.node.inputs.size() == 4),
        fuse_residual_(has_residual_ && act_ == Act::kNone) {}

  size_t scratch_bytes() const override { return Gemm::kScratchBytes; }

  void run(const ConstView* inputs, View output, uint8_t* scratch) override {
    gemm_.run(inputs[1].data, inputs[0].data, inputs[2].data,
              fuse_residual_ ? inputs[3].data : nullptr, output.data, scratch);
    if (act_ != Act::kNone || (has_residual_ && !fuse_residual_)) {
      launch_activation(context_.storage, output.data, count_, act_,
                        has_residual_ ? inputs[3].data : nullptr, context_.stream);
      context_.note(cudaGetLastError(), node_.c_str());
    }
  }

 private:
  CudaContext& context_;
  std::string node_;
  Gemm gemm_;
  int64_t count_;
  Act act_;
  bool has_residual_, fuse_residual_;
};

}  // namespace

std::unique_ptr<Kernel> make_linear(const PrepareArgs& args) {
  const Shape& x = args.input_shape(0);
  const Shape& w = args.input_shape(1);  // (N, K)
  const int64_t k = w[1], n = w[0];
  return std::make_unique<LinearKernel>(args, element_count(x) / (k > 0 ? k : 1), n, k);
}

}  // namespace ravlt::runtime::cuda
