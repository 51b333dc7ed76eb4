// ravlt::Model and ravlt::Session over the runtime.
#include "ravlt/model.h"

#include <unistd.h>

#include <algorithm>
#include <optional>

#include "engine/src/model_impl.h"
#include "engine/src/named_outputs.h"
#include "ravlt/error.h"
#include "runtime/cpu/cpu_backend.h"
#include "runtime/executor.h"
#include "runtime/op_work.h"
#include "runtime/shape_inference.h"

namespace ravlt {

Model::Model() : impl_(std::make_unique<Impl>()) {}
Model::~Model() = default;

std::shared_ptr<const Model> Model::load(const std::string& path, const LoadOptions& options) {
  rvlt::OpenOptions open;
  open.verify_checksum = options.verify_checksum;
  std::shared_ptr<Model> model(new Model());
  // With a cache directory the packed-weight file is read (and verified)
  // first: the weights it holds packed copies of need not be read in the
  // model file, whose other bytes are checked against the parts checksum
  // it records (rvlt::OpenOptions::parts; a plan that needs one of those
  // weights' original bytes verifies the model file whole first).
  std::shared_ptr<runtime::cpu::WeightCache> cached;
  if (!options.cache_dir.empty()) {
    if (const std::optional<uint64_t> checksum = rvlt::read_footer_checksum(path)) {
      cached =
          std::make_shared<runtime::cpu::WeightCache>(options.cache_dir, *checksum, RAVLT_VERSION);
      if (options.verify_checksum) open.parts = cached->model_parts();
    }
  }
  auto file = rvlt::ModelFile::open(path, open);
  for (const auto* label : *file->metadata().labels()) model->impl_->labels.push_back(label->str());
  // Verified by the reader: three channels, positive sizes and std.
  const auto& pre = *file->metadata().preprocess();
  Preprocessing& p = model->impl_->preprocessing;
  p.resize = pre.resize();
  p.crop_height = pre.crop_h();
  p.crop_width = pre.crop_w();
  p.bilinear = pre.interpolation() == fb::Interpolation_Bilinear;
  for (int c = 0; c < 3 && pre.mean()->size() == 3; ++c) {
    p.mean[c] = pre.mean()->Get(static_cast<flatbuffers::uoffset_t>(c));
    p.std[c] = pre.std()->Get(static_cast<flatbuffers::uoffset_t>(c));
  }
  Model::Impl& impl = *model->impl_;
  impl.kind = file->metadata().kind() == fb::ModelKind_Backbone ? ModelKind::kBackbone
                                                                : ModelKind::kClassifier;
  if (const auto* classes = file->metadata().dataset_classes()) {
    for (const auto* c : *classes) impl.dataset_classes.push_back(c->str());
  }
  if (cached && cached->model_checksum() == file->checksum()) {
    impl.weights = std::move(cached);
  } else if (!options.cache_dir.empty()) {
    // No footer read ahead, or the file changed in between.
    impl.weights = std::make_shared<runtime::cpu::WeightCache>(options.cache_dir, file->checksum(),
                                                               RAVLT_VERSION);
  } else {
    impl.weights = std::make_shared<runtime::cpu::WeightCache>();
  }
  impl.weights->attach(file);
  impl.graph = runtime::Graph::load(std::move(file));
  engine::NamedOutputs outputs = engine::named_outputs(impl.kind, *impl.graph);
  impl.output_names = std::move(outputs.names);
  impl.output_values = std::move(outputs.values);
  impl.output_upstream = std::move(outputs.upstream);
  impl.first_output_plan = impl.planned_outputs({impl.output_values[0]});
  return model;
}

std::vector<uint32_t> Model::Impl::planned_outputs(const std::vector<uint32_t>& values) const {
  for (size_t j = 0; j < output_values.size(); ++j) {
    bool on_the_way = false;
    for (uint32_t v : values) {
      const auto i = static_cast<size_t>(std::find(output_values.begin(), output_values.end(), v) -
                                         output_values.begin());
      on_the_way = on_the_way || v == output_values[j] || output_upstream[i][j];
    }
    if (!on_the_way) return values;  // output j would cost nodes of its own
  }
  // Each value once: a corrupt classifier file whose logits are its pooled
  // features names one value twice, and is refused by the shape checks.
  std::vector<uint32_t> all;
  for (uint32_t v : output_values) {
    if (std::find(all.begin(), all.end(), v) == all.end()) all.push_back(v);
  }
  return all;
}

std::vector<uint32_t> Model::Impl::select_outputs(const std::vector<std::string>& select) const {
  if (select.empty()) return output_values;
  std::vector<uint32_t> values;
  for (const std::string& name : select) {
    const auto it = std::find(output_names.begin(), output_names.end(), name);
    if (it == output_names.end()) {
      std::string names;
      for (const std::string& n : output_names) names += (names.empty() ? "" : ", ") + n;
      throw Error("the model has no output '" + name + "' (its outputs: " + names + ")");
    }
    const uint32_t v = output_values[static_cast<size_t>(it - output_names.begin())];
    if (std::find(values.begin(), values.end(), v) != values.end()) {
      throw Error("output '" + name + "' is selected twice");
    }
    values.push_back(v);
  }
  return values;
}

const std::string& Model::Impl::output_name(uint32_t value) const {
  const auto it = std::find(output_values.begin(), output_values.end(), value);
  return output_names[static_cast<size_t>(it - output_values.begin())];
}

ModelKind Model::kind() const {
  return impl_->kind;
}

const std::vector<std::string>& Model::output_names() const {
  return impl_->output_names;
}

const std::vector<std::string>& Model::dataset_classes() const {
  return impl_->dataset_classes;
}

const char* to_string(ModelKind kind) {
  return kind == ModelKind::kBackbone ? "backbone" : "classifier";
}

int Model::num_classes() const {
  return static_cast<int>(impl_->labels.size());
}

const std::vector<std::string>& Model::labels() const {
  return impl_->labels;
}

const Preprocessing& Model::preprocessing() const {
  return impl_->preprocessing;
}

size_t Model::copied_weight_bytes() const {
  return impl_->graph->widened_bytes() + impl_->weights->reordered_bytes();
}

double Model::weight_packing_seconds() const {
  return impl_->weights->reorder_seconds();
}

size_t Model::mapped_resident_bytes() const {
  return impl_->graph->file().resident_bytes();
}

std::string Model::weight_cache_path() const {
  return impl_->weights->file_path();
}

size_t Model::weight_cache_bytes_used() const {
  return impl_->weights->file_bytes_used();
}

std::string Model::weight_cache_status() const {
  return impl_->weights->file_status();
}

std::vector<NodeWork> Model::node_macs(std::span<const int64_t> input_shape) const {
  const runtime::Graph& graph = *impl_->graph;
  const std::vector<runtime::Shape> shapes =
      runtime::infer_shapes(graph, runtime::Shape(input_shape.begin(), input_shape.end()));
  std::vector<NodeWork> work;
  for (const auto& node : graph.nodes()) {
    work.push_back({node.name, runtime::op_name(node.op), runtime::node_macs(node, shapes)});
  }
  return work;
}

std::vector<std::string> Model::node_names() const {
  std::vector<std::string> names;
  for (const auto& node : impl_->graph->nodes()) names.push_back(node.name);
  return names;
}

namespace {

size_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : 0;
}

// What a session's plans may use by default: the memory of the device
// they live on.
size_t memory_of(Device device) {
  return device == Device::kCuda ? runtime::cuda::device_memory_bytes() : physical_memory_bytes();
}

std::unique_ptr<runtime::Backend> make_backend(const Model& model, const SessionOptions& options) {
  if (options.device == Device::kCuda) {
    runtime::cuda::CudaOptions cuda;
    cuda.allow_tf32 = options.allow_tf32;
    cuda.storage = options.precision;
    cuda.host_threads = options.threads;
    // The device's copies are made from the model file's own bytes.
    model_impl(model).graph->file().verify_deferred();
    return runtime::cuda::make_backend(model_impl(model).device_weights(), cuda);
  }
  // The CPU backend refuses what it cannot compute (fp16; bf16 on a CPU
  // without bfloat16 instructions) with the reason.
  auto cpu = std::make_unique<runtime::cpu::CpuBackend>(model_impl(model).weights, options.threads,
                                                        options.precision);
  cpu->set_weight_packing(options.pack_weights, options.defer_packing);
  return cpu;
}

}  // namespace

