// A description of a .rvlt model file: its metadata, architecture and graph,
// as data.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ravlt/export.h"

namespace ravlt {

/// One stage of the network as the file describes it.
struct StageInfo {
  int dim = 0;               ///< channels
  int depth = 0;             ///< blocks
  int heads = 0;             ///< attention heads
  int head_dim = 0;          ///< channels per head
  int ffn_hidden = 0;        ///< FFN hidden width
  bool layer_scale = false;  ///< whether the blocks had layer scales (folded)
  std::string attention;     ///< "rala" or "softmax"
  /// Graph nodes of this stage (blocks and its downsampling), by op name.
  std::map<std::string, int> ops;
};

/// One named output and its shape at ModelInfo's input size.
struct OutputInfo {
  std::string name;            ///< "logits", "embedding", "stage1", ...
  std::vector<int64_t> shape;  ///< for a batch of 1 at input_height x input_width
};

/// Everything `ravlt inspect` reports about a model file.
struct ModelInfo {
  std::string path;         ///< as opened
  uint64_t file_bytes = 0;  ///< size of the file
  int format_major = 0;     ///< .rvlt format version
  int format_minor = 0;
  std::string producer;                      ///< "ravlt"
  std::string producer_version;              ///< version of the converter that wrote it
  std::string source_file;                   ///< checkpoint converted (base name)
  std::string source_sha256;                 ///< of the whole checkpoint file
  std::string source_state_dict;             ///< entry converted: "model", "model_ema" or "" (bare)
  std::string weight_dtype;                  ///< "float32", "float16" or "bfloat16"
  std::string kind;                          ///< "classifier" or "backbone"
  std::string variant;                       ///< "RAVLT-S" for a published config, else "custom"
  int in_channels = 0;                       ///< image channels (3)
  int stem_hidden = 0;                       ///< channels inside the patch embedding
  std::vector<StageInfo> stages;             ///< the four stages
  int projection = 0;                        ///< channels of the 1x1 projection before pooling
  int num_classes = 0;                       ///< logits
  uint64_t source_parameters = 0;            ///< before folding, as in the checkpoint
  uint64_t stored_parameters = 0;            ///< constants in the file
  uint64_t weight_bytes = 0;                 ///< size of the data section
  int resize = 0, crop_h = 0, crop_w = 0;    ///< recorded preprocessing (see Preprocessing)
  std::string interpolation;                 ///< "bicubic" or "bilinear"
  std::vector<float> mean, std;              ///< per channel
  std::vector<std::string> labels;           ///< class names (one per logit)
  std::vector<std::string> dataset_classes;  ///< the checkpoint's dataset class names, if any
  int input_height = 0, input_width = 0;     ///< the size `outputs` are shaped for
  std::vector<OutputInfo> outputs;           ///< named outputs, the default first
  /// Multiply-adds of one image at that size (Model::node_macs's count).
  double macs = 0;
  size_t nodes = 0;    ///< graph nodes
  size_t tensors = 0;  ///< graph values, constants included
  /// Nodes outside the stages ("patch_embed", "head"), by op name.
  std::map<std::string, std::map<std::string, int>> other_ops;
};

/// Opens and verifies `path` (checksum included unless verify_checksum is
/// false) and describes it, with its outputs' shapes for one image of
/// `height` x `width` (0: the recorded crop, else 224 x 224). Throws
/// ravlt::Error naming the problem (a size the model cannot take included).
RAVLT_API ModelInfo describe_model(const std::string& path, bool verify_checksum = true,
                                   int height = 0, int width = 0);

}  // namespace ravlt
