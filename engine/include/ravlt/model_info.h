// A description of a .rvlt model file: its metadata, architecture and graph.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ravlt {

struct StageInfo {
  int dim = 0;
  int depth = 0;
  int heads = 0;
  int head_dim = 0;
  int ffn_hidden = 0;
  bool layer_scale = false;
  std::string attention;  ///< "rala" or "softmax"
  /// Graph nodes of this stage (blocks and its downsampling), by op name.
  std::map<std::string, int> ops;
};

struct ModelInfo {
  std::string path;
  uint64_t file_bytes = 0;
  int format_major = 0;
  int format_minor = 0;
  std::string producer;
  std::string producer_version;
  std::string source_file;
  std::string source_sha256;
  std::string source_state_dict;
  std::string weight_dtype;
  std::string variant;
  int in_channels = 0;
  int stem_hidden = 0;
  std::vector<StageInfo> stages;
  int projection = 0;
  int num_classes = 0;
  uint64_t source_parameters = 0;  ///< before folding, as in the checkpoint
  uint64_t stored_parameters = 0;  ///< constants in the file
  uint64_t weight_bytes = 0;       ///< size of the data section
  int resize = 0, crop_h = 0, crop_w = 0;
  std::string interpolation;
  std::vector<float> mean, std;
  std::vector<std::string> labels;
  size_t nodes = 0;
  size_t tensors = 0;
  /// Nodes outside the stages ("patch_embed", "head"), by op name.
  std::map<std::string, std::map<std::string, int>> other_ops;

  /// Human-readable report.
  std::string to_text() const;
  /// The same as one JSON document.
  std::string to_json() const;
};

/// Opens and verifies `path` (checksum included unless verify_checksum is
/// false) and describes it. Throws ravlt::Error naming the problem.
ModelInfo describe_model(const std::string& path, bool verify_checksum = true);

}  // namespace ravlt
