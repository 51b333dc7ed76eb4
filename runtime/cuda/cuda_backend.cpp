#include "runtime/cuda/cuda_backend.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "ravlt/error.h"
#include "runtime/cuda/cublaslt_library.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/cuda_context.h"
#include "runtime/cuda/launchers.h"
#include "runtime/host_copy.h"

namespace ravlt::runtime::cuda {
namespace {

// One entry per runtime::Op, in its order.
constexpr KernelFactory kFactories[] = {
#define RAVLT_OP(Name, snake, ...) make_##snake,
#include "formats/rvlt/ops.def"
#undef RAVLT_OP
};
static_assert(sizeof(kFactories) / sizeof(kFactories[0]) == kOpCount,
              "every op needs a CUDA kernel factory");

// The architectures this build has machine code for (CMAKE_CUDA_ARCHITECTURES).
constexpr int kMinComputeCapability = 80;

class DeviceMemory : public BackendMemory {
 public:
  explicit DeviceMemory(size_t bytes) {
    check(cudaMalloc(&data_, bytes > 0 ? bytes : 1),
          ("allocating " + std::to_string(bytes) + " bytes of device memory").c_str());
  }
  ~DeviceMemory() override { cudaFree(data_); }
  uint8_t* data() const override { return static_cast<uint8_t*>(data_); }

 private:
  void* data_ = nullptr;
};

// A buffer grown on demand (only when a larger shape is first run), either
// page-locked host memory, from which copies run asynchronously at full
// speed, or device memory (float32 staging of a converted input or output).
class GrowingBuffer {
 public:
  explicit GrowingBuffer(bool pinned_host) : pinned_host_(pinned_host) {}
  ~GrowingBuffer() { release(); }
  uint8_t* reserve(size_t bytes) {
    if (bytes > size_) {
      release();
      void* p = nullptr;
      if (pinned_host_) {
        check(cudaHostAlloc(&p, bytes, cudaHostAllocDefault), "allocating pinned host memory");
      } else {
        check(cudaMalloc(&p, bytes), "allocating device staging memory");
      }
      data_ = static_cast<uint8_t*>(p);
      size_ = bytes;
    }
    return data_;
  }
  size_t size() const { return size_; }
  uint8_t* data() const { return data_; }

 private:
  void release() {
    if (data_ != nullptr) pinned_host_ ? cudaFreeHost(data_) : cudaFree(data_);
    data_ = nullptr;
    size_ = 0;
  }
  bool pinned_host_;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// A plan's launches recorded once as a CUDA graph.
class RecordedGraph : public PlanState {
 public:
  ~RecordedGraph() override {
    if (exec != nullptr) cudaGraphExecDestroy(exec);
    if (graph != nullptr) cudaGraphDestroy(graph);
  }
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
};

class CudaBackend : public Backend {
 public:
  CudaBackend(std::shared_ptr<DeviceWeights> weights, const CudaOptions& options)
      : weights_(std::move(weights)), options_(options) {
    std::string why;
    if (!available(&why)) throw Error(why);
    check(cudaSetDevice(0), "selecting device 0");
    check(cudaStreamCreateWithFlags(&context_.stream, cudaStreamNonBlocking), "creating a stream");
    const cublasStatus_t status = lt().cublasLtCreate(&context_.lt);
    if (status != CUBLAS_STATUS_SUCCESS) {
      cudaStreamDestroy(context_.stream);
      check(status, "creating a cuBLASLt handle");
    }
    context_.allow_tf32 = options.allow_tf32;
    context_.storage = options.storage;
  }
  ~CudaBackend() override {
    cudaStreamSynchronize(context_.stream);
    lt().cublasLtDestroy(context_.lt);
    cudaStreamDestroy(context_.stream);
  }

  std::unique_ptr<Kernel> prepare(const Graph& graph, const Node& node,
                                  const std::vector<Shape>& shapes) override {
    context_.constant_layouts.resize(graph.values().size(), WeightLayout::kAsStored);
    context_.constant_storage.resize(graph.values().size(), context_.storage);
    return kFactories[static_cast<size_t>(node.op)](PrepareArgs{graph, node, shapes, context_});
  }

  void begin_run(int) override {
    pending_.clear();
    pending_end_ = 0;
    context_.first_error = cudaSuccess;
    context_.first_blas_error = CUBLAS_STATUS_SUCCESS;
    context_.first_error_node = nullptr;
  }

  bool uses_host_memory() const override { return false; }

