// Writer of .rvlt files: see rvlt.fbs for the layout.
#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "formats/rvlt/model_file.h"
#include "ravlt/error.h"

namespace ravlt::rvlt {
namespace {

uint64_t align_up(uint64_t n) {
  return (n + kDataAlignment - 1) / kDataAlignment * kDataAlignment;
}

// Writes to a file while hashing every byte, so the footer costs no re-read.
class HashingWriter {
 public:
  explicit HashingWriter(const std::string& path) : path_(path) {
    file_ = std::fopen(path.c_str(), "wb");
    if (file_ == nullptr) throw Error(path + ": cannot create: " + std::strerror(errno));
    state_ = XXH3_createState();
    XXH3_64bits_reset(state_);
  }
  ~HashingWriter() {
    if (file_ != nullptr) std::fclose(file_);
    XXH3_freeState(state_);
  }
  void write(const void* data, size_t n, bool hash = true) {
    if (n == 0) return;
    if (std::fwrite(data, 1, n, file_) != n) {
      throw Error(path_ + ": write failed: " + std::strerror(errno));
    }
    if (hash) XXH3_64bits_update(state_, data, n);
  }
  void pad_to(uint64_t offset, uint64_t& position) {
    static const uint8_t zeros[kDataAlignment] = {};
    while (position < offset) {
      const uint64_t n = std::min<uint64_t>(offset - position, kDataAlignment);
      write(zeros, n);
      position += n;
    }
  }
  uint64_t digest() const { return XXH3_64bits_digest(state_); }
  void close() {
    const int rc = std::fclose(file_);
    file_ = nullptr;
    if (rc != 0) throw Error(path_ + ": close failed: " + std::strerror(errno));
  }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  XXH3_state_t* state_ = nullptr;
};

}  // namespace

uint64_t file_checksum(std::span<const uint8_t> bytes) {
  return XXH3_64bits(bytes.data(), bytes.size());
}

void write_model_file(const std::string& path, fb::ModelT& model,
                      const std::vector<std::vector<uint8_t>>& constant_bytes,
                      const ProgressFn& progress) {
  if (!model.graph) throw Error("write_model_file: model has no graph");
  auto& tensors = model.graph->tensors;
  if (constant_bytes.size() != tensors.size()) {
    throw Error("write_model_file: constant_bytes has " + std::to_string(constant_bytes.size()) +
                " entries for " + std::to_string(tensors.size()) + " tensors");
  }
  // Place every constant at the next aligned offset of the data section.
  uint64_t data_size = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    auto& t = *tensors[i];
    if (t.constant) {
      data_size = align_up(data_size);
      t.data_offset = data_size;
      t.data_length = constant_bytes[i].size();
      data_size += t.data_length;
    } else {
      t.data_offset = 0;
      t.data_length = 0;
    }
  }
  data_size = align_up(data_size);
  model.data_size = data_size;
  model.format_major = kFormatMajor;
  model.format_minor = kFormatMinor;

  flatbuffers::FlatBufferBuilder builder(1 << 16);
  builder.FinishSizePrefixed(fb::Model::Pack(builder, &model), fb::ModelIdentifier());

  const std::string temp_path = path + ".partial";
  try {
    HashingWriter out(temp_path);
    out.write(builder.GetBufferPointer(), builder.GetSize());
    uint64_t position = builder.GetSize();
    const uint64_t data_start = align_up(position);
    out.pad_to(data_start, position);
    const uint64_t total = data_start + data_size;
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (!tensors[i]->constant) continue;
      out.pad_to(data_start + tensors[i]->data_offset, position);
      out.write(constant_bytes[i].data(), constant_bytes[i].size());
      position += constant_bytes[i].size();
      if (progress) progress(position, total);
    }
    out.pad_to(total, position);
    const uint64_t digest = out.digest();
    uint8_t footer[kFooterSize];
    std::memcpy(footer, kFooterMagic, 8);
    for (int b = 0; b < 8; ++b) footer[8 + b] = static_cast<uint8_t>(digest >> (8 * b));
    out.write(footer, sizeof footer, /*hash=*/false);
    out.close();
  } catch (...) {
    std::remove(temp_path.c_str());
    throw;
  }
  if (std::rename(temp_path.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(temp_path.c_str());
    throw Error(path + ": cannot move the written file into place: " + std::strerror(err));
  }
}

}  // namespace ravlt::rvlt