const char* to_string(Device device) {
  return device == Device::kCuda ? "cuda" : "cpu";
}

const char* to_string(Precision precision) {
  return dtype_short_name(precision).data();  // literals: NUL-terminated
}

std::string device_description(Device device) {
  if (device == Device::kCuda) return "cuda: " + runtime::cuda::device_description();
  return "cpu (" + std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) + " cores)";
}

bool device_available(Device device, std::string* why) {
  if (device == Device::kCpu) return true;
  return runtime::cuda::available(why);
}

bool precision_available(Device device, Precision precision, std::string* why) {
  if (device == Device::kCuda) return device_available(device, why);
  switch (precision) {
    case Precision::kFloat32:
      return true;
    case Precision::kBFloat16:
      return runtime::cpu::cpu_bf16_support(why);
    default:
      if (why != nullptr) {
        *why = std::string("precision ") + to_string(precision) + " runs on the CUDA device only";
      }
      return false;
  }
}

class Session::Impl {
 public:
  Impl(std::shared_ptr<const Model> m, const SessionOptions& options)
      : model(std::move(m)),
        executor(
            model_impl(*model).graph, make_backend(*model, options), options.threads,
            options.max_memory_bytes > 0 ? options.max_memory_bytes : memory_of(options.device),
            options.max_cached_plans) {
    executor.set_profiling(options.profile);
  }
  std::shared_ptr<const Model> model;
  runtime::Executor executor;
};

