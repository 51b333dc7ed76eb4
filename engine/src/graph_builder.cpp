#include "engine/src/graph_builder.h"

#include <algorithm>

#include "base/half_float.h"
#include "engine/src/folding.h"
#include "formats/rvlt/model_file.h"
#include "ravlt/error.h"

namespace ravlt::engine {
namespace {

constexpr int64_t kDynamic = -1;  // a size known only at run time
constexpr float kBatchNormEpsilon = 1e-5f;
constexpr float kLayerNormEpsilon = 1e-6f;

// Appends tensors and nodes to a graph under construction.
class GraphWriter {
 public:
  GraphWriter(BuiltGraph& out, WeightMap& weights, DType weight_dtype)
      : out_(out), weights_(weights), dtype_(weight_dtype) {
    out_.graph = std::make_unique<fb::GraphT>();
  }

  HostTensor& weight(const std::string& key) {
    auto it = weights_.find(key);
    if (it == weights_.end()) throw Error("state dict: missing key '" + key + "'");
    return it->second;
  }

  // Stores `t` as a constant named `name`; 1x1 convolution weights become
  // (O, I) matrices when `as_matrix` is set.
  uint32_t constant(const std::string& name, const HostTensor& t, bool as_matrix = false,
                    bool keep_float32 = false) {
    auto tensor = std::make_unique<fb::TensorT>();
    tensor->name = name;
    tensor->constant = true;
    tensor->shape = t.shape;
    if (as_matrix) tensor->shape = {t.shape.at(0), static_cast<int64_t>(t.numel()) / t.shape.at(0)};
    const DType dtype = keep_float32 ? DType::kFloat32 : dtype_;
    tensor->dtype = rvlt::to_fb_dtype(dtype);
    std::vector<uint8_t> bytes(t.numel() * dtype_size(dtype));
    convert_from_float32(dtype, t.data.data(), bytes.data(), t.numel());
    return add(std::move(tensor), std::move(bytes));
  }

  uint32_t activation(const std::string& name, std::vector<int64_t> shape) {
    auto tensor = std::make_unique<fb::TensorT>();
    tensor->name = name;
    tensor->dtype = fb::DType_Float32;
    tensor->shape = std::move(shape);
    return add(std::move(tensor), {});
  }

  // Adds a node whose output is a new activation of `channels` channels in
  // (N, H, W, C), named after the node.
  uint32_t node(const std::string& name, fb::OpType op, std::vector<uint32_t> inputs,
                fb::OpAttrsUnion attrs, std::vector<int64_t> out_shape) {
    const uint32_t out = activation(name + ":0", std::move(out_shape));
    auto n = std::make_unique<fb::NodeT>();
    n->name = name;
    n->op = op;
    n->inputs = std::move(inputs);
    n->outputs = {out};
    n->attrs = std::move(attrs);
    out_.graph->nodes.push_back(std::move(n));
    return out;
  }

  static std::vector<int64_t> nhwc(int64_t c) { return {kDynamic, kDynamic, kDynamic, c}; }

  uint32_t conv(const std::string& name, uint32_t x, const HostTensor& w, const HostTensor& b,
                int stride, int groups, fb::Activation act) {
    fb::Conv2dAttrsT a;
    a.kernel_h = static_cast<int>(w.dim(2));
    a.kernel_w = static_cast<int>(w.dim(3));
    a.stride_h = a.stride_w = stride;
    a.pad_h = a.kernel_h / 2;
    a.pad_w = a.kernel_w / 2;
    a.groups = groups;
    a.activation = act;
    fb::OpAttrsUnion attrs;
    attrs.Set(std::move(a));
    const uint32_t wi = constant(name + ".weight", w);
    const uint32_t bi = constant(name + ".bias", b);
    return node(name, fb::OpType_Conv2d, {x, wi, bi}, std::move(attrs), nhwc(w.dim(0)));
  }

  uint32_t linear(const std::string& name, uint32_t x, const HostTensor& w, const HostTensor& b,
                  fb::Activation act, std::optional<uint32_t> residual = std::nullopt) {
    fb::LinearAttrsT a;
    a.activation = act;
    fb::OpAttrsUnion attrs;
    attrs.Set(std::move(a));
    std::vector<uint32_t> inputs = {x, constant(name + ".weight", w, /*as_matrix=*/true),
                                    constant(name + ".bias", b)};
    if (residual) inputs.push_back(*residual);
    return node(name, fb::OpType_Linear, std::move(inputs), std::move(attrs), nhwc(w.dim(0)));
  }

