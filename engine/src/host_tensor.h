// A float32 tensor in host memory, row-major, used while converting.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ravlt::engine {

struct HostTensor {
  std::vector<int64_t> shape;
  std::vector<float> data;

  int64_t dim(size_t i) const { return shape.at(i); }
  size_t numel() const { return data.size(); }
};

/// "(64, 3, 3, 3)".
std::string shape_string(const std::vector<int64_t>& shape);

}  // namespace ravlt::engine
