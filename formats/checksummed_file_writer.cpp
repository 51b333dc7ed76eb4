#include "formats/checksummed_file_writer.h"

#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "formats/little_endian.h"
#include "ravlt/error.h"

namespace ravlt {

ChecksummedFileWriter::ChecksummedFileWriter(std::string path, ChecksumScheme scheme)
    : path_(std::move(path)),
      temp_path_(path_ + ".partial." + std::to_string(getpid())),
      scheme_(scheme) {
  file_ = std::fopen(temp_path_.c_str(), "wb");
  if (file_ == nullptr) throw Error(path_ + ": cannot create: " + std::strerror(errno));
  state_ = XXH3_createState();
  XXH3_64bits_reset(state_);
}

ChecksummedFileWriter::~ChecksummedFileWriter() {
  if (file_ != nullptr) std::fclose(file_);
  if (!committed_) std::remove(temp_path_.c_str());
  XXH3_freeState(state_);
}

void ChecksummedFileWriter::write_unhashed(const void* data, size_t n) {
  if (n == 0) return;
  if (std::fwrite(data, 1, n, file_) != n) {
    throw Error(path_ + ": write failed: " + std::strerror(errno));
  }
  position_ += n;
}

void ChecksummedFileWriter::hash(const uint8_t* data, size_t n) {
  if (scheme_ == ChecksumScheme::kWhole) {
    XXH3_64bits_update(state_, data, n);
    return;
  }
  while (n > 0) {  // streamed, each part's digest is its one-shot XXH3-64
    const size_t take =
        static_cast<size_t>(std::min<uint64_t>(n, kChecksumPartBytes - part_filled_));
    XXH3_64bits_update(state_, data, take);
    data += take, n -= take, part_filled_ += take;
    if (part_filled_ == kChecksumPartBytes) {
      part_digests_.push_back(XXH3_64bits_digest(state_));
      XXH3_64bits_reset(state_);
      part_filled_ = 0;
    }
  }
}

void ChecksummedFileWriter::write(const void* data, size_t n) {
  write_unhashed(data, n);
  hash(static_cast<const uint8_t*>(data), n);
}

void ChecksummedFileWriter::pad_to(uint64_t offset) {
  static const uint8_t zeros[4096] = {};
  while (position_ < offset) write(zeros, std::min<uint64_t>(offset - position_, sizeof zeros));
}

void ChecksummedFileWriter::commit(const char (&magic)[8]) {
  if (scheme_ == ChecksumScheme::kParts && part_filled_ > 0) {
    part_digests_.push_back(XXH3_64bits_digest(state_));
  }
  const uint64_t digest = scheme_ == ChecksumScheme::kWhole
                              ? XXH3_64bits_digest(state_)
                              : checksum_of_part_digests(part_digests_);
  const std::vector<uint8_t> table = part_table_from_digests(part_digests_);  // none for kWhole
  write_unhashed(table.data(), table.size());
  uint8_t footer[16];
  std::memcpy(footer, magic, 8);
  store_le(footer + 8, digest, 8);
  write_unhashed(footer, sizeof footer);
  const int rc = std::fclose(file_);
  file_ = nullptr;
  if (rc != 0) throw Error(path_ + ": close failed: " + std::strerror(errno));
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    throw Error(path_ + ": cannot move the written file into place: " + std::strerror(errno));
  }
  committed_ = true;
}

}  // namespace ravlt
