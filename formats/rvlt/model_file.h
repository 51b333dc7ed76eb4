// Writing and opening .rvlt model files (layout: rvlt.fbs).
//
// A ModelFile is immutable once opened and safe to share between threads.
// Opening maps the file and checks, before anything else reads it:
//   1. the size prefix, the "RVLT" identifier and the footer are in place;
//   2. the FlatBuffers verifier accepts the metadata and graph;
//   3. the format major version is one this reader knows;
//   4. semantic checks (graph_checks.h): every constant's bytes lie inside
//      the data section, 64-byte aligned and exactly numel * dtype size long,
//      every node input is defined before use, dtypes and shapes agree;
//   5. the checksum of the file matches its footer (XXH3-64, by parts from
//      format 2.0: checksum.h; unless
//      OpenOptions::verify_checksum is false, for trusted files), or, given
//      OpenOptions::parts, the checksum of every byte but some constants'
//      (below).
// Weights are never copied: constant_bytes() points into the mapping.
//
// Parts: a caller holding verified copies of some constants (the packed-
// weight cache holds every weight of a model in the layouts its kernels
// read) need not read their bytes in the file. It passes the checksum of the
// rest, recorded by an earlier open that verified the whole file
// (parts_checksum()); the constants it left out stay unverified until
// verify_deferred(), which whoever reads their bytes calls first.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "formats/checksum.h"
#include "formats/mapped_file.h"
#include "formats/rvlt/rvlt_generated.h"
#include "ravlt/dtype.h"

namespace ravlt::rvlt {

// The schema's DType enumerates the engine's DType value for value.
static_assert(fb::DType_Float32 == static_cast<int>(DType::kFloat32) &&
                  fb::DType_Float16 == static_cast<int>(DType::kFloat16) &&
                  fb::DType_BFloat16 == static_cast<int>(DType::kBFloat16) &&
                  fb::DType_Int64 == static_cast<int>(DType::kInt64) &&
                  fb::DType_MAX + 1 == kDTypeCount,
              "rvlt.fbs's DType and ravlt::DType must match in count and values");
inline fb::DType to_fb_dtype(DType t) {
  return static_cast<fb::DType>(t);
}

/// Version of the file format this code writes; it reads any file whose
/// major version is kOldestFormatMajor to kFormatMajor (any minor).
inline constexpr uint16_t kFormatMajor = 2;
inline constexpr uint16_t kOldestFormatMajor = 1;
// 1.1: Metadata.kind and dataset_classes, backbones (several named outputs,
// ToChannelsFirst), preprocessing without resize or crop for backbones.
// 2.0: the footer's checksum by parts (ChecksumScheme::kParts), with the
// part table before the footer, which a reader verifies on several
// threads; 1.x files keep the whole-file XXH3.
inline constexpr uint16_t kFormatMinor = 0;
/// Alignment of the data section and of every constant in it, in bytes.
inline constexpr uint64_t kDataAlignment = 64;
/// The footer: 8 magic bytes, then the little-endian checksum of the
/// metadata and the data section by checksum_scheme() of the file's major
/// version (format 2.0: their part table lies between them and the footer).
inline constexpr char kFooterMagic[8] = {'R', 'V', 'L', 'T', 'S', 'U', 'M', '1'};
inline constexpr uint64_t kFooterSize = 16;

/// How the footer's checksum of a file of format major version `major`
/// covers its bytes: by parts from 2.0, whole before.
inline ChecksumScheme checksum_scheme(uint16_t major) {
  return major >= 2 ? ChecksumScheme::kParts : ChecksumScheme::kWhole;
}

/// Called with (bytes written, bytes total) while writing a large file.
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

/// Writes a model file. `constant_bytes[i]` holds the bytes of tensor i of
/// model.graph if that tensor is a constant (empty otherwise). Sets each
/// constant's data_offset and data_length and model.data_size, fills in the
/// format version, then writes `path` atomically (a temporary file renamed
/// into place). Throws ravlt::Error on I/O failure.
void write_model_file(const std::string& path, fb::ModelT& model,
                      const std::vector<std::vector<uint8_t>>& constant_bytes,
                      const ProgressFn& progress = {});

/// The checksum of a model file's bytes but the constants `deferred`
/// (ModelFile::parts_checksum()).
struct PartsChecksum {
  uint64_t checksum = 0;
  std::vector<uint32_t> deferred;  ///< tensor indices of constants
};

struct OpenOptions {
  /// Check the file's XXH3-64 checksum. Costs one pass over the file (and
  /// pages all of it in); skip only for files you trust.
  bool verify_checksum = true;
  /// With verify_checksum: check the bytes outside the constants
  /// `parts->deferred` against `parts->checksum` instead, leaving those
  /// constants unread until verify_deferred(). Where they differ (the
  /// record is of another file, or the file is damaged), the whole file's
  /// checksum decides, as without.
  std::optional<PartsChecksum> parts;
};

class ModelFile {
 public:
  /// Maps and verifies `path` (see the file comment). Throws ravlt::Error
  /// naming the path and the first problem found.
  static std::shared_ptr<const ModelFile> open(const std::string& path,
                                               const OpenOptions& options = {});

