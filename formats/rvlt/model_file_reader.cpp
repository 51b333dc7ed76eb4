// Opening .rvlt files: every check of model_file.h, in that order, before
// the ModelFile is handed out.
#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "formats/little_endian.h"
#include "formats/mapped_checksum.h"
#include "formats/rvlt/graph_checks.h"
#include "formats/rvlt/model_file.h"
#include "ravlt/error.h"

namespace ravlt::rvlt {
namespace {

// ModelFile::parts_checksum() before the ModelFile exists.
uint64_t checksum_of_parts(const uint8_t* bytes, const fb::Model& model, uint64_t data_offset,
                           std::span<const uint32_t> deferred) {
  std::vector<uint32_t> skip(deferred.begin(), deferred.end());
  std::sort(skip.begin(), skip.end());
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  XXH3_64bits_update(state, bytes, data_offset);
  const auto* tensors = model.graph()->tensors();
  for (uint32_t i = 0; i < tensors->size(); ++i) {
    const fb::Tensor& t = *tensors->Get(i);
    if (!t.constant() || std::binary_search(skip.begin(), skip.end(), i)) continue;
    XXH3_64bits_update(state, bytes + data_offset + t.data_offset(), t.data_length());
  }
  const uint64_t digest = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  return digest;
}

}  // namespace

std::shared_ptr<const ModelFile> ModelFile::open(const std::string& path,
                                                 const OpenOptions& options) {
  MappedFile mapped(path);
  const uint8_t* bytes = mapped.data();
  const uint64_t size = mapped.size();
  auto fail = [&](const std::string& why) -> Error { return Error(path + ": " + why); };

  // 1. Framing: size prefix, identifier, footer.
  if (size < 4 + 8 + kFooterSize) throw fail("too small to be a .rvlt model file");
  if (!flatbuffers::BufferHasIdentifier(bytes, fb::ModelIdentifier(), /*size_prefixed=*/true)) {
    throw fail("not a .rvlt model file (identifier 'RVLT' missing)");
  }
  const uint64_t flatbuffer_size = load_le(bytes, 4);
  const uint64_t body_end = size - kFooterSize;
  if (flatbuffer_size > body_end - 4) throw fail("truncated (metadata extends past the end)");
  if (std::memcmp(bytes + body_end, kFooterMagic, 8) != 0) {
    throw fail("truncated or corrupt (footer missing)");
  }

  // 2. The FlatBuffers verifier over the size-prefixed buffer.
  flatbuffers::Verifier verifier(bytes, 4 + flatbuffer_size);
  if (!fb::VerifySizePrefixedModelBuffer(verifier)) {
    throw fail("corrupt metadata (FlatBuffers verification failed)");
  }
  const fb::Model* model = fb::GetSizePrefixedModel(bytes);

  // 3. Version.
  if (model->format_major() > kFormatMajor) {
    throw fail("written in format version " + std::to_string(model->format_major()) + "." +
               std::to_string(model->format_minor()) + ", newer than this reader's " +
               std::to_string(kFormatMajor) + "." + std::to_string(kFormatMinor) +
               "; upgrade ravlt to read it");
  }
  if (model->format_major() < kOldestFormatMajor) {
    throw fail("format version " + std::to_string(model->format_major()) + " is not supported");
  }

  // 4. Semantic checks, with the data section located. The checksum covers
  // the metadata and the data section; a file of format 2 stores its part
  // table (checksum.h) between them and the footer.
  const uint64_t data_offset =
      (4 + flatbuffer_size + kDataAlignment - 1) / kDataAlignment * kDataAlignment;
  const ChecksumScheme scheme = checksum_scheme(model->format_major());
  const uint64_t room = data_offset > body_end ? 0 : body_end - data_offset;
  const uint64_t data_size = model->data_size();
  const uint64_t table = data_size > room ? 0 : part_table_bytes(data_offset + data_size, scheme);
  if (data_offset > body_end || data_size > room || room - data_size != table) {
    throw fail("truncated or corrupt (data section is " + std::to_string(room) +
               " bytes, metadata says " + std::to_string(data_size) +
               (scheme == ChecksumScheme::kParts
                    ? " and its part checksums " + std::to_string(table)
                    : std::string()) +
               ")");
  }
  const uint64_t checksummed_end = data_offset + data_size;
  try {
    check_model(*model, model->data_size());
  } catch (const Error& e) {
    throw fail(e.what());
  }

  // 5. Checksum of everything before the footer, or of the parts asked for
  // (checked in bounds by step 4). The whole file's pages stay mapped: the
  // plan then packs every weight from pages already mapped and releases
  // each once packed (Graph::release_constant); released here, they
  // faulted back in from the page cache for that copy (RAVLT-S batch 1:
  // open to first logits 5 % longer, peak RSS the same).
  bool deferred = false;
  if (options.verify_checksum) {
    const PartsChecksum* parts = options.parts ? &*options.parts : nullptr;
    if (parts != nullptr &&
        checksum_of_parts(bytes, *model, data_offset, parts->deferred) == parts->checksum) {
      deferred = !parts->deferred.empty();
    } else if (!checksum_matches(mapped, checksummed_end, AfterHashing::kKeepPages, scheme,
                                 load_le(bytes + body_end + 8, 8))) {
      throw fail("checksum mismatch: the file is corrupt");
    }
  }

  std::shared_ptr<ModelFile> file(new ModelFile(std::move(mapped)));
  file->model_ = model;
  file->data_offset_ = data_offset;
  file->checksummed_end_ = checksummed_end;
  file->deferred_ = deferred;
  if (deferred) {
    file->deferred_list_ = options.parts->deferred;
    std::sort(file->deferred_list_.begin(), file->deferred_list_.end());
  }
  return file;
}

uint64_t ModelFile::parts_checksum(std::span<const uint32_t> deferred) const {
  return checksum_of_parts(file_.data(), *model_, data_offset_, deferred);
}

void ModelFile::verify_constant(uint32_t tensor_index) const {
  if (deferred_ && std::binary_search(deferred_list_.begin(), deferred_list_.end(), tensor_index)) {
    verify_deferred();
  }
}

bool ModelFile::deferred() const {
  return deferred_ && !verified_.load();
}

void ModelFile::verify_deferred() const {
  if (!deferred_) return;
  // Made while a plan is prepared (the model's weights mostly read from a
  // packed-weight file, whose pages nothing reads again): each part is
  // released once hashed.
  std::call_once(verify_once_, [this] {
    corrupt_ = !checksum_matches(file_, checksummed_end_, AfterHashing::kReleasePages,
                                 checksum_scheme(model_->format_major()),
                                 load_le(file_.data() + file_.size() - 8, 8));
    verified_ = !corrupt_;
  });
  if (corrupt_) throw Error(path() + ": checksum mismatch: the file is corrupt");
}

std::optional<uint64_t> read_footer_checksum(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  uint8_t footer[kFooterSize];
  const off_t end = ::lseek(fd, 0, SEEK_END);
  const bool read = end >= static_cast<off_t>(kFooterSize) &&
                    ::pread(fd, footer, kFooterSize, end - static_cast<off_t>(kFooterSize)) ==
                        static_cast<ssize_t>(kFooterSize);
  ::close(fd);
  if (!read || std::memcmp(footer, kFooterMagic, 8) != 0) return std::nullopt;
  return load_le(footer + 8, 8);
}

uint64_t ModelFile::checksum() const {
  return load_le(file_.data() + file_.size() - 8, 8);
}

std::span<const uint8_t> ModelFile::constant_bytes(uint32_t tensor_index) const {
  const auto* tensors = graph().tensors();
  if (tensor_index >= tensors->size() || !tensors->Get(tensor_index)->constant()) {
    throw Error(path() + ": tensor " + std::to_string(tensor_index) + " is not a constant");
  }
  const fb::Tensor& t = *tensors->Get(tensor_index);
  return {file_.data() + data_offset_ + t.data_offset(), static_cast<size_t>(t.data_length())};
}

}  // namespace ravlt::rvlt
