// ravlt::convert_checkpoint: checkpoint -> config -> folded graph -> .rvlt.
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "engine/src/graph_builder.h"
#include "engine/src/ravlt_config.h"
#include "formats/file_digest.h"
#include "formats/rvlt/model_file.h"
#include "formats/torch/checkpoint.h"
#include "formats/torch/state_dict.h"
#include "ravlt/convert.h"
#include "ravlt/error.h"

#ifndef RAVLT_VERSION
#error "RAVLT_VERSION must be defined by the build"
#endif

namespace ravlt {
namespace {

// The state dict of a whole detector or segmentor (mmcv's layout): keys
// "backbone.*", "neck.*", "rpn_head.*", "decode_head.*", ...
bool is_detector_layout(const torch::StateDict& state) {
  for (const torch::NamedTensor& t : state.tensors) {
    if (t.name.rfind("backbone.", 0) == 0) return true;
  }
  return false;
}

// Keeps the backbone's tensors (prefix removed) and counts the rest by
// their first name component, in the checkpoint's order.
std::vector<torch::NamedTensor> backbone_tensors(
    const std::string& path, const torch::StateDict& state,
    std::vector<std::pair<std::string, size_t>>& left_out) {
  std::vector<torch::NamedTensor> kept;
  bool ravlt_keys = false;
  for (const torch::NamedTensor& t : state.tensors) {
    if (t.name.rfind("backbone.", 0) == 0) {
      kept.push_back({t.name.substr(9), t.tensor});
      const std::string& key = kept.back().name;
      ravlt_keys = ravlt_keys || key.rfind("patch_embed.", 0) == 0 ||
                   (key.rfind("layers.", 0) == 0 && key.find(".blocks.") != std::string::npos);
      continue;
    }
    const std::string part = t.name.substr(0, t.name.find('.'));
    auto it = std::find_if(left_out.begin(), left_out.end(),
                           [&](const auto& p) { return p.first == part; });
    if (it == left_out.end()) it = left_out.insert(left_out.end(), {part, 0});
    ++it->second;
  }
  if (!ravlt_keys) {
    throw Error(path + ": the backbone is not a RAVLT (no patch_embed / layers.N.blocks keys)");
  }
  return kept;
}

// The stages a backbone outputs: sorted, each once, each a stage.
std::vector<int> output_stages(const std::vector<int>& requested, size_t stages) {
  std::vector<int> out = requested;
  if (out.empty()) {
    for (size_t s = 0; s < stages; ++s) out.push_back(static_cast<int>(s));
  }
  std::sort(out.begin(), out.end());
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] < 0 || out[i] >= static_cast<int>(stages)) {
      throw Error("out indices: " + std::to_string(out[i]) + " is not a stage index (0 to " +
                  std::to_string(stages - 1) + ")");
    }
    if (i > 0 && out[i] == out[i - 1]) {
      throw Error("out indices: " + std::to_string(out[i]) + " is given twice");
    }
  }
  return out;
}

std::unique_ptr<fb::MetadataT> make_metadata(const engine::ArchSpec& arch,
                                             const ConvertOptions& options,
                                             const std::string& checkpoint,
                                             const std::string& sha256, const std::string& entry,
                                             const std::vector<std::string>& dataset_classes) {
  auto m = std::make_unique<fb::MetadataT>();
  m->producer = "ravlt";
  m->producer_version = RAVLT_VERSION;
  m->source_file = std::filesystem::path(checkpoint).filename().string();
  m->source_sha256 = sha256;
  m->source_state_dict = entry;
  m->weight_dtype = rvlt::to_fb_dtype(options.weight_type);
  m->kind = arch.backbone ? fb::ModelKind_Backbone : fb::ModelKind_Classifier;
  m->dataset_classes = dataset_classes;

  m->arch = std::make_unique<fb::ArchConfigT>();
  fb::ArchConfigT& a = *m->arch;
  a.variant = arch.variant;
  a.in_channels = arch.in_channels;
  a.stem_hidden = arch.stem_hidden;
  a.projection_dim = arch.projection;
  a.num_classes = arch.num_classes;
  a.parameter_count = arch.parameter_count;
  for (const engine::StageSpec& s : arch.stages) {
    auto st = std::make_unique<fb::StageConfigT>();
    st->dim = s.dim;
    st->depth = s.depth;
    st->heads = s.heads;
    st->head_dim = s.head_dim;
    st->ffn_hidden = s.ffn_hidden;
    st->layer_scale = s.layer_scale;
    st->attention = s.attention == engine::AttentionKind::kRala ? fb::AttentionKind_Rala
                                                                : fb::AttentionKind_Softmax;
    a.stages.push_back(std::move(st));
  }

  if (arch.backbone) {
    if (!options.labels.empty()) {
      throw Error(
          "labels: a backbone has no classes to name (the dataset's class names come "
          "from the checkpoint's meta)");
    }
  } else if (!options.labels.empty()) {
    if (options.labels.size() != static_cast<size_t>(arch.num_classes)) {
      throw Error("labels: " + std::to_string(options.labels.size()) +
                  " names given for a head with " + std::to_string(arch.num_classes) + " classes");
    }
    m->labels = options.labels;
  } else if (arch.num_classes == static_cast<int>(imagenet_labels().size())) {
    m->labels = imagenet_labels();
  } else {
    for (int i = 0; i < arch.num_classes; ++i) m->labels.push_back("class_" + std::to_string(i));
  }

  // A classifier is evaluated at its crop; a backbone takes the image as it
  // comes unless told otherwise.
  const int resize = options.resize.value_or(arch.backbone ? 0 : 256);
  const int crop = options.crop.value_or(arch.backbone ? 0 : 224);
  if (resize < 0 || crop < 0 || (!arch.backbone && (resize == 0 || crop == 0))) {
    throw Error("resize and crop must be positive");
  }
  if (resize > 0 && crop > resize) {
    throw Error("crop " + std::to_string(crop) + " is larger than resize " +
                std::to_string(resize));
  }
  for (float s : options.std) {
    if (!(s > 0.0f)) throw Error("std values must be positive");
  }
  if (arch.in_channels != 3) {
    throw Error("the model takes " + std::to_string(arch.in_channels) +
                " input channels; preprocessing metadata is defined for RGB (3)");
  }
  m->preprocess = std::make_unique<fb::PreprocessT>();
  m->preprocess->resize = resize;
  m->preprocess->crop_h = m->preprocess->crop_w = crop;
  m->preprocess->interpolation = fb::Interpolation_Bicubic;
  m->preprocess->mean.assign(options.mean.begin(), options.mean.end());
  m->preprocess->std.assign(options.std.begin(), options.std.end());
  return m;
}

}  // namespace

