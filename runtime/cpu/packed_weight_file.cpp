#include "runtime/cpu/packed_weight_file.h"

#include <xxhash.h>

#include <cstring>
#include <filesystem>
#include <string_view>

#include "formats/checksummed_file_writer.h"
#include "formats/fuzzing.h"
#include "formats/little_endian.h"
#include "formats/mapped_checksum.h"
#include "ravlt/error.h"

namespace ravlt::runtime::cpu {
namespace {

constexpr char kMagic[8] = {'R', 'V', 'L', 'T', 'P', 'A', 'C', 'K'};
constexpr char kFooterMagic[8] = {'R', 'V', 'L', 'T', 'P', 'K', 'S', '1'};
// 2: the model parts checksum; 3: the footer's checksum by parts (checksum.h).
constexpr uint32_t kFormatVersion = 3;
constexpr uint64_t kHeaderBytes = 64;
constexpr uint64_t kEntryBytes = 40;
constexpr uint64_t kFooterBytes = 16;
constexpr uint64_t kDataAlignment = 4096;  // pages: the data section is mapped
constexpr uint64_t kWeightAlignment = 64;  // oneDNN's preferred alignment

uint64_t align_up(uint64_t n, uint64_t to) {
  return (n + to - 1) / to * to;
}

std::string hex16(uint64_t v) {
  char s[17];
  std::snprintf(s, sizeof s, "%016llx", static_cast<unsigned long long>(v));
  return s;
}

}  // namespace

std::optional<uint64_t> layout_key(const dnnl::memory::desc& desc) {
  const dnnl_memory_desc_t& d = desc.data;
  if (d.format_kind != dnnl_blocked || d.ndims < 0 || d.ndims > DNNL_MAX_NDIMS) return std::nullopt;
  const dnnl_blocking_desc_t& b = d.format_desc.blocking;
  if (b.inner_nblks < 0 || b.inner_nblks > DNNL_MAX_NDIMS) return std::nullopt;
  // Every field that places an element, one int64 each, so that the key
  // does not depend on the struct's padding.
  std::vector<int64_t> f = {d.ndims,
                            d.data_type,
                            d.offset0,
                            b.inner_nblks,
                            static_cast<int64_t>(d.extra.flags),
                            d.extra.compensation_mask};
  for (int i = 0; i < d.ndims; ++i) {
    f.insert(f.end(), {d.dims[i], d.padded_dims[i], d.padded_offsets[i], b.strides[i]});
  }
  for (int i = 0; i < b.inner_nblks; ++i) f.insert(f.end(), {b.inner_blks[i], b.inner_idxs[i]});
  return XXH3_64bits(f.data(), f.size() * sizeof(int64_t));
}

uint64_t packed_build_key(const std::string& engine_version) {
  const dnnl_version_t* v = dnnl_version();
  const std::string build = "ravlt " + engine_version + "; oneDNN " + std::to_string(v->major) +
                            "." + std::to_string(v->minor) + "." + std::to_string(v->patch) + " " +
                            v->hash + "; packed weights " + std::to_string(kFormatVersion);
  return XXH3_64bits(build.data(), build.size());
}

std::string packed_weight_file_name(uint64_t model_checksum, uint64_t build_key) {
  return hex16(model_checksum) + "-" + hex16(build_key) + ".rvltpack";
}

size_t remove_stale_packed_weight_files(const std::string& directory, uint64_t model_checksum,
                                        uint64_t build_key, std::chrono::seconds abandoned_after) {
  namespace fs = std::filesystem;
  // <model>-<build>.rvltpack, and <that>.partial.<pid> while being written
  // (ChecksummedFileWriter).
  const std::string model = hex16(model_checksum) + "-";
  const std::string ours = packed_weight_file_name(model_checksum, build_key);
  auto is_hex = [](std::string_view s) {
    return s.size() == 16 && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
  };
  size_t removed = 0;
  std::error_code ec;
  const auto now = fs::file_time_type::clock::now();
  for (fs::directory_iterator it(directory, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.starts_with(model)) continue;
    const std::string_view rest = std::string_view(name).substr(model.size());
    if (rest.size() < 16 + 9 || !is_hex(rest.substr(0, 16)) || rest.substr(16, 9) != ".rvltpack") {
      continue;
    }
    const std::string_view tail = rest.substr(16 + 9);
    bool stale = false;
    if (tail.empty()) {
      stale = name != ours;  // another build's
    } else if (tail.starts_with(".partial.") && tail.size() > 9 &&
               tail.substr(9).find_first_not_of("0123456789") == std::string_view::npos) {
      std::error_code time_ec;
      const auto written = fs::last_write_time(it->path(), time_ec);
      stale = !time_ec && now - written > abandoned_after;
    }
    std::error_code remove_ec;
    if (stale && fs::remove(it->path(), remove_ec)) ++removed;
  }
  return removed;
}

PackedWeightFile PackedWeightFile::open(const std::string& path, uint64_t model_checksum,
                                        uint64_t build_key) {
  PackedWeightFile file{MappedFile(path)};
  const uint8_t* p = file.file_.data();
  const uint64_t size = file.file_.size();
  auto fail = [&](const std::string& why) { return Error(path + ": " + why); };
  if (size < kHeaderBytes + kFooterBytes || std::memcmp(p, kMagic, 8) != 0) {
    throw fail("not a packed-weight file");
  }
  const uint64_t body = size - kFooterBytes;
  if (std::memcmp(p + body, kFooterMagic, 8) != 0) throw fail("truncated (no footer)");
  if (load_le(p + 8, 4) != kFormatVersion) throw fail("written by another format version");
  if (load_le(p + 16, 8) != model_checksum) throw fail("made for another model");
  if (load_le(p + 24, 8) != build_key) throw fail("made by another engine or oneDNN build");
  const uint64_t count = load_le(p + 12, 4);
  const uint64_t data_offset = load_le(p + 32, 8);
  const uint64_t data_bytes = load_le(p + 40, 8);
  // The data section, then the part table of the checksum (checksum.h).
  if (data_offset % kDataAlignment != 0 || data_offset < kHeaderBytes + count * kEntryBytes ||
      data_offset > body || data_bytes > body - data_offset ||
      body - data_offset - data_bytes !=
          part_table_bytes(data_offset + data_bytes, ChecksumScheme::kParts)) {
    throw fail("corrupt (the data section is not where the header says)");
  }
  // The checksum before any entry is believed: a damaged file is refused
  // whole rather than half used.
  if (!kFuzzingBuild &&
      !checksum_matches(file.file_, data_offset + data_bytes, AfterHashing::kKeepPages,
                        ChecksumScheme::kParts, load_le(p + body + 8, 8))) {
    throw fail("checksum mismatch");
  }
  file.model_parts_checksum_ = load_le(p + 48, 8);
  for (uint64_t i = 0; i < count; ++i) {
    const uint8_t* e = p + kHeaderBytes + i * kEntryBytes;
    const uint64_t offset = load_le(e + 24, 8), bytes = load_le(e + 32, 8);
    if (offset % kWeightAlignment != 0 || offset > data_bytes || bytes > data_bytes - offset) {
      throw fail("corrupt (weight " + std::to_string(i) + " lies outside the data section)");
    }
    file.weights_.push_back({static_cast<uint32_t>(load_le(e, 4)),
                             load_le(e + 8, 8),
                             load_le(e + 16, 8),
                             {p + data_offset + offset, bytes}});
  }
  return file;
}

void write_packed_weight_file(const std::string& path, uint64_t model_checksum, uint64_t build_key,
                              uint64_t model_parts_checksum,
                              const std::vector<PackedWeight>& weights) {
  std::vector<uint8_t> head(kHeaderBytes + weights.size() * kEntryBytes);
  uint64_t offset = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    uint8_t* e = head.data() + kHeaderBytes + i * kEntryBytes;
    store_le(e, weights[i].value, 4);
    store_le(e + 8, weights[i].source_key, 8);
    store_le(e + 16, weights[i].packed_key, 8);
    store_le(e + 24, offset, 8);
    store_le(e + 32, weights[i].bytes.size(), 8);
    offset = align_up(offset + weights[i].bytes.size(), kWeightAlignment);
  }
  const uint64_t data_offset = align_up(head.size(), kDataAlignment);
  std::memcpy(head.data(), kMagic, 8);
  store_le(head.data() + 8, kFormatVersion, 4);
  store_le(head.data() + 12, weights.size(), 4);
  store_le(head.data() + 16, model_checksum, 8);
  store_le(head.data() + 24, build_key, 8);
  store_le(head.data() + 32, data_offset, 8);
  store_le(head.data() + 40, offset, 8);
  store_le(head.data() + 48, model_parts_checksum, 8);
  ChecksummedFileWriter out(path, ChecksumScheme::kParts);
  out.write(head.data(), head.size());
  out.pad_to(data_offset);
  for (const PackedWeight& w : weights) {
    out.pad_to(align_up(out.position(), kWeightAlignment));
    out.write(w.bytes.data(), w.bytes.size());
  }
  out.pad_to(data_offset + offset);
  out.commit(kFooterMagic);
}

}  // namespace ravlt::runtime::cpu
