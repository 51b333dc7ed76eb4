// PyTorch checkpoints (torch.save files) read without Python.
//
// Two containers exist: the zip archive of torch >= 1.6 (<name>/data.pkl,
// <name>/data/<key> per storage, <name>/version) and the legacy stream (a
// magic-number pickle, a protocol pickle, a system-info pickle, the object
// pickle, a pickle of storage keys, then each storage as an int64 element
// count and raw bytes). Both are detected from the first bytes.
//
// Opening parses the object pickle (pickle.h; nothing is executed) and
// checks every storage it names against the bytes that back it. Tensor
// bytes are read when asked for. A Checkpoint is not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "formats/mapped_file.h"
#include "formats/torch/pickle_value.h"

namespace ravlt::torch {

class ZipArchive;

class Checkpoint {
 public:
  /// Opens and parses `path`. Throws ravlt::Error naming the file and what
  /// is wrong (not a checkpoint, truncated, hostile, inconsistent).
  static std::unique_ptr<Checkpoint> open(const std::string& path);
  ~Checkpoint();

  /// The object torch.save was given (a dict for every checkpoint we read).
  const Value& root() const { return *root_; }
  /// "zip" or "legacy".
  const std::string& container() const { return container_; }
  const std::string& path() const { return path_; }

  /// The elements of `tensor` as float32, row-major in its sizes (views and
  /// strides resolved). Reads the backing storage on first use.
  /// Throws for storages of a dtype the engine does not read.
  std::vector<float> to_float32(const TensorInfo& tensor) const;

 private:
  Checkpoint() = default;
  void open_zip();
  void open_legacy();
  std::span<const uint8_t> storage_bytes(const StorageInfo& storage) const;
  Value* make_storage(const std::string& type_name, const std::string& key, int64_t numel);

  std::string path_;
  std::string container_;
  ValueArena arena_;
  Value* root_ = nullptr;
  std::map<std::string, Value*> storages_;  // by key
  // zip container
  std::unique_ptr<ZipArchive> zip_;
  std::string zip_prefix_;                                      // "archive/" or similar
  mutable std::map<std::string, std::vector<uint8_t>> loaded_;  // storage bytes by key
  // legacy container
  std::optional<MappedFile> mapped_;
  std::map<std::string, std::span<const uint8_t>> legacy_data_;  // root storage bytes by key
};

}  // namespace ravlt::torch
