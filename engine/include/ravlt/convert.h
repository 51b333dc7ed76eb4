// Converting a PyTorch checkpoint of RAVLT into a .rvlt model file.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ravlt/dtype.h"
#include "ravlt/export.h"

namespace ravlt {

/// Parses "fp32", "fp16" or "bf16" (the element types a model file may
/// store its weights in). Throws ravlt::Error on other text.
RAVLT_API DType parse_weight_type(std::string_view text);

struct ConvertOptions {
  /// Entry of a training checkpoint holding the weights ("model",
  /// "model_ema"); empty: a bare state dict, else "model".
  std::string state_dict_entry;
  /// Attention kind per stage, e.g. "l,l,v,v" (l: RALA linear attention,
  /// v: softmax attention); empty: RALA in stages 1-2, softmax after.
  std::string attention;
  /// Class names, one per class; empty: the 1000 ImageNet names when the
  /// head has 1000 classes, "class_N" otherwise. Classifiers only.
  std::vector<std::string> labels;
  /// Backbones: the stages whose feature maps the model outputs, 0-based
  /// as in mmdetection's out_indices (outputs "stage{i+1}"); empty: all.
  std::vector<int> out_indices;
  /// Element type of the weights stored in the file.
  DType weight_type = DType::kFloat32;
  /// Evaluation preprocessing recorded in the file (spec §7). Unset: 256
  /// and 224 for a classifier; for a backbone, neither resized nor cropped.
  std::optional<int> resize;
  std::optional<int> crop;
  std::array<float, 3> mean = {0.485f, 0.456f, 0.406f};
  std::array<float, 3> std = {0.229f, 0.224f, 0.225f};
  /// Called as work advances: a phase name and its fraction done in [0, 1].
  std::function<void(std::string_view phase, double fraction)> progress;
};

/// What a conversion produced (report/ turns it into the CLI's summary).
struct ConvertResult {
  std::string source_file;  ///< the checkpoint's file name
  std::string container;    ///< "zip" or "legacy" (torch.save's formats)
  std::string output;       ///< the model file written
  std::string variant;      ///< "RAVLT-S", or "custom"
  std::string kind;         ///< "classifier" or "backbone"
  /// The training framework that wrote the checkpoint, when it says
  /// ("mmdetection 2.28.2"), else empty.
  std::string framework;
  /// Parts of a detector or segmentor left out, with their tensor counts
  /// ({"neck", 12}, {"rpn_head", 6}, ...), in the checkpoint's order.
  std::vector<std::pair<std::string, size_t>> left_out;
  std::vector<std::string>
      outputs;                   ///< the model's outputs ("logits", "embedding" / "stage1", ...)
  size_t dataset_classes = 0;    ///< class names kept from the checkpoint's meta
  std::string state_dict_entry;  ///< where the weights came from ("" if bare)
  bool stripped_module_prefix = false;
  std::vector<int> dims, depths, heads;  ///< per stage
  std::string attention;                 ///< per stage, "l,l,v,v"
  int num_classes = 0;
  DType weight_type = DType::kFloat32;  ///< as stored in the file
  uint64_t source_parameters = 0;       ///< learned parameters in the checkpoint
  uint64_t stored_parameters = 0;       ///< elements stored, after folding
  uint64_t file_bytes = 0;
};

/// Reads `checkpoint` (a torch.save file: zip or legacy; bare state dict,
/// training checkpoint, "module."-prefixed; float32, float16 or bfloat16;
/// an ImageNet classifier, or an mmdetection / mmsegmentation checkpoint
/// whose backbone is RAVLT, of which the backbone is kept), checks it
/// against RAVLT's architecture, folds it and writes `output`.
/// Throws ravlt::Error with a one-line reason naming the file or key.
RAVLT_API ConvertResult convert_checkpoint(const std::string& checkpoint, const std::string& output,
                                           const ConvertOptions& options = {});

/// The 1000 ImageNet-1k class names in index order, built into the library.
RAVLT_API const std::vector<std::string>& imagenet_labels();

}  // namespace ravlt
