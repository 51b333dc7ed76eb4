// The file of a model's packed weights (the weight cache directory,
// LoadOptions::cache_dir): the weights in the layouts oneDNN's primitives
// chose, written after a plan packed them and mapped by later processes, so
// that a plan of the same model finds them packed instead of reordering
// tens of megabytes (OpenVINO's CACHE_DIR does the same for its compiled
// models).
//
// Layout, all integers little-endian:
//   header   (64 bytes)  "RVLTPACK", format version (u32), entry count
//                        (u32), model checksum (u64), build key (u64), data
//                        section offset (u64), data section bytes (u64),
//                        model parts checksum (u64), zeros
//   entries  (40 bytes each) graph value (u32), zero (u32), source layout
//                        key (u64), packed layout key (u64), offset in the
//                        data section (u64, a multiple of 64), bytes (u64)
//   data     (from a multiple of 4096)
//   part table (8 bytes a 4 MiB part of all the bytes before it)
//   footer   (16 bytes)  "RVLTPKS1", the checksum of every byte before the
//                        part table, by parts (checksum.h: kParts)
//
// The model checksum (the .rvlt file's footer) and the build key (the
// engine and oneDNN versions) name the file, and are checked again inside
// it; the layout keys are hashes of the oneDNN memory descriptors
// (layout_key()). A file that is damaged, truncated, or made by another
// model or build is refused whole, and the weights are packed again.
//
// The model parts checksum is the model file's rvlt::ModelFile::
// parts_checksum() with the entries' values deferred, taken from a model
// file verified whole: a load that uses this file checks the model file's
// other bytes against it and need not read the weights the entries
// replace (rvlt::OpenOptions::parts).
#pragma once

#include <chrono>
#include <cstdint>
#include <dnnl.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "formats/mapped_file.h"

namespace ravlt::runtime::cpu {

/// One packed weight: graph value `value`, reordered from the layout with
/// key `source_key` into the layout with key `packed_key`.
struct PackedWeight {
  uint32_t value = 0;
  uint64_t source_key = 0;
  uint64_t packed_key = 0;
  std::span<const uint8_t> bytes;  // in the mapping (read) or the writer's buffers
};

/// A hash of what oneDNN's memory descriptor says about a layout (its
/// dimensions, type, padding, strides and blocking), independent of the
/// struct's unused bytes; nullopt for a layout that is not plain strides
/// and blocks (never persisted).
std::optional<uint64_t> layout_key(const dnnl::memory::desc& desc);

/// The engine build's part of the file name and header: `engine_version`
/// with oneDNN's version and this format's.
uint64_t packed_build_key(const std::string& engine_version);

/// The file's name in the cache directory.
std::string packed_weight_file_name(uint64_t model_checksum, uint64_t build_key);

/// Removes from `directory` what no process of this build will use again
/// for the model `model_checksum`: its files of other builds (an engine or
/// oneDNN version since replaced, whose layouts this build cannot trust),
/// and temporary files of writers that stopped more than `abandoned_after`
/// ago (killed mid-write). Other models' files and anything not named by
/// this scheme stay. Never throws; returns the number of files removed.
size_t remove_stale_packed_weight_files(
    const std::string& directory, uint64_t model_checksum, uint64_t build_key,
    std::chrono::seconds abandoned_after = std::chrono::hours(1));

/// A mapped, verified packed-weight file.
class PackedWeightFile {
 public:
  /// Maps and checks `path` (every check in the file comment). Throws
  /// ravlt::Error naming the path and the problem.
  static PackedWeightFile open(const std::string& path, uint64_t model_checksum,
                               uint64_t build_key);

  const std::vector<PackedWeight>& weights() const { return weights_; }
  /// The model parts checksum the header records (see the file comment).
  uint64_t model_parts_checksum() const { return model_parts_checksum_; }
  /// See MappedFile::check_unchanged().
  void check_unchanged() const { file_.check_unchanged(); }

 private:
  explicit PackedWeightFile(MappedFile file) : file_(std::move(file)) {}
  MappedFile file_;
  std::vector<PackedWeight> weights_;
  uint64_t model_parts_checksum_ = 0;
};

/// Writes `weights` to `path` atomically (a temporary file in the same
/// directory, renamed into place). Throws ravlt::Error naming the path and
/// the reason on I/O failure; leaves no temporary file behind.
void write_packed_weight_file(const std::string& path, uint64_t model_checksum, uint64_t build_key,
                              uint64_t model_parts_checksum,
                              const std::vector<PackedWeight>& weights);

}  // namespace ravlt::runtime::cpu