  uint32_t layer_norm(const std::string& name, uint32_t x, int64_t channels) {
    fb::LayerNormAttrsT a;
    a.epsilon = kLayerNormEpsilon;
    fb::OpAttrsUnion attrs;
    attrs.Set(std::move(a));
    const uint32_t wi = constant(name + ".weight", weight(name + ".weight"));
    const uint32_t bi = constant(name + ".bias", weight(name + ".bias"));
    return node(name, fb::OpType_LayerNorm, {x, wi, bi}, std::move(attrs), nhwc(channels));
  }

  BatchNorm batchnorm(const std::string& prefix) {
    return {&weight(prefix + ".weight"), &weight(prefix + ".bias"),
            &weight(prefix + ".running_mean"), &weight(prefix + ".running_var"), kBatchNormEpsilon};
  }

  // conv + BatchNorm folded, as one Conv2d node.
  uint32_t conv_bn(const std::string& conv_name, const std::string& bn_name, uint32_t x, int stride,
                   fb::Activation act) {
    HostTensor& w = weight(conv_name + ".weight");
    HostTensor& b = weight(conv_name + ".bias");
    fold_batchnorm(w, b, batchnorm(bn_name));
    return conv(conv_name, x, w, b, stride, 1, act);
  }

 private:
  uint32_t add(std::unique_ptr<fb::TensorT> tensor, std::vector<uint8_t> bytes) {
    auto& tensors = out_.graph->tensors;
    tensors.push_back(std::move(tensor));
    out_.constant_bytes.push_back(std::move(bytes));
    return static_cast<uint32_t>(tensors.size() - 1);
  }

