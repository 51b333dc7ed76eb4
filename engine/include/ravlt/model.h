// Loading a .rvlt model and running it.
//
// Thread safety: a Model is immutable and may be shared by any number of
// threads (hold it by std::shared_ptr<const Model>). A Session holds the
// plans and memory of one caller: use each Session from one thread at a
// time, and make one Session per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ravlt/dtype.h"
#include "ravlt/export.h"

namespace ravlt {

/// How Model::load() opens a file.
struct LoadOptions {
  /// Verify the file's checksum (one pass over the file). The structure of
  /// the file is verified either way.
  bool verify_checksum = true;
  /// A directory for the model's weights packed into the layouts the CPU
  /// kernels read (created if missing; "" for none). The first plan packs
  /// them and writes one file per model and engine build there; a later
  /// load of the same model maps that file instead of packing again
  /// (verified by its checksum; a damaged or stale file is packed and
  /// written anew), which makes the first run ready sooner. Like
  /// OpenVINO's CACHE_DIR; `ravlt --cache-dir`. With that file, the model
  /// file's weights it holds packed copies of are not read at load: the
  /// rest of the model file is checked against a checksum the file
  /// recorded, and a plan that does read one of those weights (another
  /// precision) verifies the whole model file first.
  std::string cache_dir;
};

/// How an image becomes the network's input (stored in every model file;
/// see Model::preprocessing(); applied by ravlt::preprocess() in image.h).
struct Preprocessing {
  /// The shorter side is resized to this, keeping the aspect ratio; 0: not
  /// resized (a backbone's default).
  int resize = 256;
  /// Then the centre crop_height x crop_width is taken; 0 and 0: not
  /// cropped (a backbone's default).
  int crop_height = 224;
  int crop_width = 224;
  bool bilinear = false;                     ///< Pillow's bilinear filter instead of bicubic
  float mean[3] = {0.485f, 0.456f, 0.406f};  ///< per channel, after scaling to [0, 1]
  float std[3] = {0.229f, 0.224f, 0.225f};
};

/// What a model computes.
enum class ModelKind {
  kClassifier,  ///< ImageNet-style: "logits" over labels(), and the pooled "embedding"
  kBackbone,    ///< a detection / segmentation backbone: feature maps "stage1".."stage4"
};

/// "classifier" / "backbone".
RAVLT_API const char* to_string(ModelKind kind);

/// One node's arithmetic for some input shape (Model::node_macs).
struct NodeWork {
  std::string name;   ///< the node's name in the model file
  std::string op;     ///< its op kind ("Conv2d", "Linear", "SoftmaxAttention", ...)
  double macs = 0.0;  ///< multiply-adds, the whole batch
};

/// A verified model file, mapped into memory, with its graph.
class RAVLT_API Model {
 public:
  /// Opens `path`. Throws ravlt::Error naming the file and the problem.
  static std::shared_ptr<const Model> load(const std::string& path,
                                           const LoadOptions& options = {});
  ~Model();

