#include "engine/src/ravlt_config.h"

#include <set>

#include "ravlt/error.h"

namespace ravlt::engine {
namespace {

const HostTensor& require(const WeightMap& w, const std::string& key) {
  auto it = w.find(key);
  if (it == w.end()) throw Error("state dict: missing key '" + key + "'");
  return it->second;
}

int dim_of(const WeightMap& w, const std::string& key, size_t axis, size_t rank) {
  const HostTensor& t = require(w, key);
  if (t.shape.size() != rank) {
    throw Error("state dict: key '" + key + "' has shape " + shape_string(t.shape) +
                ", expected rank " + std::to_string(rank));
  }
  if (t.shape[axis] <= 0 || t.shape[axis] > (int64_t{1} << 24)) {
    throw Error("state dict: key '" + key + "' has an implausible shape " + shape_string(t.shape));
  }
  return static_cast<int>(t.shape[axis]);
}

std::string stage_key(size_t s, const std::string& rest) {
  return "layers." + std::to_string(s) + "." + rest;
}

std::string block_key(size_t s, int j, const std::string& rest) {
  return stage_key(s, "blocks." + std::to_string(j) + "." + rest);
}

struct VariantTable {
  const char* name;
  std::vector<int> dims, depths, heads;
};

std::string variant_name(const ArchSpec& a) {
  static const VariantTable kVariants[] = {
      {"RAVLT-T", {64, 128, 256, 512}, {2, 2, 6, 2}, {1, 2, 4, 8}},
      {"RAVLT-S", {64, 128, 320, 512}, {3, 5, 9, 3}, {1, 2, 5, 8}},
      {"RAVLT-B", {96, 192, 384, 512}, {4, 6, 12, 6}, {1, 2, 6, 8}},
      {"RAVLT-L", {96, 192, 448, 640}, {4, 7, 19, 8}, {1, 2, 7, 10}},
  };
  if (a.stages.size() != 4 || (!a.backbone && a.projection != 1024) || a.in_channels != 3) {
    return "custom";
  }
  for (const VariantTable& v : kVariants) {
    bool match = true;
    for (size_t s = 0; s < 4 && match; ++s) {
      const StageSpec& st = a.stages[s];
      match = st.dim == v.dims[s] && st.depth == v.depths[s] && st.heads == v.heads[s] &&
              st.ffn_hidden == static_cast<int>(3.5 * st.dim) && st.layer_scale;
    }
    if (match) return v.name;
  }
  return "custom";
}

void add_batchnorm(std::vector<std::pair<std::string, std::vector<int64_t>>>& keys,
                   const std::string& prefix, int64_t channels) {
  for (const char* p : {"weight", "bias", "running_mean", "running_var"}) {
    keys.push_back({prefix + "." + p, {channels}});
  }
  keys.push_back({prefix + ".num_batches_tracked", {}});
}

}  // namespace

std::vector<AttentionKind> parse_attention_kinds(const std::string& text) {
  std::vector<AttentionKind> kinds;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    if (item == "l") {
      kinds.push_back(AttentionKind::kRala);
    } else if (item == "v") {
      kinds.push_back(AttentionKind::kSoftmax);
    } else {
      throw Error("attention kinds: '" + item +
                  "' is not 'l' (RALA linear attention) or 'v' (softmax attention); "
                  "expected a list such as l,l,v,v");
    }
    start = comma + 1;
  }
  return kinds;
}

std::vector<AttentionKind> default_attention_kinds(size_t stages) {
  std::vector<AttentionKind> kinds(stages, AttentionKind::kSoftmax);
  for (size_t s = 0; s < stages && s < 2; ++s) kinds[s] = AttentionKind::kRala;
  return kinds;
}