  BuiltGraph& out_;
  WeightMap& weights_;
  DType dtype_;
};

uint32_t build_block(GraphWriter& g, const std::string& p, const StageSpec& st, uint32_t x,
                     uint32_t angle) {
  const int64_t c = st.dim;
  // x = x + pos(x): the identity folded into the depthwise kernel.
  HostTensor& pos_w = g.weight(p + "pos.weight");
  fold_identity_into_depthwise(pos_w);
  const uint32_t x1 =
      g.conv(p + "pos", x, pos_w, g.weight(p + "pos.bias"), 1, st.dim, fb::Activation_None);

  // x = x + gamma_1 * attn(norm1(x)): gamma folded into attn.proj.
  const uint32_t n1 = g.layer_norm(p + "norm1.norm", x1, c);
  const uint32_t qkvo = g.linear(p + "attn.qkvo", n1, g.weight(p + "attn.qkvo.weight"),
                                 g.weight(p + "attn.qkvo.bias"), fb::Activation_None);
  fb::ChannelSliceAttrsT slice;
  slice.begin = static_cast<int>(2 * c);
  slice.end = static_cast<int>(3 * c);
  fb::OpAttrsUnion slice_attrs;
  slice_attrs.Set(std::move(slice));
  const uint32_t v = g.node(p + "attn.v", fb::OpType_ChannelSlice, {qkvo}, std::move(slice_attrs),
                            GraphWriter::nhwc(c));
  const uint32_t lepe = g.conv(p + "attn.lepe", v, g.weight(p + "attn.lepe.weight"),
                               g.weight(p + "attn.lepe.bias"), 1, st.dim, fb::Activation_None);
  fb::AttentionAttrsT attn;
  attn.heads = st.heads;
  attn.head_dim = st.head_dim;
  fb::OpAttrsUnion attn_attrs;
  attn_attrs.Set(std::move(attn));
  const fb::OpType core =
      st.attention == AttentionKind::kRala ? fb::OpType_RalaAttention : fb::OpType_SoftmaxAttention;
  const uint32_t gated = g.node(p + "attn.core", core, {qkvo, lepe, angle}, std::move(attn_attrs),
                                GraphWriter::nhwc(c));
  HostTensor& proj_w = g.weight(p + "attn.proj.weight");
  HostTensor& proj_b = g.weight(p + "attn.proj.bias");
  if (st.layer_scale) fold_layer_scale(proj_w, proj_b, g.weight(p + "gamma_1"));
  const uint32_t x2 = g.linear(p + "attn.proj", gated, proj_w, proj_b, fb::Activation_None, x1);

  // x = x + gamma_2 * ffn(norm2(x)), with h + dwconv(h) folded.
  const uint32_t n2 = g.layer_norm(p + "norm2.norm", x2, c);
  const uint32_t h = g.linear(p + "ffn.fc1", n2, g.weight(p + "ffn.fc1.weight"),
                              g.weight(p + "ffn.fc1.bias"), fb::Activation_Gelu);
  HostTensor& dw_w = g.weight(p + "ffn.dwconv.weight");
  fold_identity_into_depthwise(dw_w);
  const uint32_t h2 = g.conv(p + "ffn.dwconv", h, dw_w, g.weight(p + "ffn.dwconv.bias"), 1,
                             st.ffn_hidden, fb::Activation_None);
  HostTensor& fc2_w = g.weight(p + "ffn.fc2.weight");
  HostTensor& fc2_b = g.weight(p + "ffn.fc2.bias");
  if (st.layer_scale) fold_layer_scale(fc2_w, fc2_b, g.weight(p + "gamma_2"));
  return g.linear(p + "ffn.fc2", h2, fc2_w, fc2_b, fb::Activation_None, x2);
}

}  // namespace

std::string stage_output_name(int index) {
  return "stage" + std::to_string(index + 1);
}

BuiltGraph build_graph(const ArchSpec& arch, WeightMap& weights, DType weight_dtype,
                       const std::vector<int>& out_indices) {
  BuiltGraph out;
  GraphWriter g(out, weights, weight_dtype);
  fb::GraphT& graph = *out.graph;

  const uint32_t input = g.activation("input", {kDynamic, arch.in_channels, kDynamic, kDynamic});
  graph.inputs = {input};
  uint32_t x = g.node("input.channels_last", fb::OpType_ToChannelsLast, {input}, {},
                      GraphWriter::nhwc(arch.in_channels));

  // Patch embedding: four 3x3 convolutions, BatchNorm folded, GELU fused.
  const int strides[4] = {2, 1, 1, 2};
  for (int i = 0; i < 4; ++i) {
    const std::string conv = "patch_embed.proj." + std::to_string(3 * i);
    const std::string bn = "patch_embed.proj." + std::to_string(3 * i + 1);
    x = g.conv_bn(conv, bn, x, strides[i], i < 3 ? fb::Activation_Gelu : fb::Activation_None);
  }

  // A backbone stops after the last stage it outputs.
  const size_t stages =
      arch.backbone ? static_cast<size_t>(out_indices.back()) + 1 : arch.stages.size();
  for (size_t s = 0; s < stages; ++s) {
    const std::string sp = "layers." + std::to_string(s) + ".";
    const uint32_t angle = g.constant(sp + "RoPE.angle", g.weight(sp + "RoPE.angle"),
                                      /*as_matrix=*/false, /*keep_float32=*/true);
    for (int j = 0; j < arch.stages[s].depth; ++j) {
      x = build_block(g, sp + "blocks." + std::to_string(j) + ".", arch.stages[s], x, angle);
    }
    const int index = static_cast<int>(s);
    if (arch.backbone &&
        std::find(out_indices.begin(), out_indices.end(), index) != out_indices.end()) {
      // The stage's output before its downsampling, LayerNorm over
      // channels, handed out NCHW.
      const std::string norm = "extra_norms." + std::to_string(s) + ".norm";
      const uint32_t normed = g.layer_norm(norm, x, arch.stages[s].dim);
      const std::string name = stage_output_name(index);
      const uint32_t map = g.node(name + ".channels_first", fb::OpType_ToChannelsFirst, {normed},
                                  {}, {kDynamic, arch.stages[s].dim, kDynamic, kDynamic});
      graph.tensors[map]->name = name;
      graph.outputs.push_back(map);
    }
    if (s + 1 < stages) {
      x = g.conv_bn(sp + "downsample.reduction", sp + "downsample.norm", x, 2, fb::Activation_None);
    }
  }
  if (arch.backbone) return out;

  // Head: 1x1 conv + BatchNorm (folded) + swish, mean over positions, classifier.
  HostTensor& proj_w = g.weight("proj.weight");
  HostTensor& proj_b = g.weight("proj.bias");
  fold_batchnorm(proj_w, proj_b, g.batchnorm("norm"));
  x = g.linear("proj", x, proj_w, proj_b, fb::Activation_Swish);
  x = g.node("pool", fb::OpType_GlobalAvgPool, {x}, {}, {kDynamic, arch.projection});
  graph.tensors[x]->name = "embedding";
  x = g.linear("head", x, g.weight("head.weight"), g.weight("head.bias"), fb::Activation_None);
  graph.tensors[x]->name = "logits";
  graph.tensors[x]->shape = {kDynamic, arch.num_classes};
  graph.outputs = {x};
  return out;
}

}  // namespace ravlt::engine
