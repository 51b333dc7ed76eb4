// Opening .rvlt files: every check of model_file.h, in that order, before
// the ModelFile is handed out.
#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <system_error>
#include <thread>
#include <vector>

#include "formats/little_endian.h"
#include "formats/rvlt/graph_checks.h"
#include "formats/rvlt/model_file.h"
#include "ravlt/error.h"

namespace ravlt::rvlt {
namespace {

// From this size up the check at open maps the file on a second thread too
// (below): smaller, the thread's start is a large part of the gain.
constexpr uint64_t kPopulateAheadFrom = uint64_t{16} << 20;

// The parts of a file to map before they are hashed, claimed in order by
// whichever thread comes first: the hashing one only while the part it
// needs next is not mapped yet.
class PartsToMap {
 public:
  PartsToMap(const MappedFile& file, uint64_t end, uint64_t part)
      : file_(file), end_(end), part_(part), count_((end + part - 1) / part), mapped_(count_) {}

  // Maps the next unclaimed part; false when none is left.
  bool map_next() {
    const uint64_t i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= count_) return false;
    const uint64_t at = i * part_;
    file_.populate(file_.data() + at, std::min(part_, end_ - at));
    mapped_[i].store(true, std::memory_order_release);
    return true;
  }
  // Returns once part i is mapped, mapping the next ones meanwhile.
  void wait_for(uint64_t i) {
    while (!mapped_[i].load(std::memory_order_acquire)) {
      if (!map_next()) std::this_thread::yield();  // the other thread is mapping it
    }
  }

 private:
  const MappedFile& file_;
  const uint64_t end_, part_, count_;
  std::atomic<uint64_t> next_{0};
  std::vector<std::atomic<bool>> mapped_;
};

// file_checksum() of the first `end` bytes of `file`, a few MB at a time.
// With `release`, each part's pages are released once hashed: for a check
// made while a plan is prepared (verify_deferred(), the model's weights
// mostly read from a packed-weight file), whose pages nothing reads again.
// A check at open keeps them: the plan then packs every weight from pages
// already mapped and releases each once packed (Graph::release_constant);
// released here, they faulted back in from the page cache for that copy
// (RAVLT-S batch 1: open to first logits 5 % longer, peak RSS the same).
//
// Most of the check's time is mapping the file's pages, not hashing them
// (RAVLT-T's 60 MB with the page cache warm: 8-10 ms faulting page by
// page, 3.2 ms to hash pages already mapped). So each part is mapped in
// one call first (MappedFile::populate), and at open, where the hash is
// alone on the machine, a second thread maps parts ahead of it. 2-core AMD
// Zen 5 guest, `ravlt bench` alternated with the build before, medians:
// open + verify RAVLT-T 9.7 -> 6.3 ms (15 rounds), S 13.5 -> 11.8 (11);
// open to first logits 0.95x and 0.93x (bench/ab.py --metric ready, 11
// rounds). Mapping ahead from the file's end instead, towards the hash,
// gained almost nothing (a standalone loop: T 8.1-9.1 against 7.9-10.2 ms).
uint64_t file_checksum_of(const MappedFile& file, uint64_t end, bool release) {
  constexpr uint64_t kPart = uint64_t{4} << 20;
  PartsToMap parts(file, end, kPart);
  std::thread helper;
  if (!release && end >= kPopulateAheadFrom && std::thread::hardware_concurrency() > 1) {
    try {
      helper = std::thread([&parts] {
        while (parts.map_next()) {
        }
      });
    } catch (const std::system_error&) {
      // No thread to be had: this one maps every part itself.
    }
  }
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  for (uint64_t at = 0; at < end; at += kPart) {
    const uint64_t n = std::min(kPart, end - at);
    parts.wait_for(at / kPart);
    XXH3_64bits_update(state, file.data() + at, n);
    if (release) file.release(file.data() + at, n);
  }
  const uint64_t digest = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  if (helper.joinable()) helper.join();
  return digest;
}

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
  if (model->format_major() < kFormatMajor) {
    throw fail("format version " + std::to_string(model->format_major()) + " is not supported");
  }

  // 4. Semantic checks, with the data section located.
  const uint64_t data_offset =
      (4 + flatbuffer_size + kDataAlignment - 1) / kDataAlignment * kDataAlignment;
  if (data_offset > body_end || model->data_size() != body_end - data_offset) {
    throw fail("truncated or corrupt (data section is " +
               std::to_string(data_offset > body_end ? 0 : body_end - data_offset) +
               " bytes, metadata says " + std::to_string(model->data_size()) + ")");
  }
  try {
    check_model(*model, model->data_size());
  } catch (const Error& e) {
    throw fail(e.what());
  }

  // 5. Checksum of everything before the footer, or of the parts asked for
  // (checked in bounds by step 4).
  bool deferred = false;
  if (options.verify_checksum) {
    const PartsChecksum* parts = options.parts ? &*options.parts : nullptr;
    if (parts != nullptr &&
        checksum_of_parts(bytes, *model, data_offset, parts->deferred) == parts->checksum) {
      deferred = !parts->deferred.empty();
    } else if (file_checksum_of(mapped, body_end, /*release=*/false) !=
               load_le(bytes + body_end + 8, 8)) {
      throw fail("checksum mismatch: the file is corrupt");
    }
  }

  std::shared_ptr<ModelFile> file(new ModelFile(std::move(mapped)));
  file->model_ = model;
  file->data_offset_ = data_offset;
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
  std::call_once(verify_once_, [this] {
    const uint64_t body_end = file_.size() - kFooterSize;
    corrupt_ = file_checksum_of(file_, body_end, /*release=*/true) !=
               load_le(file_.data() + body_end + 8, 8);
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
