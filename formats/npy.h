// NumPy .npy files of float32 arrays (format versions 1.0 to 3.0), the
// tensor format of `ravlt run`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ravlt {

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;  // C order
};

/// Reads a little-endian float32 ('<f4'), C-order array. Throws
/// ravlt::Error naming the file and what is wrong with it.
NpyArray read_npy(const std::string& path);

/// The bytes of a version 1.0 '<f4' .npy file before its data: magic,
/// version, header length and the header, padded to 64 bytes.
std::string npy_header(const std::vector<int64_t>& shape);

/// Writes `data` with `shape` as a version 1.0 '<f4' array.
void write_npy(const std::string& path, const std::vector<int64_t>& shape, const float* data);

}  // namespace ravlt
