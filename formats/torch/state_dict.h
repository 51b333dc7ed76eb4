// Finding the state dict inside a checkpoint.
//
// Layouts met in practice: a bare state dict; a training checkpoint, a dict
// whose "model" (and maybe "model_ema") entry is the state dict, next to
// optimizer, scheduler, args and so on; mmcv's save_checkpoint (mmdetection,
// mmsegmentation), a dict whose "state_dict" entry holds the whole detector
// or segmentor next to "meta" and "optimizer"; any of them with every key
// prefixed "module." (saved from DistributedDataParallel). Inside the state dict only
// tensors are accepted: any inert object there is an error naming its key
// and the global that made it.
#pragma once

#include <string>
#include <vector>

#include "formats/torch/checkpoint.h"

namespace ravlt::torch {

struct NamedTensor {
  std::string name;  // without any "module." prefix
  const TensorInfo* tensor;
};

struct StateDict {
  std::string source;  // the entry it came from ("model", "model_ema"), or "" if bare
  bool stripped_module_prefix = false;
  std::vector<NamedTensor> tensors;  // in the checkpoint's order
};

/// Extracts the state dict. `entry` names the training checkpoint's entry to
/// use; empty means: a bare state dict if the root holds only tensors, else
/// "model", else (mmcv's layout) "state_dict". Throws ravlt::Error naming
/// what it found instead.
StateDict extract_state_dict(const Checkpoint& checkpoint, const std::string& entry = "");

/// What mmcv's save_checkpoint records in "meta" that a converter keeps.
struct MmcvMeta {
  std::string framework;             // "mmdetection 2.28.2", "mmsegmentation 0.30.0", or ""
  std::vector<std::string> classes;  // meta.CLASSES, in order (empty if absent or None)
};

/// Reads the root's "meta" entry, if any. Throws ravlt::Error if CLASSES is
/// there but is not a tuple or list of strings.
MmcvMeta read_mmcv_meta(const Checkpoint& checkpoint);

}  // namespace ravlt::torch
