#include "formats/rvlt/graph_checks.h"

#include <string>
#include <unordered_set>
#include <vector>

#include "formats/rvlt/model_file.h"
#include "formats/rvlt/op_list.h"
#include "ravlt/dtype.h"
#include "ravlt/error.h"

namespace ravlt::rvlt {
namespace {

std::string tensor_label(const fb::Graph& g, uint32_t index) {
  return "tensor " + std::to_string(index) + " '" + g.tensors()->Get(index)->name()->str() + "'";
}

std::string shape_string(const flatbuffers::Vector<int64_t>& shape) {
  std::string s = "(";
  for (uint32_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + ")";
}

void check_tensors(const fb::Graph& g, uint64_t data_size) {
  std::unordered_set<std::string_view> names;
  for (uint32_t i = 0; i < g.tensors()->size(); ++i) {
    const fb::Tensor& t = *g.tensors()->Get(i);
    const std::string label = tensor_label(g, i);
    if (!names.insert(t.name()->string_view()).second) throw Error(label + ": duplicate name");
    if (t.dtype() < fb::DType_MIN || t.dtype() > fb::DType_MAX) {
      throw Error(label + ": unknown dtype " + std::to_string(t.dtype()));
    }
    // FlatBuffers' verifier (2.0) checks a vector's length field, not the
    // alignment of its 8-byte elements; the mapping is page-aligned, so the
    // address tells whether the file placed them right.
    if (reinterpret_cast<uintptr_t>(t.shape()->data()) % alignof(int64_t) != 0) {
      throw Error(label + ": shape is misaligned in the file (corrupt metadata)");
    }
    if (t.shape()->size() > kMaxRank) {
      throw Error(label + ": rank " + std::to_string(t.shape()->size()) + " exceeds " +
                  std::to_string(kMaxRank));
    }
    uint64_t numel = 1;
    for (int64_t d : *t.shape()) {
      const int64_t lowest = t.constant() ? 0 : -1;  // -1: known at run time
      if (d < lowest || d > kMaxDim) {
        throw Error(label + ": invalid dimension in shape " + shape_string(*t.shape()));
      }
      if (d > 0 && numel > static_cast<uint64_t>(kMaxDim) / static_cast<uint64_t>(d)) {
        throw Error(label + ": element count of shape " + shape_string(*t.shape()) +
                    " is too large");
      }
      if (d >= 0) numel *= static_cast<uint64_t>(d);
    }
    if (!t.constant()) {
      if (t.data_length() != 0) throw Error(label + ": activation has data");
      if (t.dtype() != fb::DType_Float32) throw Error(label + ": activation is not float32");
      continue;
    }
    if (t.dtype() == fb::DType_Int64) throw Error(label + ": int64 constants are not supported");
    const uint64_t expected = numel * dtype_size(static_cast<DType>(t.dtype()));
    if (t.data_length() != expected) {
      throw Error(label + ": holds " + std::to_string(t.data_length()) + " bytes, shape " +
                  shape_string(*t.shape()) + " needs " + std::to_string(expected));
    }
    if (t.data_offset() % kDataAlignment != 0) {
      throw Error(label + ": data offset " + std::to_string(t.data_offset()) +
                  " is not 64-byte aligned");
    }
    if (t.data_offset() > data_size || t.data_length() > data_size - t.data_offset()) {
      throw Error(label + ": data [" + std::to_string(t.data_offset()) + ", +" +
                  std::to_string(t.data_length()) + ") lies outside the data section of " +
                  std::to_string(data_size) + " bytes");
    }
  }
}

const flatbuffers::Vector<int64_t>& shape_of(const fb::Graph& g, uint32_t i) {
  return *g.tensors()->Get(i)->shape();
}

void expect_shape(const fb::Graph& g, uint32_t tensor, std::initializer_list<int64_t> want,
                  const std::string& node_label) {
  const auto& got = shape_of(g, tensor);
  bool ok = got.size() == want.size();
  for (uint32_t i = 0; ok && i < got.size(); ++i) ok = got[i] == want.begin()[i];
  if (!ok) {
    std::string w = "(";
    for (size_t i = 0; i < want.size(); ++i) w += (i ? ", " : "") + std::to_string(want.begin()[i]);
    throw Error(node_label + ": " + tensor_label(g, tensor) + " has shape " + shape_string(got) +
                ", expected " + w + ")");
  }
}

// Checks the attributes and constant shapes of one node whose arity and
// attribute type already match its signature.
void check_node_operands(const fb::Graph& g, const fb::Node& n, const std::string& label) {
  const auto& in = *n.inputs();
  switch (n.op()) {
    case fb::OpType_Conv2d: {
      const auto& a = *n.attrs_as_Conv2dAttrs();
      if (a.kernel_h() <= 0 || a.kernel_w() <= 0 || a.stride_h() <= 0 || a.stride_w() <= 0 ||
          a.pad_h() < 0 || a.pad_w() < 0 || a.groups() <= 0) {
        throw Error(label + ": invalid kernel, stride, padding or groups");
      }
      // Padding beyond the kernel only adds zeros no tap reads; it would let
      // a file grow every feature map without bound.
      if (a.pad_h() >= a.kernel_h() || a.pad_w() >= a.kernel_w()) {
        throw Error(label + ": padding " + std::to_string(a.pad_h()) + "x" +
                    std::to_string(a.pad_w()) + " is not smaller than the kernel");
      }
      const auto& w = shape_of(g, in[1]);
      if (w.size() != 4 || w[0] % a.groups() != 0) {
        throw Error(label + ": weight shape " + shape_string(w) + " is not (O, I/groups, KH, KW)");
      }
      expect_shape(g, in[1], {w[0], w[1], a.kernel_h(), a.kernel_w()}, label);
      expect_shape(g, in[2], {w[0]}, label);
      break;
    }
    case fb::OpType_Linear: {
      const auto& w = shape_of(g, in[1]);
      if (w.size() != 2)
        throw Error(label + ": weight shape " + shape_string(w) + " is not (O, I)");
      expect_shape(g, in[2], {w[0]}, label);
      break;
    }
    case fb::OpType_LayerNorm: {
      const auto& w = shape_of(g, in[1]);
      if (w.size() != 1) throw Error(label + ": weight shape " + shape_string(w) + " is not (C)");
      expect_shape(g, in[2], {w[0]}, label);
      if (!(n.attrs_as_LayerNormAttrs()->epsilon() > 0.0f)) {
        throw Error(label + ": epsilon must be positive");
      }
      break;
    }
    case fb::OpType_ChannelSlice: {
      const auto& a = *n.attrs_as_ChannelSliceAttrs();
      if (a.begin() < 0 || a.end() <= a.begin()) throw Error(label + ": empty or negative slice");
      break;
    }
    case fb::OpType_RalaAttention:
    case fb::OpType_SoftmaxAttention: {
      const auto& a = *n.attrs_as_AttentionAttrs();
      if (a.heads() <= 0 || a.head_dim() <= 0 || a.head_dim() % 2 != 0) {
        throw Error(label + ": heads and an even head_dim must be positive");
      }
      expect_shape(g, in[2], {a.head_dim() / 2}, label);
      break;
    }
    default:
      break;
  }
}

void check_graph(const fb::Graph& g) {
  const uint32_t tensor_count = g.tensors()->size();
  std::vector<bool> defined(tensor_count, false);
  for (uint32_t i = 0; i < tensor_count; ++i) defined[i] = g.tensors()->Get(i)->constant();

  for (uint32_t index : *g.inputs()) {
    if (index >= tensor_count)
      throw Error("graph input index " + std::to_string(index) + " out of range");
    if (g.tensors()->Get(index)->constant()) {
      throw Error("graph input " + tensor_label(g, index) + " is a constant");
    }
    defined[index] = true;
  }
  for (uint32_t k = 0; k < g.nodes()->size(); ++k) {
    const fb::Node& n = *g.nodes()->Get(k);
    const std::string label = "node " + std::to_string(k) + " '" + n.name()->str() + "'";
    const OpSignature* sig = op_signature(n.op());
    if (sig == nullptr) throw Error(label + ": unknown op type " + std::to_string(n.op()));
    const uint32_t arity = n.inputs()->size();
    if (arity < sig->min_inputs || arity > sig->max_inputs) {
      throw Error(label + ": " + std::string(sig->name) + " takes " +
                  std::to_string(sig->min_inputs) + " to " + std::to_string(sig->max_inputs) +
                  " inputs, has " + std::to_string(arity));
    }
    if (n.outputs()->size() != 1) throw Error(label + ": must have exactly one output");
    if (n.attrs_type() != sig->attrs) {
      throw Error(label + ": attributes do not match op " + std::string(sig->name));
    }
    for (uint32_t i = 0; i < arity; ++i) {
      const uint32_t t = n.inputs()->Get(i);
      if (t >= tensor_count)
        throw Error(label + ": input index " + std::to_string(t) + " out of range");
      if (!defined[t])
        throw Error(label + ": input " + tensor_label(g, t) + " used before it is defined");
      const bool must_be_constant = (sig->constant_inputs >> i) & 1u;
      if (must_be_constant != g.tensors()->Get(t)->constant()) {
        throw Error(label + ": input " + std::to_string(i) + " (" + tensor_label(g, t) + ") must " +
                    (must_be_constant ? "" : "not ") + "be a constant");
      }
    }
    check_node_operands(g, n, label);
    for (uint32_t t : *n.outputs()) {
      if (t >= tensor_count)
        throw Error(label + ": output index " + std::to_string(t) + " out of range");
      if (defined[t]) throw Error(label + ": output " + tensor_label(g, t) + " is already defined");
      defined[t] = true;
    }
  }
  if (g.outputs()->size() == 0) throw Error("graph has no outputs");
  std::unordered_set<uint32_t> outputs;
  for (uint32_t index : *g.outputs()) {
    if (index >= tensor_count)
      throw Error("graph output index " + std::to_string(index) + " out of range");
    if (!outputs.insert(index).second) {
      throw Error("graph output " + tensor_label(g, index) + " is listed twice");
    }
    for (uint32_t input : *g.inputs()) {
      if (input == index) throw Error("graph output " + tensor_label(g, index) + " is the input");
    }
    if (!defined[index])
      throw Error("graph output " + tensor_label(g, index) + " is never computed");
    if (g.tensors()->Get(index)->constant()) {
      throw Error("graph output " + tensor_label(g, index) + " is a constant, not computed");
    }
  }
}

void check_metadata(const fb::Metadata& m, const fb::Graph& g) {
  const fb::ArchConfig& arch = *m.arch();
  if (arch.stages()->size() == 0) throw Error("metadata: architecture has no stages");
  const fb::Preprocess& p = *m.preprocess();
  if (m.kind() == fb::ModelKind_Classifier) {
    if (arch.num_classes() <= 0) throw Error("metadata: num_classes must be positive");
    if (m.labels()->size() != static_cast<uint32_t>(arch.num_classes())) {
      throw Error("metadata: " + std::to_string(m.labels()->size()) + " labels for " +
                  std::to_string(arch.num_classes()) + " classes");
    }
    if (g.outputs()->size() != 1) {
      throw Error("metadata: a classifier has one graph output (the logits), not " +
                  std::to_string(g.outputs()->size()));
    }
    if (p.resize() <= 0 || p.crop_h() <= 0 || p.crop_w() <= 0) {
      throw Error("metadata: preprocessing sizes must be positive");
    }
  } else if (m.kind() == fb::ModelKind_Backbone) {
    if (arch.num_classes() != 0 || m.labels()->size() != 0) {
      throw Error("metadata: a backbone has no classes or labels");
    }
    // Optional: no resize (0), and no crop (both 0) or a whole one.
    if (p.resize() < 0 || p.crop_h() < 0 || p.crop_w() < 0 ||
        (p.crop_h() == 0) != (p.crop_w() == 0)) {
      throw Error("metadata: preprocessing sizes must be positive, or 0 for none");
    }
  } else {
    throw Error("metadata: unknown model kind " + std::to_string(m.kind()));
  }
  const uint32_t channels = static_cast<uint32_t>(arch.in_channels());
  if (p.mean()->size() != channels || p.std()->size() != channels) {
    throw Error("metadata: preprocessing mean and std need one value per input channel");
  }
  for (float s : *p.std()) {
    if (!(s > 0.0f)) throw Error("metadata: preprocessing std must be positive");
  }
}

}  // namespace

void check_model(const fb::Model& model, uint64_t data_size) {
  check_tensors(*model.graph(), data_size);
  check_graph(*model.graph());
  check_metadata(*model.metadata(), *model.graph());
}

}  // namespace ravlt::rvlt
