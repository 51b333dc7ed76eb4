// Helpers for the Kernel objects of the CUDA backend.
#pragma once

#include <memory>
#include <string>

#include "ravlt/error.h"
#include "runtime/cuda/cuda_context.h"
#include "runtime/cuda/launchers.h"

namespace ravlt::runtime::cuda {

inline int as_int(int64_t v, const Node& node) {
  if (v < 0 || v > (int64_t{1} << 31) - 1) {
    throw Error("node '" + node.name + "': size " + std::to_string(v) +
                " is beyond the CUDA kernels' 32-bit sizes");
  }
  return static_cast<int>(v);
}

// A kernel that launches `launch(inputs, output, scratch, stream)`.
template <typename Launch>
class LaunchKernel : public Kernel {
 public:
  LaunchKernel(CudaContext& context, const Node& node, Launch launch, size_t scratch = 0)
      : context_(context), node_(node.name), launch_(launch), scratch_(scratch) {}
  size_t scratch_bytes() const override { return scratch_; }
  void run(const ConstView* inputs, View output, uint8_t* scratch) override {
    launch_(inputs, output, scratch, context_.stream);
    context_.note(cudaGetLastError(), node_.c_str());
  }

 private:
  CudaContext& context_;
  std::string node_;
  Launch launch_;
  size_t scratch_;
};

template <typename Launch>
std::unique_ptr<Kernel> kernel(const PrepareArgs& args, Launch launch, size_t scratch = 0) {
  return std::make_unique<LaunchKernel<Launch>>(args.context, args.node, launch, scratch);
}

inline Act act_of(Activation a) {
  return static_cast<Act>(static_cast<int>(a));
}

}  // namespace ravlt::runtime::cuda