  ModelKind kind() const;
  /// The named outputs, the default one first. A classifier: "logits"
  /// (N, classes) and "embedding" (N, projection), the pooled features its
  /// head reads. A backbone: "stage1" .. "stage4" (those converted), NCHW
  /// feature maps of strides 4, 8, 16, 32.
  const std::vector<std::string>& output_names() const;
  /// Number of logits per image (0 for a backbone).
  int num_classes() const;
  /// Class names, one per logit (empty for a backbone).
  const std::vector<std::string>& labels() const;
  /// The class names of the dataset the checkpoint was trained on, as its
  /// training framework recorded them (mmdetection's and mmsegmentation's
  /// CLASSES); empty when the checkpoint had none.
  const std::vector<std::string>& dataset_classes() const;
  /// The preprocessing recorded in the file at conversion.
  const Preprocessing& preprocessing() const;
  /// Bytes of weights copied out of the mapped file: float16/bfloat16
  /// weights widened at load, plus weights reordered for oneDNN (which
  /// grows as sessions plan new shapes).
  size_t copied_weight_bytes() const;
  /// Time spent packing weights into the kernels' layouts so far (the
  /// reorders of copied_weight_bytes(), summed over the threads that made
  /// them, first-touch page faults included): the part of a plan that
  /// LoadOptions::cache_dir saves the next process.
  double weight_packing_seconds() const;
  /// Bytes of the model file's mapping resident in this process now: the
  /// weights read in place (biases, norms, RoPE tables) and the file's
  /// header. A weight packed into a copy gives its mapped pages back, so
  /// that it is resident once (0 where the system does not say).
  size_t mapped_resident_bytes() const;
  /// The packed-weight file of LoadOptions::cache_dir ("" without one),
  /// the bytes of packed weights plans have used from it, and what
  /// happened to it: "read", "written (...)", "not written yet", or why it
  /// was not used or written.
  std::string weight_cache_path() const;
  size_t weight_cache_bytes_used() const;
  std::string weight_cache_status() const;
  /// Names of the graph's nodes in execution order (what Session::capture
  /// and `ravlt run --capture` take), e.g. "patch_embed.proj.9",
  /// "layers.0.downsample.reduction", "head".
  std::vector<std::string> node_names() const;
  /// Multiply-adds of every node for an input of `input_shape` (N, 3, H,
  /// W), in execution order: convolutions (output elements x input channels
  /// per group x kernel area), GEMMs (output elements x input features),
  /// softmax attention (2 L^2 d per image and head), RALA (2 L d^2 per image
  /// and head); norms, copies and pooling count none. The convention of the
  /// published figures: RAVLT-T at 1 x 3 x 224 x 224 sums to 2.61e9. Throws
  /// ravlt::Error on a shape the model cannot take.
  std::vector<NodeWork> node_macs(std::span<const int64_t> input_shape) const;

  class Impl;  // engine/src/model_impl.h, not installed

