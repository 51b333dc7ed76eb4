#include "formats/torch/zip_archive.h"

#include <zip.h>

#include <filesystem>
#include <memory>
#include <unordered_set>

#include "formats/fuzzing.h"
#include "ravlt/error.h"

namespace ravlt::torch {
namespace {

// A compressed entry may expand at most this much: ordinary compressors stay
// far below it, bombs go far above. torch.save stores entries uncompressed.
constexpr uint64_t kMaxCompressionRatio = 200;

std::string zip_error_string(int code) {
  // libzip's words for the two a crafted archive meets most, made specific.
  if (code == ZIP_ER_EXISTS) return "two entries have the same name";
  if (code == ZIP_ER_INCONS) {
    return "inconsistent (entries overlap, or a local header does not match the central "
           "directory)";
  }
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  std::string s = zip_error_strerror(&error);
  zip_error_fini(&error);
  return s;
}

// Why reading an entry failed, in words a user can act on.
std::string read_failure(zip_file_t* file) {
  zip_error_t* error = zip_file_get_error(file);
  if (zip_error_code_zip(error) == ZIP_ER_CRC) {
    return "its data does not match its CRC: the file is corrupt, or the entry's declared size "
           "is wrong";
  }
  return zip_error_strerror(error);
}

}  // namespace

ZipArchive::ZipArchive(const std::string& path) : path_(path) {
  int code = 0;
  archive_ = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code);
  if (archive_ == nullptr)
    throw Error(path + ": not a valid zip archive: " + zip_error_string(code));
  std::error_code ec;
  file_size_ = std::filesystem::file_size(path, ec);
  const zip_int64_t count = zip_get_num_entries(archive_, 0);
  std::unordered_set<std::string> seen;
  for (zip_int64_t i = 0; i < count; ++i) {
    const char* name = zip_get_name(archive_, static_cast<zip_uint64_t>(i), ZIP_FL_ENC_RAW);
    if (name == nullptr) {
      zip_close(archive_);
      throw Error(path + ": zip entry " + std::to_string(i) + " has no readable name");
    }
    if (!seen.insert(name).second) {
      zip_close(archive_);
      throw Error(path + ": zip entry '" + std::string(name) + "' appears twice");
    }
    names_.emplace_back(name);
  }
}

ZipArchive::~ZipArchive() {
  if (archive_ != nullptr) zip_discard(archive_);
}

std::optional<uint64_t> ZipArchive::find(const std::string& name) const {
  const zip_int64_t i = zip_name_locate(archive_, name.c_str(), ZIP_FL_ENC_RAW);
  if (i < 0) return std::nullopt;
  return static_cast<uint64_t>(i);
}

uint64_t ZipArchive::size(uint64_t index) const {
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_stat_index(archive_, index, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE)) {
    throw Error(path_ + ": cannot read the size of zip entry " + std::to_string(index));
  }
  return st.size;
}

void ZipArchive::read(uint64_t index, std::vector<uint8_t>& out) const {
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_stat_index(archive_, index, 0, &st) != 0) {
    throw Error(path_ + ": cannot stat zip entry " + std::to_string(index));
  }
  const std::string name = index < names_.size() ? names_[index] : std::to_string(index);
  const std::string label = path_ + ": zip entry '" + name + "'";
  if (st.comp_method == ZIP_CM_STORE) {
    if (st.size != st.comp_size || st.size > file_size_) {
      throw Error(label + " declares " + std::to_string(st.size) +
                  " bytes, more than the archive holds");
    }
  } else if (st.size > kMaxCompressionRatio * st.comp_size + (1u << 20)) {
    throw Error(label + " would expand " + std::to_string(st.comp_size) + " bytes to " +
                std::to_string(st.size) + " (a zip bomb?)");
  }
  // The fuzzing build reads stored entries raw, without their CRC.
  const zip_flags_t flags = kFuzzingBuild && st.comp_method == ZIP_CM_STORE ? ZIP_FL_COMPRESSED : 0;
  std::unique_ptr<zip_file_t, int (*)(zip_file_t*)> file(zip_fopen_index(archive_, index, flags),
                                                         zip_fclose);
  if (!file) throw Error(label + ": cannot open: " + zip_strerror(archive_));
  out.resize(st.size);
  uint64_t done = 0;
  while (done < st.size) {
    const zip_int64_t n = zip_fread(file.get(), out.data() + done, st.size - done);
    if (n < 0) throw Error(label + ": " + read_failure(file.get()));
    if (n == 0) {
      throw Error(label + " is truncated: " + std::to_string(done) + " of " +
                  std::to_string(st.size) + " bytes");
    }
    done += static_cast<uint64_t>(n);
  }
  // Read past the end so libzip checks the CRC and notices extra data.
  uint8_t extra;
  const zip_int64_t n = zip_fread(file.get(), &extra, 1);
  if (n < 0) throw Error(label + ": " + read_failure(file.get()));
  if (n > 0) throw Error(label + " holds more bytes than it declares");
}

}  // namespace ravlt::torch