  std::unique_ptr<BackendMemory> allocate(size_t bytes) override {
    return std::make_unique<DeviceMemory>(bytes);
  }

  DType activation_dtype() const override { return context_.storage; }

  DType constant_dtype(uint32_t value) const override {
    return value < context_.constant_storage.size() ? context_.constant_storage[value]
                                                    : context_.storage;
  }

  const void* constant(const Graph& graph, uint32_t value) override {
    const WeightLayout layout = value < context_.constant_layouts.size()
                                    ? context_.constant_layouts[value]
                                    : WeightLayout::kAsStored;
    return weights_->get(graph, value, layout, constant_dtype(value));
  }

  // The host side is float32; a float16/bfloat16 session converts on the
  // device, through a float32 staging buffer. The input goes in pieces
  // (host_copy.h): the host threads copy a piece into page-locked staging
  // while the one before it crosses to the device (and is converted there),
  // rather than one thread copying the whole batch before the transfer
  // starts.
  void copy_in(void* device, DType dst_type, const float* host, size_t count) override {
    const size_t bytes = count * sizeof(float);
    // The staging buffers are reused: an earlier copy of this run must have
    // left them first (a run's one input finds the stream idle: no wait).
    check(cudaStreamSynchronize(context_.stream), "waiting for the previous copy to the device");
    uint8_t* staging = pinned_in_.reserve(bytes);
    uint8_t* target =
        static_cast<uint8_t*>(dst_type == DType::kFloat32 ? device : device_in_.reserve(bytes));
    const size_t piece = copy_piece_bytes(bytes, kStagingAlign);
    for (size_t at = 0; at < bytes; at += piece) {
      const size_t n = std::min(piece, bytes - at);
      parallel_copy(staging + at, reinterpret_cast<const uint8_t*>(host) + at, n,
                    options_.host_threads);
      check(cudaMemcpyAsync(target + at, staging + at, n, cudaMemcpyHostToDevice, context_.stream),
            "copying the input to the device");
      if (target != device) {
        const size_t floats = at / sizeof(float);
        launch_convert(target + at, DType::kFloat32,
                       static_cast<uint8_t*>(device) + floats * dtype_size(dst_type), dst_type,
                       static_cast<int64_t>(n / sizeof(float)), context_.stream);
        check(cudaGetLastError(), "converting the input");
      }
    }
  }

  // Each output goes to its own part of the staging buffers (a model may
  // have several), copied to `host` when the run has finished. A buffer too
  // small for this output is grown only after the copies already queued have
  // landed.
  void copy_out(float* host, const void* device, DType src_type, size_t count) override {
    const size_t bytes = count * sizeof(float);
    const size_t offset = (pending_end_ + kStagingAlign - 1) / kStagingAlign * kStagingAlign;
    if (offset + bytes > pinned_out_.size()) {
      land_pending_copies();
      pinned_out_.reserve(offset + bytes);
      if (src_type != DType::kFloat32) device_out_.reserve(offset + bytes);
    } else if (src_type != DType::kFloat32 && offset + bytes > device_out_.size()) {
      land_pending_copies();
      device_out_.reserve(offset + bytes);
    }
    uint8_t* staging = pinned_out_.reserve(offset + bytes) + offset;
    const void* source = device;
    if (src_type != DType::kFloat32) {
      void* wide = device_out_.reserve(offset + bytes) + offset;
      launch_convert(device, src_type, wide, DType::kFloat32, static_cast<int64_t>(count),
                     context_.stream);
      check(cudaGetLastError(), "converting the output");
      source = wide;
    }
    check(cudaMemcpyAsync(staging, source, bytes, cudaMemcpyDeviceToHost, context_.stream),
          "copying the output from the device");
    pending_.push_back({host, offset, bytes});
    pending_end_ = offset + bytes;
  }

  void execute(std::unique_ptr<PlanState>& state,
               const std::function<void()>& launch_all) override {
    if (!options_.use_graphs) {
      launch_all();
      return;
    }
    if (!state) {
      auto recorded = std::make_unique<RecordedGraph>();
      check(cudaStreamBeginCapture(context_.stream, cudaStreamCaptureModeThreadLocal),
            "starting to record the plan's CUDA graph");
      launch_all();
      const cudaError_t ended = cudaStreamEndCapture(context_.stream, &recorded->graph);
      raise_launch_error();
      check(ended, "recording the plan's CUDA graph");
      check(cudaGraphInstantiate(&recorded->exec, recorded->graph, 0),
            "instantiating the plan's CUDA graph");
      state = std::move(recorded);
    }
    check(cudaGraphLaunch(static_cast<RecordedGraph&>(*state).exec, context_.stream),
          "launching the plan's CUDA graph");
  }

