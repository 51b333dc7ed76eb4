// Helpers shared by the unit tests.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <stdlib.h>
#include <xxhash.h>

namespace ravlt::test {

inline std::string testdata(const std::string& name) {
  return std::string(RAVLT_TESTDATA) + "/" + name;
}

/// `n` values drawn from N(shift, scale^2): the same for the same seed.
inline std::vector<float> random_vector(size_t n, uint32_t seed, float scale = 1.0f,
                                        float shift = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng) * scale + shift;
  return v;
}

/// ||got - want|| / ||want|| over n values (want all zero: the plain norm).
template <typename Want>
double rel_l2(const float* got, const Want* want, size_t n) {
  double err = 0, norm = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(got[i]) - static_cast<double>(want[i]);
    err += d * d;
    norm += static_cast<double>(want[i]) * static_cast<double>(want[i]);
  }
  return std::sqrt(err / (norm > 0 ? norm : 1));
}

inline std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The part table of `size` bytes at `bytes` (formats/checksum.h's
// ChecksumScheme::kParts), written out from its definition apart from the
// code under test: the little-endian XXH3-64 digests of the consecutive
// 4 MiB parts.
inline std::vector<uint8_t> part_table(const uint8_t* bytes, size_t size) {
  constexpr size_t kPart = size_t{4} << 20;
  std::vector<uint8_t> table;
  for (size_t at = 0; at < size; at += kPart) {
    const uint64_t d = XXH3_64bits(bytes + at, size - at < kPart ? size - at : kPart);
    for (int i = 0; i < 8; ++i) table.push_back(static_cast<uint8_t>(d >> (8 * i)));
  }
  return table;
}

// The checksum by parts of those bytes: XXH3-64 of their part table.
inline uint64_t xxh3_of_part_digests(const uint8_t* bytes, size_t size) {
  const std::vector<uint8_t> table = part_table(bytes, size);
  return XXH3_64bits(table.data(), table.size());
}

inline void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

/// A fresh temporary folder, removed with the object.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "ravlt_test_XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace ravlt::test
