// ravlt::describe_model: what a model file holds, as data (report/ turns
// it into text and JSON).
#include <cstdio>

#include "engine/src/named_outputs.h"
#include "formats/rvlt/model_file.h"
#include "formats/rvlt/op_list.h"
#include "ravlt/dtype.h"
#include "ravlt/error.h"
#include "ravlt/model_info.h"
#include "runtime/op_work.h"
#include "runtime/shape_inference.h"

namespace ravlt {
namespace {

std::string str(const flatbuffers::String* s) {
  return s == nullptr ? "" : s->str();
}

// The stage a node belongs to, from its name: "layers.2.blocks.0.pos" -> 2.
int stage_of(const std::string& name) {
  if (name.rfind("layers.", 0) != 0) return -1;
  return std::atoi(name.c_str() + 7);
}

std::string group_of(const std::string& name) {
  if (name.rfind("patch_embed", 0) == 0) return "patch_embed";
  if (name.rfind("input", 0) == 0) return "input";
  // A backbone's output norms and layout changes.
  if (name.rfind("extra_norms", 0) == 0 || name.rfind("stage", 0) == 0) return "outputs";
  return "head";
}

}  // namespace

ModelInfo describe_model(const std::string& path, bool verify_checksum, int height, int width) {
  rvlt::OpenOptions options;
  options.verify_checksum = verify_checksum;
  const auto file = rvlt::ModelFile::open(path, options);
  const fb::Model& model = file->model();
  const fb::Metadata& m = file->metadata();
  const fb::ArchConfig& a = *m.arch();

  ModelInfo info;
  info.path = path;
  info.file_bytes = file->file_size();
  info.format_major = model.format_major();
  info.format_minor = model.format_minor();
  info.producer = str(m.producer());
  info.producer_version = str(m.producer_version());
  info.source_file = str(m.source_file());
  info.source_sha256 = str(m.source_sha256());
  info.source_state_dict = str(m.source_state_dict());
  info.weight_dtype = m.weight_dtype() >= fb::DType_MIN && m.weight_dtype() <= fb::DType_MAX
                          ? std::string(dtype_name(static_cast<DType>(m.weight_dtype())))
                          : "unknown";
  const ModelKind kind =
      m.kind() == fb::ModelKind_Backbone ? ModelKind::kBackbone : ModelKind::kClassifier;
  info.kind = to_string(kind);
  info.variant = str(a.variant());
  info.in_channels = a.in_channels();
  info.stem_hidden = a.stem_hidden();
  info.projection = a.projection_dim();
  info.num_classes = a.num_classes();
  info.source_parameters = a.parameter_count();
  info.weight_bytes = model.data_size();
  for (const fb::StageConfig* s : *a.stages()) {
    StageInfo st;
    st.dim = s->dim();
    st.depth = s->depth();
    st.heads = s->heads();
    st.head_dim = s->head_dim();
    st.ffn_hidden = s->ffn_hidden();
    st.layer_scale = s->layer_scale();
    st.attention = s->attention() == fb::AttentionKind_Rala ? "rala" : "softmax";
    info.stages.push_back(st);
  }
  const fb::Preprocess& p = *m.preprocess();
  info.resize = p.resize();
  info.crop_h = p.crop_h();
  info.crop_w = p.crop_w();
  info.interpolation = p.interpolation() == fb::Interpolation_Bicubic ? "bicubic" : "bilinear";
  info.mean.assign(p.mean()->begin(), p.mean()->end());
  info.std.assign(p.std()->begin(), p.std()->end());
  for (const auto* label : *m.labels()) info.labels.push_back(label->str());
  if (m.dataset_classes() != nullptr) {
    for (const auto* c : *m.dataset_classes()) info.dataset_classes.push_back(c->str());
  }

  const fb::Graph& g = file->graph();
  info.tensors = g.tensors()->size();
  info.nodes = g.nodes()->size();
  for (const fb::Tensor* t : *g.tensors()) {
    if (!t->constant()) continue;
    uint64_t n = 1;
    for (int64_t d : *t->shape()) n *= static_cast<uint64_t>(d);
    info.stored_parameters += n;
  }
  for (const fb::Node* n : *g.nodes()) {
    const std::string name = n->name()->str();
    const std::string op(rvlt::op_signature(n->op())->name);
    const int s = stage_of(name);
    if (s >= 0 && static_cast<size_t>(s) < info.stages.size()) {
      ++info.stages[static_cast<size_t>(s)].ops[op];
    } else {
      ++info.other_ops[group_of(name)][op];
    }
  }
  // The outputs' shapes at the size asked, by the runtime's own rules.
  if (height < 0 || width < 0) throw Error("input size must be positive");
  info.input_height = height > 0 ? height : (p.crop_h() > 0 ? p.crop_h() : 224);
  info.input_width = width > 0 ? width : (p.crop_w() > 0 ? p.crop_w() : 224);
  const auto graph = runtime::Graph::load(file);
  const std::vector<runtime::Shape> shapes =
      runtime::infer_shapes(*graph, {1, info.in_channels, info.input_height, info.input_width});
  const engine::NamedOutputs outputs = engine::named_outputs(kind, *graph);
  for (size_t i = 0; i < outputs.names.size(); ++i) {
    info.outputs.push_back({outputs.names[i], shapes[outputs.values[i]]});
  }
  for (const runtime::Node& node : graph->nodes()) info.macs += runtime::node_macs(node, shapes);
  return info;
}

}  // namespace ravlt