ArchSpec infer_arch(const WeightMap& w, const std::vector<AttentionKind>& attention) {
  ArchSpec a;
  a.stem_hidden = dim_of(w, "patch_embed.proj.0.weight", 0, 4);
  a.in_channels = dim_of(w, "patch_embed.proj.0.weight", 1, 4);
  size_t stage_count = 0;
  while (w.count(block_key(stage_count, 0, "norm1.norm.weight"))) ++stage_count;
  if (stage_count == 0)
    throw Error("state dict: missing key 'layers.0.blocks.0.norm1.norm.weight'");
  if (!attention.empty() && attention.size() != stage_count) {
    throw Error("attention kinds: " + std::to_string(attention.size()) +
                " given for a model with " + std::to_string(stage_count) + " stages");
  }
  const std::vector<AttentionKind> kinds =
      attention.empty() ? default_attention_kinds(stage_count) : attention;
  for (size_t s = 0; s < stage_count; ++s) {
    StageSpec st;
    st.dim = dim_of(w, block_key(s, 0, "norm1.norm.weight"), 0, 1);
    while (w.count(block_key(s, st.depth, "norm1.norm.weight"))) ++st.depth;
    const std::string angle = stage_key(s, "RoPE.angle");
    const int half = dim_of(w, angle, 0, 1);
    st.head_dim = 2 * half;
    if (st.dim % st.head_dim != 0) {
      throw Error("state dict: key '" + angle + "' gives head dimension " +
                  std::to_string(st.head_dim) + ", which does not divide the stage width " +
                  std::to_string(st.dim));
    }
    st.heads = st.dim / st.head_dim;
    st.ffn_hidden = dim_of(w, block_key(s, 0, "ffn.fc1.weight"), 0, 4);
    st.layer_scale = w.count(block_key(s, 0, "gamma_1")) > 0;
    st.attention = kinds[s];
    a.stages.push_back(st);
  }
  a.backbone = w.count("extra_norms.0.norm.weight") > 0 && w.count("head.weight") == 0;
  if (!a.backbone) {
    a.projection = dim_of(w, "proj.weight", 0, 4);
    a.num_classes = dim_of(w, "head.weight", 0, 4);
  }

  // Every key against the config: names and shapes.
  std::set<std::string> seen;
  for (const auto& [key, shape] : expected_keys(a)) {
    auto it = w.find(key);
    if (it == w.end()) {
      if (key.ends_with("num_batches_tracked")) continue;  // a statistic; optional
      throw Error("state dict: missing key '" + key + "' (expected shape " + shape_string(shape) +
                  ")");
    }
    if (it->second.shape != shape) {
      throw Error("state dict: key '" + key + "' has shape " + shape_string(it->second.shape) +
                  ", expected " + shape_string(shape));
    }
    seen.insert(key);
    const bool counted = !key.ends_with("running_mean") && !key.ends_with("running_var") &&
                         !key.ends_with("num_batches_tracked") && !key.ends_with("RoPE.angle");
    if (counted) a.parameter_count += it->second.numel();
  }
  for (const auto& [key, tensor] : w) {
    if (!seen.count(key)) throw Error("state dict: unexpected key '" + key + "'");
  }
  a.variant = variant_name(a);
  return a;
}

std::vector<std::pair<std::string, std::vector<int64_t>>> expected_keys(const ArchSpec& a) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> keys;
  const int64_t h = a.stem_hidden;
  const int64_t c0 = a.stages.at(0).dim;
  const int64_t stem_in[4] = {a.in_channels, h, h, h};
  const int64_t stem_out[4] = {h, h, h, c0};
  for (int i = 0; i < 4; ++i) {
    const std::string conv = "patch_embed.proj." + std::to_string(3 * i);
    keys.push_back({conv + ".weight", {stem_out[i], stem_in[i], 3, 3}});
    keys.push_back({conv + ".bias", {stem_out[i]}});
    add_batchnorm(keys, "patch_embed.proj." + std::to_string(3 * i + 1), stem_out[i]);
  }
  for (size_t s = 0; s < a.stages.size(); ++s) {
    const StageSpec& st = a.stages[s];
    const int64_t c = st.dim, f = st.ffn_hidden;
    keys.push_back({stage_key(s, "RoPE.angle"), {st.head_dim / 2}});
    for (int j = 0; j < st.depth; ++j) {
      auto k = [&](const std::string& rest, std::vector<int64_t> shape) {
        keys.push_back({block_key(s, j, rest), std::move(shape)});
      };
      if (st.layer_scale) {
        k("gamma_1", {1, c, 1, 1});
        k("gamma_2", {1, c, 1, 1});
      }
      k("pos.weight", {c, 1, 3, 3});
      k("pos.bias", {c});
      k("norm1.norm.weight", {c});
      k("norm1.norm.bias", {c});
      k("attn.qkvo.weight", {4 * c, c, 1, 1});
      k("attn.qkvo.bias", {4 * c});
      k("attn.lepe.weight", {c, 1, 5, 5});
      k("attn.lepe.bias", {c});
      k("attn.proj.weight", {c, c, 1, 1});
      k("attn.proj.bias", {c});
      k("norm2.norm.weight", {c});
      k("norm2.norm.bias", {c});
      k("ffn.fc1.weight", {f, c, 1, 1});
      k("ffn.fc1.bias", {f});
      k("ffn.fc2.weight", {c, f, 1, 1});
      k("ffn.fc2.bias", {c});
      k("ffn.dwconv.weight", {f, 1, 3, 3});
      k("ffn.dwconv.bias", {f});
    }
    if (s + 1 < a.stages.size()) {
      const int64_t next = a.stages[s + 1].dim;
      keys.push_back({stage_key(s, "downsample.reduction.weight"), {next, c, 3, 3}});
      keys.push_back({stage_key(s, "downsample.reduction.bias"), {next}});
      add_batchnorm(keys, stage_key(s, "downsample.norm"), next);
    }
  }
  if (a.backbone) {
    for (size_t s = 0; s < a.stages.size(); ++s) {
      const std::string norm = "extra_norms." + std::to_string(s) + ".norm.";
      keys.push_back({norm + "weight", {a.stages[s].dim}});
      keys.push_back({norm + "bias", {a.stages[s].dim}});
    }
    return keys;
  }
  const int64_t last = a.stages.back().dim;
  keys.push_back({"proj.weight", {a.projection, last, 1, 1}});
  keys.push_back({"proj.bias", {a.projection}});
  add_batchnorm(keys, "norm", a.projection);
  keys.push_back({"head.weight", {a.num_classes, a.projection, 1, 1}});
  keys.push_back({"head.bias", {a.num_classes}});
  return keys;
}

}  // namespace ravlt::engine
