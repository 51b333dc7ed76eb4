// RAVLT's architecture, read off a state dict (spec §6).
//
// Nothing here assumes one of the published variants: widths, depths, head
// counts, FFN widths, layer scale, projection width and class count all come
// from the weights, and every key is then checked against the config.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/src/host_tensor.h"

namespace ravlt::engine {

enum class AttentionKind { kRala, kSoftmax };

struct StageSpec {
  int dim = 0;
  int depth = 0;
  int heads = 0;
  int head_dim = 0;
  int ffn_hidden = 0;
  bool layer_scale = false;
  AttentionKind attention = AttentionKind::kRala;
};

struct ArchSpec {
  std::string variant;  // "RAVLT-T", "RAVLT-S", "RAVLT-B", "RAVLT-L" or "custom"
  int in_channels = 3;
  int stem_hidden = 0;
  std::vector<StageSpec> stages;
  /// The detection/segmentation backbone (the authors' GLTA): no proj,
  /// norm or head; a LayerNorm over channels (extra_norms.i) on each
  /// stage's output before its downsampling.
  bool backbone = false;
  int projection = 0;            // classifier only
  int num_classes = 0;           // classifier only
  uint64_t parameter_count = 0;  // learned parameters, before folding
};

/// State dict tensors by key, converted to float32.
using WeightMap = std::map<std::string, HostTensor>;

/// Parses "l,l,v,v" (l: RALA, v: softmax attention). Throws on other text.
std::vector<AttentionKind> parse_attention_kinds(const std::string& text);

/// The authors' rule: RALA in the first two stages, softmax attention after.
std::vector<AttentionKind> default_attention_kinds(size_t stages);

/// Reads the config off `weights` and checks every key: a missing, extra or
/// misshapen key is a ravlt::Error naming it. `attention` overrides the
/// per-stage kinds when non-empty (it must have one entry per stage). A
/// state dict with extra_norms.* keys and no head is a backbone.
ArchSpec infer_arch(const WeightMap& weights, const std::vector<AttentionKind>& attention = {});

/// Every key a state dict of `arch` holds, with its shape (in the authors'
/// order). num_batches_tracked entries are included.
std::vector<std::pair<std::string, std::vector<int64_t>>> expected_keys(const ArchSpec& arch);

}  // namespace ravlt::engine
