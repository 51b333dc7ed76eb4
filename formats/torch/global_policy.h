// How the unpickler judges the globals a pickle names.
//
// Nothing named by a pickle is ever imported or called. The policy only
// decides what a name means:
//   - hostile: a global only an attack would use (os.system, builtins.eval,
//     subprocess.Popen, ...): the whole file is refused, wherever it stands;
//   - interpreted: the tensor-rebuild functions, the storage types and
//     collections.OrderedDict, which the unpickler turns into data;
//   - inert: anything else (argparse.Namespace, optimizer and scheduler
//     classes, builtins.getattr for bound methods, numpy scalars, ...):
//     recorded as a placeholder that is never called or read. The state dict
//     that is converted may not contain any (state_dict.h checks).
#pragma once

#include <optional>
#include <string_view>

#include "ravlt/dtype.h"

namespace ravlt::torch {

enum class GlobalRole : uint8_t {
  kInert,
  kHostile,
  kRebuildTensor,     // torch._utils._rebuild_tensor_v2 / _rebuild_tensor
  kRebuildParameter,  // torch._utils._rebuild_parameter (and _with_state)
  kOrderedDict,       // collections.OrderedDict
  kStorageType,       // torch.FloatStorage, ...
};

/// Role of the global `module.name`.
GlobalRole classify_global(std::string_view module, std::string_view name);

/// For a storage type "torch.XStorage": its element size and, for the types
/// the engine reads, its dtype. nullopt if `qualified_name` is not a storage type.
struct StorageType {
  uint32_t element_size;
  std::optional<DType> dtype;
};
std::optional<StorageType> storage_type(std::string_view qualified_name);

}  // namespace ravlt::torch