  const fb::Model& model() const { return *model_; }
  const fb::Graph& graph() const { return *model_->graph(); }
  const fb::Metadata& metadata() const { return *model_->metadata(); }

  /// The bytes of constant tensor `tensor_index`, in place in the mapping.
  std::span<const uint8_t> constant_bytes(uint32_t tensor_index) const;

  const std::string& path() const { return file_.path(); }
  uint64_t file_size() const { return file_.size(); }
  /// The XXH3-64 checksum the footer records (verified at open unless
  /// OpenOptions::verify_checksum was off): the file's identity.
  uint64_t checksum() const;
  /// Offset of the data section from the start of the file.
  uint64_t data_section_offset() const { return data_offset_; }
  /// XXH3-64 of the bytes before the data section, then of every
  /// constant's bytes in tensor order but those of `deferred` (tensor
  /// indices, any order): what OpenOptions::parts checks. Reads the file's
  /// bytes as they are: call it on a file verified whole.
  uint64_t parts_checksum(std::span<const uint32_t> deferred) const;
  /// Whether open() left constants unread (OpenOptions::parts) that
  /// verify_deferred() has not checked since.
  bool deferred() const;
  /// Checks the whole file's checksum if open() left constants unread, once
  /// (later calls repeat the outcome); else does nothing. Throws
  /// ravlt::Error naming the path on a mismatch. Thread-safe.
  void verify_deferred() const;
  /// verify_deferred() if constant `tensor_index` is one open() left
  /// unread: what a reader of its bytes calls first.
  void verify_constant(uint32_t tensor_index) const;
  /// Start of the mapping (for callers that check where weights live).
  const uint8_t* mapping_begin() const { return file_.data(); }
  /// See MappedFile::release() and resident_bytes().
  void release(const void* begin, size_t bytes) const { file_.release(begin, bytes); }
  size_t resident_bytes() const { return file_.resident_bytes(); }
  /// Throws ravlt::Error unless the file is as it was opened
  /// (MappedFile::check_unchanged()): what a reader of its bytes after
  /// open() calls first, as the mapping would show it the bytes written
  /// since, unverified, or end the process past a shortened end.
  void check_unchanged() const { file_.check_unchanged(); }

 private:
  explicit ModelFile(MappedFile file) : file_(std::move(file)) {}
  MappedFile file_;
  const fb::Model* model_ = nullptr;
  uint64_t data_offset_ = 0;
  uint64_t checksummed_end_ = 0;         // the metadata and the data section
  bool deferred_ = false;                // constants left unread by open()
  std::vector<uint32_t> deferred_list_;  // their tensor indices, ascending
  mutable std::once_flag verify_once_;
  mutable std::atomic<bool> verified_{false};
  mutable std::atomic<bool> corrupt_{false};
};

/// The checksum the footer of the file at `path` records, read without
/// mapping or checking the rest (nullopt where the file cannot be read or
/// has no footer): ModelFile::checksum() before the file is opened, for
/// work that may start while it is verified.
std::optional<uint64_t> read_footer_checksum(const std::string& path);

/// The checksum of `bytes` (a file's, less its footer) as a file of format
/// major version `major` stores it in its footer.
uint64_t file_checksum(std::span<const uint8_t> bytes, uint16_t major = kFormatMajor);

}  // namespace ravlt::rvlt