Session::Session(std::shared_ptr<const Model> model, const SessionOptions& options) {
  if (!model) throw Error("Session: no model");
  if (options.threads < 0) throw Error("Session: thread count must not be negative");
  if (options.max_cached_plans == 0) throw Error("Session: max_cached_plans must be at least 1");
  if (options.precision == DType::kInt64) {
    throw Error("Session: precision int64 is not one of fp32, fp16, bf16");
  }
  // Unpacked weights are float32 weights as the file stores them; the
  // other precisions and the GPU copy or narrow every weight anyway.
  if (!options.pack_weights && options.device != Device::kCpu) {
    throw Error("Session: pack_weights = false applies to the cpu device, not " +
                std::string(to_string(options.device)));
  }
  if (!options.pack_weights && options.precision != Precision::kFloat32) {
    throw Error(std::string("Session: pack_weights = false applies to precision fp32, not ") +
                to_string(options.precision) + " (its weights are narrowed into packed copies)");
  }
  impl_ = std::make_unique<Impl>(std::move(model), options);
}

Session::~Session() = default;

std::span<const float> Session::run(const float* input, std::span<const int64_t> shape) {
  const Model::Impl& model = model_impl(*impl_->model);
  // The first output comes first in the plan either way.
  const std::vector<uint32_t>& first = model.first_output_plan;
  const runtime::PlanStats& stats = impl_->executor.plan(shape, first);
  // Callers index a classifier's result as (N, classes); a graph that
  // computes any other shape (a corrupt file that still passes the
  // structural checks) is refused rather than handed over.
  const runtime::Shape& out_shape = stats.output_shapes[0];
  const int classes = impl_->model->num_classes();
  if (model.kind == ModelKind::kClassifier &&
      (out_shape.size() != 2 || out_shape[0] != shape[0] || out_shape[1] != classes)) {
    throw Error("the model computes an output of shape " + runtime::to_string(out_shape) +
                ", not (" + std::to_string(shape[0]) + ", " + std::to_string(classes) +
                ") for its " + std::to_string(classes) + " classes");
  }
  const float* out = impl_->executor.run(input, shape, first)[0];
  return {out, static_cast<size_t>(runtime::element_count(out_shape))};
}

std::vector<Output> Session::run_all(const float* input, std::span<const int64_t> shape,
                                     const std::vector<std::string>& select) {
  const Model::Impl& model = model_impl(*impl_->model);
  const std::vector<uint32_t> values = model.select_outputs(select);
  const std::vector<uint32_t> planned = model.planned_outputs(values);
  const runtime::PlanStats& stats = impl_->executor.plan(shape, planned);
  const std::span<const float* const> data = impl_->executor.run(input, shape, planned);
  std::vector<Output> out;
  for (uint32_t v : values) {
    const auto i =
        static_cast<size_t>(std::find(planned.begin(), planned.end(), v) - planned.begin());
    const runtime::Shape& s = stats.output_shapes[i];
    out.push_back(
        {model.output_name(v), s, {data[i], static_cast<size_t>(runtime::element_count(s))}});
  }
  return out;
}

std::vector<OutputShape> Session::output_shapes(std::span<const int64_t> input_shape,
                                                const std::vector<std::string>& select) const {
  const Model::Impl& model = model_impl(*impl_->model);
  const std::vector<uint32_t> values = model.select_outputs(select);
  const std::vector<runtime::Shape> shapes =
      runtime::infer_shapes(*model.graph, runtime::Shape(input_shape.begin(), input_shape.end()));
  std::vector<OutputShape> out;
  for (uint32_t v : values) out.push_back({model.output_name(v), shapes[v]});
  return out;
}

namespace {

void check_holds_its_shape(const Tensor& input) {
  int64_t n = 1;
  for (int64_t d : input.shape) n *= d;
  if (input.shape.empty() || n != static_cast<int64_t>(input.data.size())) {
    throw Error("input tensor holds " + std::to_string(input.data.size()) + " values, its shape " +
                runtime::to_string(input.shape) + " needs " + std::to_string(n));
  }
}

// A copy of a node output; the runtime keeps feature maps channels-last
// (N, H, W, C), the caller gets them NCHW.
Tensor copy_out(const float* data, const runtime::Shape& shape) {
  Tensor t;
  const auto count = static_cast<size_t>(runtime::element_count(shape));
  if (shape.size() != 4) {
    t.shape = shape;
    t.data.assign(data, data + count);
    return t;
  }
  const int64_t n = shape[0], h = shape[1], w = shape[2], c = shape[3];
  t.shape = {n, c, h, w};
  t.data.resize(count);
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t y = 0; y < h; ++y) {
      for (int64_t x = 0; x < w; ++x) {
        const float* src = data + ((b * h + y) * w + x) * c;
        for (int64_t k = 0; k < c; ++k) {
          t.data[static_cast<size_t>(((b * c + k) * h + y) * w + x)] = src[k];
        }
      }
    }
  }
  return t;
}

