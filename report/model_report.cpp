#include "report/model_report.h"

#include <cstdio>

#include "report/json_writer.h"

namespace ravlt::report {
namespace {

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string ops_text(const std::map<std::string, int>& ops) {
  std::string s;
  for (const auto& [op, n] : ops) s += (s.empty() ? "" : ", ") + std::to_string(n) + " " + op;
  return s;
}

}  // namespace

std::string model_info_text(const ModelInfo& info) {
  std::string t;
  t += "model         " + info.path + " (" +
       fmt("%.1f MB", static_cast<double>(info.file_bytes) / 1e6) + ", format " +
       std::to_string(info.format_major) + "." + std::to_string(info.format_minor) + ", " +
       info.producer + " " + info.producer_version + ")\n";
  t += "source        " + info.source_file +
       (info.source_state_dict.empty() ? "" : " [" + info.source_state_dict + "]") + "\n";
  t += "source sha256 " + info.source_sha256 + "\n";
  t += "variant       " + info.variant + "\n";
  t += "parameters    " + fmt("%.2f M", static_cast<double>(info.source_parameters) / 1e6) +
       " in the checkpoint (" + std::to_string(info.source_parameters) + "), " +
       fmt("%.2f M", static_cast<double>(info.stored_parameters) / 1e6) + " stored after folding\n";
  t += "weights       " + info.weight_dtype + ", " +
       fmt("%.1f MB", static_cast<double>(info.weight_bytes) / 1e6) + "\n";
  t += "input         " + std::to_string(info.in_channels) + " channels, any height and width\n";
  t +=
      "preprocess    " +
      (info.resize > 0 ? "resize " + std::to_string(info.resize) + " (" + info.interpolation + ")"
                       : std::string("no resize")) +
      (info.crop_h > 0 ? ", crop " + std::to_string(info.crop_h) + "x" + std::to_string(info.crop_w)
                       : std::string(", no crop")) +
      ", mean";
  for (float v : info.mean) t += fmt(" %.4g", v);
  t += ", std";
  for (float v : info.std) t += fmt(" %.4g", v);
  t += "\n";
  t += "kind          " + info.kind + "\n";
  if (info.kind == "classifier") {
    t += "classes       " + std::to_string(info.num_classes);
    if (!info.labels.empty()) {
      t += " (" + info.labels.front() + ", ..., " + info.labels.back() + ")";
    }
    t += "\n";
  }
  if (!info.dataset_classes.empty()) {
    t += "dataset       " + std::to_string(info.dataset_classes.size()) + " class names (" +
         info.dataset_classes.front() + ", ..., " + info.dataset_classes.back() + ")\n";
  }
  t += "outputs       at " + std::to_string(info.input_height) + "x" +
       std::to_string(info.input_width) + ":";
  for (size_t i = 0; i < info.outputs.size(); ++i) {
    std::string shape;
    for (int64_t d : info.outputs[i].shape)
      shape += (shape.empty() ? "" : ", ") + std::to_string(d);
    t += std::string(i == 0 ? " " : ", ") + info.outputs[i].name + " (" + shape + ")";
  }
  char work[96];
  std::snprintf(work, sizeof work, "\nwork          %.3f GMAC an image at %dx%d", info.macs / 1e9,
                info.input_height, info.input_width);
  t += work;
  t += "\ngraph         " + std::to_string(info.nodes) + " nodes, " + std::to_string(info.tensors) +
       " tensors\n\n";
  t += "stage  dim  depth  heads x dim  ffn    layer scale  attention  nodes\n";
  auto group = [&](const std::string& name) {
    auto it = info.other_ops.find(name);
    if (it != info.other_ops.end()) t += "  " + name + ": " + ops_text(it->second) + "\n";
  };
  for (size_t s = 0; s < info.stages.size(); ++s) {
    const StageInfo& st = info.stages[s];
    char line[160];
    std::snprintf(line, sizeof line, "%-6zu %-4d %-6d %2d x %-7d %-6d %-12s %-10s ", s + 1, st.dim,
                  st.depth, st.heads, st.head_dim, st.ffn_hidden, st.layer_scale ? "yes" : "no",
                  st.attention.c_str());
    t += line + ops_text(st.ops) + "\n";
  }
  t += "\nother nodes (stem width " + std::to_string(info.stem_hidden) +
       (info.kind == "classifier" ? ", projection " + std::to_string(info.projection) : "") +
       "):\n";
  group("input");
  group("patch_embed");
  group("head");
  group("outputs");
  return t;
}

std::string model_info_json(const ModelInfo& info) {
  JsonWriter j;
  j.begin_object();
  j.key("path").value(info.path).key("file_bytes").value(info.file_bytes);
  j.key("format_version")
      .value(std::to_string(info.format_major) + "." + std::to_string(info.format_minor));
  j.key("producer").value(info.producer).key("producer_version").value(info.producer_version);
  j.key("source_file").value(info.source_file).key("source_sha256").value(info.source_sha256);
  j.key("source_state_dict").value(info.source_state_dict);
  j.key("weight_dtype").value(info.weight_dtype).key("weight_bytes").value(info.weight_bytes);
  j.key("kind").value(info.kind).key("variant").value(info.variant);
  j.key("in_channels").value(info.in_channels).key("stem_hidden").value(info.stem_hidden);
  j.key("projection").value(info.projection).key("num_classes").value(info.num_classes);
  j.key("source_parameters").value(info.source_parameters);
  j.key("stored_parameters").value(info.stored_parameters);
  j.key("stages").begin_array();
  for (const StageInfo& s : info.stages) {
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
  for (const auto& [group, ops] : info.other_ops) {
    j.key(group).begin_object();
    for (const auto& [op, n] : ops) j.key(op).value(n);
    j.end_object();
  }
  j.end_object();
  j.key("preprocess").begin_object();
  j.key("resize")
      .value(info.resize)
      .key("crop_h")
      .value(info.crop_h)
      .key("crop_w")
      .value(info.crop_w);
  j.key("interpolation").value(info.interpolation);
  j.key("mean").begin_array();
  for (float v : info.mean) j.value(static_cast<double>(v));
  j.end_array().key("std").begin_array();
  for (float v : info.std) j.value(static_cast<double>(v));
  j.end_array().end_object();
  j.key("nodes")
      .value(static_cast<uint64_t>(info.nodes))
      .key("tensors")
      .value(static_cast<uint64_t>(info.tensors));
  j.key("labels").begin_array();
  for (const std::string& l : info.labels) j.value(l);
  j.end_array();
  j.key("dataset_classes").begin_array();
  for (const std::string& c : info.dataset_classes) j.value(c);
  j.end_array();
  j.key("input_size").begin_array().value(info.input_height).value(info.input_width).end_array();
  j.key("outputs").begin_array();
  for (const OutputInfo& o : info.outputs) {
    j.begin_object().key("name").value(o.name).key("shape").begin_array();
    for (int64_t d : o.shape) j.value(d);
    j.end_array().end_object();
  }
  j.end_array();
  j.key("macs").value(info.macs);
  j.end_object();
  return j.str() + "\n";
}

std::string conversion_summary(const ConvertResult& r) {
  auto joined = [](const std::vector<int>& values) {
    std::string s;
    for (int v : values) s += (s.empty() ? "" : "-") + std::to_string(v);
    return s;
  };
  auto listed = [](const std::vector<std::string>& names) {
    std::string s;
    for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
    return s;
  };
  std::string left_out;
  if (!r.left_out.empty()) {
    size_t tensors = 0;
    std::vector<std::string> parts;
    for (const auto& [part, count] : r.left_out) {
      parts.push_back(part);
      tensors += count;
    }
    left_out = " Left out " + listed(parts) + ": " + std::to_string(tensors) +
               " tensors not part of the backbone.";
  }
  const std::string what = r.kind == "backbone" ? "backbone with outputs " + listed(r.outputs)
                                                : std::to_string(r.num_classes) +
                                                      " classes, outputs " + listed(r.outputs);
  return "Converted " + r.source_file + " (" + r.container + " container, " +
         (r.state_dict_entry.empty() ? std::string("bare state dict")
                                     : "entry '" + r.state_dict_entry + "'") +
         (r.framework.empty() ? "" : ", " + r.framework) +
         (r.stripped_module_prefix ? ", 'module.' prefix removed" : "") + ") into " + r.output +
         ": " + r.variant + " " + r.kind + " with dims " + joined(r.dims) + ", depths " +
         joined(r.depths) + ", heads " + joined(r.heads) + ", attention " + r.attention + "; " +
         what +
         (r.dataset_classes > 0
              ? "; " + std::to_string(r.dataset_classes) + " dataset class names kept"
              : "") +
         "; " + fmt("%.2f M", static_cast<double>(r.source_parameters) / 1e6) + " parameters (" +
         fmt("%.2f M", static_cast<double>(r.stored_parameters) / 1e6) +
         " stored after folding BatchNorm and layer scale), " +
         std::string(dtype_name(r.weight_type)) + " weights, file size " +
         fmt("%.1f MB", static_cast<double>(r.file_bytes) / 1e6) + "." + left_out;
}

}  // namespace ravlt::report
