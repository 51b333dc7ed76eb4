#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "ravlt/error.h"
#include "runtime/cpu/cpu_context.h"

namespace ravlt::runtime::cpu {
namespace {

// The packed weights share blocks of 64 MB (host_pages.h: mappings on 4 KB
// pages), one mapping for many weights rather than a heap block or a
// mapping each. A block is address space until touched: only what the
// weights fill becomes resident.
constexpr size_t kBlockBytes = size_t{64} << 20;
constexpr size_t kAlignment = 64;

std::string megabytes(size_t bytes) {
  char s[32];
  std::snprintf(s, sizeof s, "%.2f MB", static_cast<double>(bytes) / 1e6);
  return s;
}

}  // namespace

WeightCache::WeightCache(const std::string& directory, uint64_t model_checksum,
                         const std::string& engine_version)
    : directory_(directory),
      model_checksum_(model_checksum),
      build_key_(packed_build_key(engine_version)) {
  path_ = (std::filesystem::path(directory) / packed_weight_file_name(model_checksum, build_key_))
              .string();
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) {
    status_ = "not written yet";
    return;
  }
  try {
    PackedWeightFile& file =
        files_.emplace_back(PackedWeightFile::open(path_, model_checksum_, build_key_));
    for (const PackedWeight& w : file.weights()) {
      Entry& e = entries_.emplace_back(w.value, w.source_key, w.packed_key, dnnl::memory::desc(),
                                       const_cast<uint8_t*>(w.bytes.data()));
      e.size = w.bytes.size();
      e.from_file = true;
    }
    status_ = "read";
  } catch (const Error& e) {
    files_.clear();
    status_ = std::string("not used (") + e.what() + "), packed again";
    unsaved_ = true;  // replace it even if nothing new is packed
  }
}

uint8_t* WeightCache::take(size_t bytes) {
  bytes = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (pages_.empty() || pages_.back().size() - used_ < bytes) {
    pages_.emplace_back(std::max(bytes, kBlockBytes));
    used_ = 0;
  }
  uint8_t* p = pages_.back().data() + used_;
  used_ += bytes;
  return p;
}

const void* WeightCache::get(uint32_t value, const float* src, const dnnl::memory::desc& src_desc,
                             const dnnl::memory::desc& want, const dnnl::engine& engine,
                             bool copy_same_layout) {
  // The original's bytes are read (here, or by the reorder below) only
  // from a model file verified whole.
  if (want == src_desc && !copy_same_layout) {
    if (file_) file_->verify_constant(value);
    return src;
  }
  const std::optional<uint64_t> source_key = layout_key(src_desc), packed_key = layout_key(want);
  const size_t size = want.get_size();
  Entry* entry = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (Entry& e : entries_) {
      if (e.value != value || e.source_key != source_key.value_or(0)) continue;
      const bool same = e.from_file ? packed_key && e.packed_key == *packed_key && e.size == size
                                    : e.desc == want;
      if (same) entry = &e;
    }
    if (entry != nullptr && entry->from_file) {
      if (!entry->used) file_bytes_used_ += size;
      entry->used = true;
      return entry->bytes;
    }
    if (entry == nullptr) {
      entry = &entries_.emplace_back(value, source_key.value_or(0), packed_key.value_or(0), want,
                                     take(size));
      entry->size = size;
      unsaved_ = unsaved_ || (source_key && packed_key);
    }
  }
  // The reorder runs outside the lock, so that kernels prepared
  // concurrently reorder their weights at once.
  if (file_) file_->verify_constant(value);
  std::call_once(entry->reordered, [&] {
    const auto start = std::chrono::steady_clock::now();
    if (want == src_desc) {  // a copy (copy_same_layout): no reorder to create
      std::memcpy(entry->bytes, src, size);
    } else {
      dnnl::memory from(src_desc, engine, const_cast<float*>(src));
      dnnl::memory to(want, engine, entry->bytes);
      dnnl::stream stream(engine);
      dnnl::reorder(from, to).execute(stream, from, to);
      stream.wait();
    }
    reordered_bytes_ += size;
    reorder_nanoseconds_ += std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::steady_clock::now() - start)
                                .count();
    std::lock_guard<std::mutex> lock(mutex_);
    entry->done = true;
  });
  return entry->bytes;
}