// What a profile calls node k: its op, or the fusion it ran in (whose
// time counts at the chain's last node).
std::string profile_kind(const runtime::Executor& executor, const std::vector<runtime::Node>& nodes,
                         size_t k) {
  const std::string* fused = executor.fused_kind(k);
  return fused != nullptr ? *fused : runtime::op_name(nodes[k].op);
}

}  // namespace

std::vector<Tensor> Session::capture(const Tensor& input, const std::vector<std::string>& nodes) {
  check_holds_its_shape(input);
  const auto& graph_nodes = model_impl(*impl_->model).graph->nodes();
  std::vector<size_t> wanted;  // node index per request
  for (const std::string& name : nodes) {
    const auto it = std::find_if(graph_nodes.begin(), graph_nodes.end(),
                                 [&](const runtime::Node& n) { return n.name == name; });
    if (it == graph_nodes.end()) {
      throw Error("the model has no node named '" + name +
                  "' (`ravlt inspect --nodes` lists them)");
    }
    wanted.push_back(static_cast<size_t>(it - graph_nodes.begin()));
  }
  std::vector<Tensor> out(nodes.size());
  impl_->executor.run_observed(input.data.data(), input.shape,
                               [&](size_t node, const float* data, const runtime::Shape& shape) {
                                 for (size_t i = 0; i < wanted.size(); ++i) {
                                   if (wanted[i] == node) out[i] = copy_out(data, shape);
                                 }
                               });
  return out;
}

Tensor Session::run(const Tensor& input) {
  check_holds_its_shape(input);
  Tensor result;
  const Model::Impl& model = model_impl(*impl_->model);
  // The shape first: planning after the run would wait for a packing it
  // started (SessionOptions::defer_packing).
  result.shape = impl_->executor.plan(input.shape, model.first_output_plan).output_shapes[0];
  const std::span<const float> out = run(input.data.data(), input.shape);
  result.data.assign(out.begin(), out.end());
  return result;
}

std::vector<OpProfile> Session::profile() const {
  const auto& nodes = model_impl(*impl_->model).graph->nodes();
  const std::vector<double>& seconds = impl_->executor.node_seconds();
  std::vector<OpProfile> kinds;
  for (size_t k = 0; k < nodes.size(); ++k) {
    const std::string name = profile_kind(impl_->executor, nodes, k);
    auto it =
        std::find_if(kinds.begin(), kinds.end(), [&](const OpProfile& p) { return p.op == name; });
    if (it == kinds.end()) it = kinds.insert(kinds.end(), OpProfile{name, 0.0, 0});
    it->seconds += k < seconds.size() ? seconds[k] : 0.0;
    ++it->nodes;
  }
  std::sort(kinds.begin(), kinds.end(),
            [](const OpProfile& a, const OpProfile& b) { return a.seconds > b.seconds; });
  return kinds;
}

std::vector<NodeProfile> Session::node_profile() const {
  const auto& nodes = model_impl(*impl_->model).graph->nodes();
  const std::vector<double>& seconds = impl_->executor.node_seconds();
  std::vector<NodeProfile> out;
  out.reserve(nodes.size());
  for (size_t k = 0; k < nodes.size(); ++k) {
    out.push_back({nodes[k].name, profile_kind(impl_->executor, nodes, k),
                   k < seconds.size() ? seconds[k] : 0.0});
  }
  return out;
}

CopyProfile Session::copy_profile() const {
  return {impl_->executor.input_copy_seconds(), impl_->executor.output_copy_seconds()};
}

DeferredPacking Session::deferred_packing() const {
  const runtime::Executor::DeferredPacking& d = impl_->executor.deferred_packing();
  return {d.done, d.seconds, d.waited_seconds, d.error};
}

PlanMemory Session::plan(std::span<const int64_t> shape) {
  // Every named output, as run_all() computes them by default: the same
  // plan, so that planning ahead saves the first run_all() its planning.
  // (The graph's declared outputs are only the first for a classifier.)
  const Model::Impl& model = model_impl(*impl_->model);
  const runtime::PlanStats& s =
      impl_->executor.plan(shape, model.planned_outputs(model.output_values));
  return {s.arena_bytes, s.activation_bytes, s.scratch_bytes,
          s.lower_bound, s.output_bytes,     s.image_by_image_nodes};
}

}  // namespace ravlt
