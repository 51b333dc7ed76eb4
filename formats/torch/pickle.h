// A restricted unpickler for the pickles torch.save writes (protocols 0-5).
//
// It executes nothing: globals become names (judged by global_policy.h),
// calls become inert Objects unless they rebuild a tensor or an OrderedDict,
// persistent ids are handed to the caller to resolve into storages. It is a
// loop over opcodes with an explicit stack, so deep nesting cannot overflow
// the C++ stack, and every read is bounds-checked against the input.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "formats/torch/pickle_value.h"

namespace ravlt::torch {

/// Resolves a persistent id (the tuple torch.save writes for a storage)
/// into a value, usually a kStorage. Throws ravlt::Error if it is invalid.
using PersistentLoader = std::function<Value*(const Value& pid)>;

class Unpickler {
 public:
  /// Reads from `data`, creating values in `arena`. `source` names the input
  /// in error messages (e.g. "model.pth: archive/data.pkl").
  Unpickler(std::span<const uint8_t> data, ValueArena& arena, PersistentLoader persistent_load,
            std::string source);

  /// Parses one pickle from the current position up to its STOP opcode and
  /// returns the value it describes. Throws ravlt::Error on malformed input,
  /// an unsupported opcode, or a global the policy calls hostile.
  Value* load();

  /// Offset just past the last STOP read (several pickles may follow each
  /// other, as in the legacy torch.save format).
  size_t position() const { return pos_; }

 private:
  [[noreturn]] void fail(const std::string& what) const;
  const uint8_t* take(size_t n);
  uint8_t u8();
  uint64_t uint_le(size_t n);
  std::string_view line();
  Value* pop();
  Value* top();
  std::vector<Value*> pop_mark();
  Value* make_global(std::string_view module, std::string_view name);
  Value* call(Value* callable, Value* args);
  Value* rebuild_tensor(const Value& args);

  std::span<const uint8_t> data_;
  size_t pos_ = 0;
  size_t opcode_pos_ = 0;
  ValueArena& arena_;
  PersistentLoader persistent_load_;
  std::string source_;
  std::vector<Value*> stack_;
  std::vector<size_t> marks_;
};

}  // namespace ravlt::torch