DType parse_weight_type(std::string_view text) {
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    if (text == dtype_short_name(t)) return t;
  }
  throw Error("weight type '" + std::string(text) + "' is not fp32, fp16 or bf16");
}

ConvertResult convert_checkpoint(const std::string& checkpoint, const std::string& output,
                                 const ConvertOptions& options) {
  auto progress = [&](std::string_view phase, double fraction) {
    if (options.progress) options.progress(phase, fraction);
  };
  const std::vector<engine::AttentionKind> attention =
      options.attention.empty() ? std::vector<engine::AttentionKind>{}
                                : engine::parse_attention_kinds(options.attention);

  const std::string sha256 = sha256_file_hex(checkpoint, [&](uint64_t done, uint64_t total) {
    progress("hashing", static_cast<double>(done) / static_cast<double>(total));
  });
  progress("parsing", 0.0);
  const auto ckpt = torch::Checkpoint::open(checkpoint);
  const torch::StateDict state = torch::extract_state_dict(*ckpt, options.state_dict_entry);
  const torch::MmcvMeta meta = torch::read_mmcv_meta(*ckpt);
  std::vector<std::pair<std::string, size_t>> left_out;
  const std::vector<torch::NamedTensor> tensors =
      is_detector_layout(state) ? backbone_tensors(checkpoint, state, left_out) : state.tensors;

  engine::WeightMap weights;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const torch::NamedTensor& t = tensors[i];
    engine::HostTensor h;
    h.shape = t.tensor->sizes;
    try {
      h.data = ckpt->to_float32(*t.tensor);
    } catch (const Error& e) {
      throw Error(std::string(e.what()) + " (key '" + t.name + "')");
    }
    if (!weights.emplace(t.name, std::move(h)).second) {
      throw Error(checkpoint + ": key '" + t.name + "' appears twice");
    }
    progress("reading", static_cast<double>(i + 1) / static_cast<double>(tensors.size()));
  }

  engine::ArchSpec arch;
  try {
    arch = engine::infer_arch(weights, attention);
  } catch (const Error& e) {
    throw Error(checkpoint + ": " + e.what());
  }
  if (!arch.backbone && !options.out_indices.empty()) {
    throw Error(checkpoint + ": out indices select a backbone's outputs; this is a classifier");
  }
  const std::vector<int> out_indices =
      arch.backbone ? output_stages(options.out_indices, arch.stages.size()) : std::vector<int>{};
  std::unique_ptr<fb::MetadataT> metadata =
      make_metadata(arch, options, checkpoint, sha256, state.source, meta.classes);
  progress("folding", 0.0);
  engine::BuiltGraph built = engine::build_graph(arch, weights, options.weight_type, out_indices);

  fb::ModelT model;
  model.metadata = std::move(metadata);
  model.graph = std::move(built.graph);
  rvlt::write_model_file(output, model, built.constant_bytes, [&](uint64_t done, uint64_t total) {
    progress("writing", static_cast<double>(done) / static_cast<double>(total));
  });

  ConvertResult r;
  r.variant = arch.variant;
  r.state_dict_entry = state.source;
  r.stripped_module_prefix = state.stripped_module_prefix;
  r.source_parameters = arch.parameter_count;
  for (const auto& t : model.graph->tensors) {
    if (!t->constant) continue;
    uint64_t n = 1;
    for (int64_t d : t->shape) n *= static_cast<uint64_t>(d);
    r.stored_parameters += n;
  }
  r.file_bytes = std::filesystem::file_size(output);

  r.source_file = std::filesystem::path(checkpoint).filename().string();
  r.container = ckpt->container();
  r.output = output;
  for (const engine::StageSpec& s : arch.stages) {
    r.dims.push_back(s.dim);
    r.depths.push_back(s.depth);
    r.heads.push_back(s.heads);
    r.attention += (r.attention.empty() ? "" : ",") +
                   std::string(s.attention == engine::AttentionKind::kRala ? "l" : "v");
  }
  r.num_classes = arch.num_classes;
  r.weight_type = options.weight_type;
  r.kind = arch.backbone ? "backbone" : "classifier";
  r.framework = meta.framework;
  r.left_out = std::move(left_out);
  r.dataset_classes = meta.classes.size();
  if (arch.backbone) {
    for (int i : out_indices) r.outputs.push_back(engine::stage_output_name(i));
  } else {
    r.outputs = {"logits", "embedding"};
  }
  return r;
}

}  // namespace ravlt