 private:
  friend const Impl& model_impl(const Model& model);  // the engine's own code reaches Impl
  Model();
  std::unique_ptr<Impl> impl_;
};

/// Where a Session runs.
enum class Device {
  kCpu,   ///< oneDNN and our vectorized kernels
  kCuda,  ///< GPU 0: cuBLASLt and our CUDA kernels (builds made with nvcc)
};

/// The arithmetic of a run: an element type (ravlt/dtype.h), one of
/// kFloat32, kFloat16, kBFloat16. Float32 is the reference on every device.
using Precision = DType;

/// "cpu" / "cuda", "fp32" / "fp16" / "bf16" (command lines, reports).
RAVLT_API const char* to_string(Device device);
RAVLT_API const char* to_string(Precision precision);

/// Whether `device` can run here; when not, `why` says why (no GPU, a build
/// without CUDA).
RAVLT_API bool device_available(Device device, std::string* why = nullptr);
/// Whether a Session on `device` can compute in `precision` here (the CPU:
/// fp32 always, bf16 with AVX512_BF16 or AMX-BF16, fp16 never; CUDA: all
/// three where the device is available); when not, `why` says why.
RAVLT_API bool precision_available(Device device, Precision precision, std::string* why = nullptr);
/// "cpu (2 cores)", "cuda: NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB)".
RAVLT_API std::string device_description(Device device);

/// How a Session runs.
struct SessionOptions {
  /// Threads each run uses; 0: all cores. (CUDA: the host threads that
  /// copy the input into page-locked memory and the outputs out of it.)
  /// On the CPU, OpenMP threads; a run sets its calling thread's OpenMP
  /// thread count (omp_set_num_threads) to this.
  int threads = 0;
  /// Time every op of every run (see Session::profile()); costs a clock
  /// read per op.
  bool profile = false;
  /// Most bytes of activations one input shape may plan (the arena and the
  /// output); a larger shape, or a model file whose layers would need more,
  /// is an Error when planned. 0: the memory of the device (host RAM for the
  /// CPU, the GPU's memory for CUDA).
  size_t max_memory_bytes = 0;
  /// Input shapes whose plans (prepared kernels and memory) the session
  /// keeps; running one more shape first frees the least recently used
  /// plan. At least 1.
  size_t max_cached_plans = 8;
  /// Where to run. A CUDA session copies the input to the GPU and the
  /// logits back; the weights are uploaded once per Model, shared by its
  /// sessions.
  Device device = Device::kCpu;
  /// CUDA: fp16 / bf16 store activations and weights in 16 bits and
  /// accumulate in float32 (RoPE angles stay float32); the logits come back
  /// as float32. CPU: fp32, or bf16 on CPUs with AVX512_BF16 or AMX-BF16
  /// (weights and the activations between layers in bfloat16, arithmetic
  /// accumulated in float32; LayerNorm statistics, softmax sums, RALA's
  /// reductions, the pooled features and the outputs in float32); fp16,
  /// or bf16 on another CPU, is an Error naming what is missing.
  Precision precision = Precision::kFloat32;
  /// CUDA: let float32 GEMMs use TF32 tensor cores (faster, about 1e-3
  /// relative error instead of 1e-6).
  bool allow_tf32 = false;
  /// CPU, float32: GEMMs read copies of their weights packed into the
  /// layout oneDNN's kernels run fastest on, made by the first plan of the
  /// Model (shared by its sessions; kept across processes by
  /// LoadOptions::cache_dir). false: they read the weights where the model
  /// file stores them, with no copy: the plan takes a fraction of the time
  /// (RAVLT-T at batch 1 on 2 cores: 24-28 -> 9-14 ms) and each run 3-7 %
  /// longer; for a process that runs a model a few times. Convolutions'
  /// weights are packed either way (a few MB), and so are all weights where
  /// the CPU has no brgemm matmul (below AVX-512: the matmul would repack
  /// them every run). Another device or precision with false is an Error.
  bool pack_weights = true;
  /// With pack_weights (CPU, float32), true: a plan's first run reads the
  /// GEMMs' weights in place, and as it returns a thread of the session
  /// packs them and makes the plan again; the next call that runs or plans
  /// waits for that if it has not finished (Session::deferred_packing()
  /// says how long), later runs read the packed copies. The first result
  /// comes sooner (RAVLT-T on 2 cores: ready in 49 -> 33 ms at batch 1),
  /// and a caller that does something else before its next run (a server
  /// between requests) does not wait at all; one that runs again at once
  /// waits, and pays for two plans (2 to 5 runs in a row took 1.03-1.23x
  /// as long). false (the default): the plan packs them before its first
  /// run. No effect where nothing could stay in place (below AVX-512,
  /// bfloat16, the GPU) or with LoadOptions::cache_dir (whose file the plan
  /// writes).
  bool defer_packing = false;
};

/// The packing a session deferred past its first run
/// (SessionOptions::defer_packing), once a later call has waited for it.
struct DeferredPacking {
  bool done = false;            ///< false: none was deferred, or no call has waited for it yet
  double seconds = 0.0;         ///< its time on the session's packing thread
  double waited_seconds = 0.0;  ///< how long the next call waited for it
  std::string error;            ///< why it failed (the plans kept reading the weights in place)
};

/// Time spent per op kind over a session's profiled runs.
struct OpProfile {
  std::string op;        ///< "Conv2d", "Linear", "RalaAttention", ..., or a fused chain
                         ///< ("Linear+Conv2d+Linear": a whole FFN run as one kernel)
  double seconds = 0.0;  ///< total over all runs
  int nodes = 0;         ///< nodes of this kind in the graph
};

/// Time a session's profiled runs spent staging the input in and the
/// outputs out, apart from the nodes' time (Session::copy_profile()).
struct CopyProfile {
  double input_seconds = 0.0;   ///< total over all runs: the input converted / copied in
  double output_seconds = 0.0;  ///< total over all runs: the outputs copied out / converted
};

/// Time spent in one node of the graph over a session's profiled runs.
struct NodeProfile {
  std::string name;      ///< the node's name in the model file
  std::string op;        ///< its op kind, or the fused chain it ran in ("Linear+Conv2d+Linear":
                         ///< the chain's time counts at its last node)
  double seconds = 0.0;  ///< total over all runs
};

/// A float32 tensor owned by the caller.
struct Tensor {
  std::vector<int64_t> shape;  ///< e.g. (N, 3, H, W)
  std::vector<float> data;     ///< C order, product(shape) values
};

/// One named output of a run, owned by the session (see Session::run_all).
struct Output {
  std::string name;             ///< e.g. "logits", "stage3"
  std::vector<int64_t> shape;   ///< (N, classes), (N, C, H, W), ...
  std::span<const float> data;  ///< float32, C order; valid until the session's next run
};

/// A named output's shape for some input shape (Session::output_shapes).
struct OutputShape {
  std::string name;
  std::vector<int64_t> shape;
};

/// Memory of the plan for one input shape.
struct PlanMemory {
  size_t arena_bytes = 0;  ///< one arena holds every intermediate and scratch
  /// What the intermediates alone (each in its element type) would need.
  size_t activation_bytes = 0;
  /// The largest working memory one op needs (float32 reductions, tables).
  size_t scratch_bytes = 0;
  size_t lower_bound = 0;   ///< most bytes live at any one step
  size_t output_bytes = 0;  ///< the outputs, kept apart from the arena to the end of the run
  /// The first ops, run one image at a time where a batch's activations
  /// would outgrow the CPU's caches (0: the whole run batched).
  size_t image_by_image_ops = 0;
};

/// Runs a Model: one per thread, holding its plans (one per input shape)
/// and their memory.
class RAVLT_API Session {
 public:
  /// Throws ravlt::Error on a null model or a negative thread count.
  explicit Session(std::shared_ptr<const Model> model, const SessionOptions& options = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  /// Runs the network on `input`, NCHW float32 of `shape` (N, 3, H, W; any
  /// batch and size). Returns the model's first output (the logits (N,
  /// classes) of a classifier, the first feature map of a backbone), owned
  /// by the session and valid until its next run or plan. The first run of a shape
  /// plans it; later runs of that shape allocate nothing. Throws
  /// ravlt::Error on a shape the model cannot take.
  std::span<const float> run(const float* input, std::span<const int64_t> shape);
  /// The same on a caller-owned tensor, returning a caller-owned result.
  Tensor run(const Tensor& input);
  /// Runs the network and returns the outputs named in `select` (see
  /// Model::output_names()), in that order; empty: every output. Only what
  /// they need is computed. The data are float32 whatever the precision,
  /// owned by the session and valid until its next run. Throws
  /// ravlt::Error naming an output the model lacks, and the ones it has.
  std::vector<Output> run_all(const float* input, std::span<const int64_t> shape,
                              const std::vector<std::string>& select = {});
  /// The shapes run_all() would return for an input of `input_shape`
  /// (nothing is planned or run). Throws ravlt::Error on a shape the model
  /// cannot take.
  std::vector<OutputShape> output_shapes(std::span<const int64_t> input_shape,
                                         const std::vector<std::string>& select = {}) const;
  /// Runs on `input` and returns copies of the outputs of the nodes named
  /// in `nodes` (see Model::node_names()), in that order; feature maps
  /// (rank 4) come back NCHW like the input, whatever layout the runtime
  /// keeps them in. For comparing the network stage by stage with another
  /// implementation: slower than run(), and it allocates. Throws
  /// ravlt::Error naming a node the graph does not have.
  std::vector<Tensor> capture(const Tensor& input, const std::vector<std::string>& nodes);
  /// Plans `shape` computing every output if needed and reports its
  /// memory: the plan run_all() uses by default, and run() too where the
  /// first output computes the others on its way (a classifier), so that
  /// their first call finds it ready. A backbone's run() of stage1 alone
  /// plans that on its own.
  PlanMemory plan(std::span<const int64_t> shape);
  /// With SessionOptions::profile: time per op kind, largest first.
  std::vector<OpProfile> profile() const;
  /// With SessionOptions::profile: time per node, in graph order.
  std::vector<NodeProfile> node_profile() const;
  /// With SessionOptions::profile: the input's staging before the first
  /// node (on a GPU: the copy into pinned memory, the transfer, waited
  /// for) and the outputs' after the last; zero where the kernels read
  /// the caller's input and write the results in place (the CPU in
  /// float32).
  CopyProfile copy_profile() const;
  /// The packing deferred past the first run (SessionOptions::defer_packing).
  DeferredPacking deferred_packing() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ravlt