  void finish_run() override {
    std::vector<PendingCopy> copies = std::exchange(pending_, {});
    pending_end_ = 0;
    check(cudaStreamSynchronize(context_.stream), "running the plan");
    raise_launch_error();
    land(copies);
  }

 private:
  static constexpr size_t kStagingAlign = 256;
  struct PendingCopy {
    float* host;
    size_t offset, bytes;
  };

  // Waits for the queued output copies and moves them to their callers.
  void land_pending_copies() {
    const std::vector<PendingCopy> copies = std::exchange(pending_, {});
    if (copies.empty()) return;
    check(cudaStreamSynchronize(context_.stream), "copying the outputs from the device");
    land(copies);
  }

  // Landed copies from the staging buffer to their callers.
  void land(const std::vector<PendingCopy>& copies) const {
    for (const PendingCopy& c : copies) {
      parallel_copy(c.host, pinned_out_.data() + c.offset, c.bytes, options_.host_threads);
    }
  }

  void raise_launch_error() {
    const char* node = context_.first_error_node != nullptr ? context_.first_error_node : "?";
    if (context_.first_error != cudaSuccess) {
      const cudaError_t e = context_.first_error;
      context_.first_error = cudaSuccess;
      throw Error(std::string("CUDA: node '") + node + "': " + cudaGetErrorString(e));
    }
    if (context_.first_blas_error != CUBLAS_STATUS_SUCCESS) {
      const cublasStatus_t e = context_.first_blas_error;
      context_.first_blas_error = CUBLAS_STATUS_SUCCESS;
      throw Error(std::string("cuBLASLt: node '") + node + "': " + lt().cublasLtGetStatusString(e));
    }
  }

  std::shared_ptr<DeviceWeights> weights_;
  CudaOptions options_;
  CudaContext context_;
  GrowingBuffer pinned_in_{true}, pinned_out_{true};
  GrowingBuffer device_in_{false}, device_out_{false};
  std::vector<PendingCopy> pending_;  // this run's outputs, in pinned_out_
  size_t pending_end_ = 0;            // bytes of pinned_out_ they take
};

}  // namespace

bool available(std::string* why) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count == 0) {
    if (why != nullptr) {
      if (status == cudaErrorInsufficientDriver) {
        *why =
            "no CUDA device: no NVIDIA driver is loaded, or it is older than this build's CUDA "
            "runtime " +
            std::to_string(CUDART_VERSION / 1000) + "." +
            std::to_string(CUDART_VERSION % 1000 / 10);
      } else {
        *why = std::string("no CUDA device: ") +
               (status == cudaSuccess || status == cudaErrorNoDevice ? "no CUDA-capable GPU found"
                                                                     : cudaGetErrorString(status));
      }
    }
    cudaGetLastError();  // clear the sticky status of the failed query
    return false;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    if (why != nullptr) *why = "no CUDA device: cannot read device 0's properties";
    return false;
  }
  if (prop.major * 10 + prop.minor < kMinComputeCapability) {
    if (why != nullptr) {
      *why = std::string(prop.name) + " is sm_" + std::to_string(prop.major * 10 + prop.minor) +
             "; this build has CUDA code for sm_80 and newer";
    }
    return false;
  }
  return true;
}

std::string device_description() {
  cudaDeviceProp prop{};
  if (!available() || cudaGetDeviceProperties(&prop, 0) != cudaSuccess) return "none";
  char memory[32];
  std::snprintf(memory, sizeof memory, "%.1f GiB",
                static_cast<double>(prop.totalGlobalMem) / (1 << 30));
  return std::string(prop.name) + " (sm_" + std::to_string(prop.major * 10 + prop.minor) + ", " +
         std::to_string(prop.multiProcessorCount) + " SMs, " + memory + ")";
}

size_t device_memory_bytes() {
  cudaDeviceProp prop{};
  if (!available() || cudaGetDeviceProperties(&prop, 0) != cudaSuccess) return 0;
  return prop.totalGlobalMem;
}

std::unique_ptr<Backend> make_backend(std::shared_ptr<DeviceWeights> weights,
                                      const CudaOptions& options) {
  return std::make_unique<CudaBackend>(std::move(weights), options);
}

}  // namespace ravlt::runtime::cuda
