// ravlt::describe_model and the inspect report.
#include <cstdio>

#include "engine/src/json_writer.h"
#include "formats/dtype.h"
#include "formats/rvlt/graph_checks.h"
#include "formats/rvlt/model_file.h"
#include "ravlt/error.h"
#include "ravlt/model_info.h"

namespace ravlt {
namespace {

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

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
  return "head";
}

std::string ops_text(const std::map<std::string, int>& ops) {
  std::string s;
  for (const auto& [op, n] : ops) s += (s.empty() ? "" : ", ") + std::to_string(n) + " " + op;
  return s;
}

}  // namespace

ModelInfo describe_model(const std::string& path, bool verify_checksum) {
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
  return info;
}

std::string ModelInfo::to_text() const {
  std::string t;
  t += "model         " + path + " (" + fmt("%.1f MB", static_cast<double>(file_bytes) / 1e6) +
       ", format " + std::to_string(format_major) + "." + std::to_string(format_minor) + ", " +
       producer + " " + producer_version + ")\n";
  t += "source        " + source_file +
       (source_state_dict.empty() ? "" : " [" + source_state_dict + "]") + "\n";
  t += "source sha256 " + source_sha256 + "\n";
  t += "variant       " + variant + "\n";
  t += "parameters    " + fmt("%.2f M", static_cast<double>(source_parameters) / 1e6) +
       " in the checkpoint (" + std::to_string(source_parameters) + "), " +
       fmt("%.2f M", static_cast<double>(stored_parameters) / 1e6) + " stored after folding\n";
  t += "weights       " + weight_dtype + ", " +
       fmt("%.1f MB", static_cast<double>(weight_bytes) / 1e6) + "\n";
  t += "input         " + std::to_string(in_channels) + " channels, any height and width\n";
  t += "preprocess    resize " + std::to_string(resize) + " (" + interpolation + "), crop " +
       std::to_string(crop_h) + "x" + std::to_string(crop_w) + ", mean";
  for (float v : mean) t += fmt(" %.4g", v);
  t += ", std";
  for (float v : std) t += fmt(" %.4g", v);
  t += "\n";
  t += "classes       " + std::to_string(num_classes);
  if (!labels.empty()) t += " (" + labels.front() + ", ..., " + labels.back() + ")";
  t += "\ngraph         " + std::to_string(nodes) + " nodes, " + std::to_string(tensors) +
       " tensors\n\n";
  t += "stage  dim  depth  heads x dim  ffn    layer scale  attention  nodes\n";
  auto group = [&](const std::string& name) {
    auto it = other_ops.find(name);
    if (it != other_ops.end()) t += "  " + name + ": " + ops_text(it->second) + "\n";
  };
  for (size_t s = 0; s < stages.size(); ++s) {
    const StageInfo& st = stages[s];
    char line[160];
    std::snprintf(line, sizeof line, "%-6zu %-4d %-6d %2d x %-7d %-6d %-12s %-10s ", s + 1, st.dim,
                  st.depth, st.heads, st.head_dim, st.ffn_hidden, st.layer_scale ? "yes" : "no",
                  st.attention.c_str());
    t += line + ops_text(st.ops) + "\n";
  }
  t += "\nother nodes (stem width " + std::to_string(stem_hidden) + ", projection " +
       std::to_string(projection) + "):\n";
  group("input");
  group("patch_embed");
  group("head");
  return t;
}

std::string ModelInfo::to_json() const {
  engine::JsonWriter j;
  j.begin_object();
  j.key("path").value(path).key("file_bytes").value(file_bytes);
  j.key("format_version").value(std::to_string(format_major) + "." + std::to_string(format_minor));
  j.key("producer").value(producer).key("producer_version").value(producer_version);
  j.key("source_file").value(source_file).key("source_sha256").value(source_sha256);
  j.key("source_state_dict").value(source_state_dict);
  j.key("weight_dtype").value(weight_dtype).key("weight_bytes").value(weight_bytes);
  j.key("variant").value(variant);
  j.key("in_channels").value(in_channels).key("stem_hidden").value(stem_hidden);
  j.key("projection").value(projection).key("num_classes").value(num_classes);
  j.key("source_parameters").value(source_parameters);
  j.key("stored_parameters").value(stored_parameters);
  j.key("stages").begin_array();
  for (const StageInfo& s : stages) {
    j.begin_object();
    j.key("dim").value(s.dim).key("depth").value(s.depth).key("heads").value(s.heads);
    j.key("head_dim").value(s.head_dim).key("ffn_hidden").value(s.ffn_hidden);
    j.key("layer_scale").value(s.layer_scale).key("attention").value(s.attention);
    j.key("ops").begin_object();
    for (const auto& [op, n] : s.ops) j.key(op).value(n);
    j.end_object().end_object();
  }
  j.end_array();
  j.key("other_ops").begin_object();
  for (const auto& [group, ops] : other_ops) {
    j.key(group).begin_object();
    for (const auto& [op, n] : ops) j.key(op).value(n);
    j.end_object();
  }
  j.end_object();
  j.key("preprocess").begin_object();
  j.key("resize").value(resize).key("crop_h").value(crop_h).key("crop_w").value(crop_w);
  j.key("interpolation").value(interpolation);
  j.key("mean").begin_array();
  for (float v : mean) j.value(static_cast<double>(v));
  j.end_array().key("std").begin_array();
  for (float v : std) j.value(static_cast<double>(v));
  j.end_array().end_object();
  j.key("nodes")
      .value(static_cast<uint64_t>(nodes))
      .key("tensors")
      .value(static_cast<uint64_t>(tensors));
  j.key("labels").begin_array();
  for (const std::string& l : labels) j.value(l);
  j.end_array();
  j.end_object();
  return j.str() + "\n";
}

}  // namespace ravlt
