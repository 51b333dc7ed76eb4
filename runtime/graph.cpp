#include "runtime/graph.h"

#include <cstring>

#include "base/half_float.h"
#include "ravlt/error.h"

namespace ravlt::runtime {

std::string to_string(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + ")";
}

int64_t element_count(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {

Activation activation_of(fb::Activation a) {
  switch (a) {
    case fb::Activation_None:
      return Activation::kNone;
    case fb::Activation_Gelu:
      return Activation::kGelu;
    case fb::Activation_Swish:
      return Activation::kSwish;
  }
  throw Error("unknown activation " + std::to_string(static_cast<int>(a)));
}

}  // namespace

std::shared_ptr<const Graph> Graph::from_parts(std::vector<Value> values, std::vector<Node> nodes,
                                               uint32_t input, std::vector<uint32_t> outputs) {
  auto g = std::make_shared<Graph>();
  g->values_ = std::move(values);
  g->nodes_ = std::move(nodes);
  g->input_ = input;
  g->outputs_ = std::move(outputs);
  return g;
}

int Graph::producer(uint32_t value) const {
  for (size_t k = 0; k < nodes_.size(); ++k) {
    if (nodes_[k].output == value) return static_cast<int>(k);
  }
  return -1;
}

std::shared_ptr<const Graph> Graph::load(std::shared_ptr<const rvlt::ModelFile> file) {
  auto g = std::make_shared<Graph>();
  g->file_ = file;
  const fb::Graph& fg = file->graph();
  if (fg.inputs()->size() != 1) {
    throw Error(file->path() + ": the runtime runs graphs with one input");
  }
  g->input_ = fg.inputs()->Get(0);
  g->outputs_.assign(fg.outputs()->begin(), fg.outputs()->end());  // checked: at least one

  for (uint32_t i = 0; i < fg.tensors()->size(); ++i) {
    const fb::Tensor& t = *fg.tensors()->Get(i);
    Value v;
    v.name = t.name()->str();
    v.constant = t.constant();
    v.shape.assign(t.shape()->begin(), t.shape()->end());
    if (v.constant) {
      const auto bytes = file->constant_bytes(i);
      const auto dtype = static_cast<DType>(t.dtype());
      const size_t n = static_cast<size_t>(element_count(v.shape));
      if (dtype == DType::kFloat32) {
        v.data = reinterpret_cast<const float*>(bytes.data());  // 64-byte aligned in the mapping
      } else {
        std::unique_ptr<float[]> wide(new float[n]);
        convert_to_float32(dtype, bytes.data(), wide.get(), n);
        v.data = wide.get();
        g->widened_bytes_ += n * sizeof(float);
        g->widened_.push_back(std::move(wide));
      }
    }
    g->values_.push_back(std::move(v));
  }

  for (const fb::Node* fn : *fg.nodes()) {
    Node n;
    n.name = fn->name()->str();
    n.op = static_cast<Op>(fn->op());
    n.inputs.assign(fn->inputs()->begin(), fn->inputs()->end());
    n.output = fn->outputs()->Get(0);
    switch (n.op) {
      case Op::kConv2d: {
        const auto& a = *fn->attrs_as_Conv2dAttrs();
        n.conv = {a.kernel_h(), a.kernel_w(), a.stride_h(), a.stride_w(),
                  a.pad_h(),    a.pad_w(),    a.groups()};
        n.activation = activation_of(a.activation());
        break;
      }
      case Op::kLinear:
        n.activation = activation_of(fn->attrs_as_LinearAttrs()->activation());
        break;
      case Op::kLayerNorm:
        n.epsilon = fn->attrs_as_LayerNormAttrs()->epsilon();
        break;
      case Op::kChannelSlice:
        n.slice_begin = fn->attrs_as_ChannelSliceAttrs()->begin();
        n.slice_end = fn->attrs_as_ChannelSliceAttrs()->end();
        break;
      case Op::kRalaAttention:
      case Op::kSoftmaxAttention:
        n.heads = fn->attrs_as_AttentionAttrs()->heads();
        n.head_dim = fn->attrs_as_AttentionAttrs()->head_dim();
        if (n.head_dim % 4 != 0) {
          throw Error(file->path() + ": node '" + n.name + "': head dimension " +
                      std::to_string(n.head_dim) + " is not a multiple of 4");
        }
        break;
      default:
        break;
    }
    g->nodes_.push_back(std::move(n));
  }
  return g;
}

const float* Graph::read_constant(uint32_t value) const {
  if (file_ != nullptr) file_->verify_constant(value);  // a value is its tensor's index
  return values_[value].data;
}

void Graph::check_file_unchanged() const {
  if (file_ != nullptr) file_->check_unchanged();
}

bool Graph::mapped_constant(uint32_t value) const {
  const Value& v = values_[value];
  if (file_ == nullptr || !v.constant || v.data == nullptr) return false;
  const auto* p = reinterpret_cast<const uint8_t*>(v.data);
  return p >= file_->mapping_begin() && p < file_->mapping_begin() + file_->file_size();
}

void Graph::release_constant(uint32_t value) const {
  const Value& v = values_[value];
  if (file_ == nullptr || !v.constant || v.data == nullptr) return;  // from_parts: no file
  // A widened copy lies outside the mapping, which release() ignores.
  file_->release(v.data, static_cast<size_t>(element_count(v.shape)) * sizeof(float));
}

}  // namespace ravlt::runtime