namespace {

// The layout of a constant copied as it is stored (resident_copy()).
dnnl::memory::desc plain_layout(size_t count) {
  return dnnl::memory::desc({static_cast<dnnl::memory::dim>(count)}, dnnl::memory::data_type::f32,
                            dnnl::memory::format_tag::a);
}

}  // namespace

const float* WeightCache::resident_copy(uint32_t value, const float* src, size_t count,
                                        const dnnl::engine& engine) {
  const dnnl::memory::desc plain = plain_layout(count);
  return static_cast<const float*>(get(value, src, plain, plain, engine, true));
}

bool WeightCache::packed(uint32_t value, size_t count) const {
  const dnnl::memory::desc plain = plain_layout(count);
  const uint64_t plain_key = layout_key(plain).value_or(0);
  std::lock_guard<std::mutex> lock(mutex_);
  return std::any_of(entries_.begin(), entries_.end(), [&](const Entry& e) {
    return e.value == value && (e.from_file ? e.packed_key != plain_key : e.desc != plain);
  });
}

void WeightCache::save() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (directory_.empty() || !unsaved_) return;
  // Every finished entry with persistable layouts; one another session is
  // still reordering waits for the next save.
  std::vector<PackedWeight> weights;
  bool all = true;
  for (const Entry& e : entries_) {
    if (e.source_key == 0 || e.packed_key == 0) continue;
    if (!e.from_file && !e.done) {
      all = false;
      continue;
    }
    weights.push_back({e.value, e.source_key, e.packed_key, {e.bytes, e.size}});
  }
  size_t bytes = 0;
  std::vector<uint32_t> values;
  for (const PackedWeight& w : weights) {
    bytes += w.bytes.size();
    values.push_back(w.value);
  }
  try {
    // The model file's parts checksum (0 without a model file: a later
    // load verifies it whole). Every byte it reads was verified at load:
    // the constants a load left unread all have entries here.
    const uint64_t parts = file_ ? file_->parts_checksum(values) : 0;
    std::filesystem::create_directories(directory_);
    write_packed_weight_file(path_, model_checksum_, build_key_, parts, weights);
    // After a file that was refused, its reason stays in front.
    status_ = (status_.starts_with("not used") ? status_ + "; " : "") + "written (" +
              std::to_string(weights.size()) + " weights, " + megabytes(bytes) + ")";
    unsaved_ = !all;
    // Writing means this build packed the model: files of earlier builds
    // of it are dead weight from here on (an upgrade leaves one per
    // version otherwise).
    if (const size_t removed =
            remove_stale_packed_weight_files(directory_, model_checksum_, build_key_)) {
      status_ += "; removed " + std::to_string(removed) + " stale file" +
                 (removed == 1 ? "" : "s") + " of this model";
    }
  } catch (const std::exception& e) {
    // Not retried: each plan would pay for the attempt again.
    status_ =
        (status_.starts_with("not used") ? status_ + "; " : "") + "not written (" + e.what() + ")";
    unsaved_ = false;
  }
}

void WeightCache::check_file_unchanged() const {
  // files_ is set at construction only: no lock needed to read it.
  for (const PackedWeightFile& f : files_) f.check_unchanged();
}

std::optional<rvlt::PartsChecksum> WeightCache::model_parts() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (files_.empty()) return std::nullopt;
  rvlt::PartsChecksum parts{files_.front().model_parts_checksum(), {}};
  for (const PackedWeight& w : files_.front().weights()) parts.deferred.push_back(w.value);
  std::sort(parts.deferred.begin(), parts.deferred.end());
  parts.deferred.erase(std::unique(parts.deferred.begin(), parts.deferred.end()),
                       parts.deferred.end());
  return parts;
}

size_t WeightCache::reordered_bytes() const {
  return reordered_bytes_.load();
}

double WeightCache::reorder_seconds() const {
  return static_cast<double>(reorder_nanoseconds_.load()) * 1e-9;
}

size_t WeightCache::file_bytes_used() const {
  return file_bytes_used_.load();
}

std::string WeightCache::file_status() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return status_;
}

}  // namespace ravlt::runtime::cpu
