// The values a restricted unpickler produces: plain data, never live objects.
//
// A pickle can describe calls to any Python callable. The unpickler performs
// none of them: a call to a callable it does not interpret becomes an inert
// Object that records the callable's name and arguments, and is never used
// again except to name it in an error. Only the calls that rebuild tensors
// and OrderedDicts are interpreted (global_policy.h).
//
// Values are owned by a ValueArena and refer to each other by raw pointer:
// a pickle's memo can make cycles, which the arena frees without leaking.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ravlt/dtype.h"

namespace ravlt::torch {

enum class Kind : uint8_t {
  kNone,
  kBool,
  kInt,     // fits in int64
  kBigInt,  // wider integer: little-endian two's complement bytes in `text`
  kFloat,
  kString,  // unicode, UTF-8 in `text`
  kBytes,   // raw bytes in `text`
  kTuple,
  kList,
  kDict,
  kSet,
  kGlobal,   // a reference to "module.name" (in `text`), never resolved
  kObject,   // an uninterpreted call or instance of the global named in `text`
  kStorage,  // a storage named by a persistent id
  kTensor,   // a view of a storage
};

/// One typed storage of the checkpoint, addressed by its key.
struct StorageInfo {
  std::string key;             // name of its bytes: zip entry data/<key>, or legacy key
  std::string type_name;       // e.g. "torch.FloatStorage"
  std::optional<DType> dtype;  // empty for element types the engine does not read
  uint32_t element_size = 0;
  uint64_t numel = 0;
  uint64_t element_offset = 0;  // legacy storage views start inside their root
};

struct Value;

/// A tensor: a strided view of a storage (sizes and strides in elements).
struct TensorInfo {
  const Value* storage = nullptr;
  uint64_t offset = 0;
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;
  uint64_t numel() const;
};

struct Value {
  Kind kind = Kind::kNone;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0.0;
  std::string text;           // string, bytes, big integer, global or object name
  std::vector<Value*> items;  // tuple, list, set elements; object call arguments
  std::vector<std::pair<Value*, Value*>> entries;  // dict entries; items set on objects
  Value* state = nullptr;                          // object state from BUILD (inert)
  StorageInfo storage;
  TensorInfo tensor;

  bool is_string() const { return kind == Kind::kString; }
  /// A short description for error messages: "a tensor", "a str", "an
  /// object argparse.Namespace", ...
  std::string describe() const;
};

/// Owns every Value of one checkpoint. Pointers stay valid for its lifetime.
class ValueArena {
 public:
  Value* make(Kind kind) {
    values_.emplace_back();
    values_.back().kind = kind;
    return &values_.back();
  }
  size_t size() const { return values_.size(); }

 private:
  std::deque<Value> values_;
};

}  // namespace ravlt::torch
