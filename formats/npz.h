// NumPy .npz archives: several named float32 arrays in one file, as
// numpy.savez writes them (a zip archive of NAME.npy members, stored
// uncompressed), readable with numpy.load.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ravlt {

struct NpzMember {
  std::string name;  // the array's key in numpy.load's result (".npy" is added)
  std::vector<int64_t> shape;
  const float* data = nullptr;  // C order, product(shape) values
};

/// Writes `members` to `path` atomically (a temporary file renamed into
/// place). Throws ravlt::Error naming the file on failure.
void write_npz(const std::string& path, const std::vector<NpzMember>& members);

}  // namespace ravlt
