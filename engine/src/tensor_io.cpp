#include "ravlt/tensor_io.h"

#include "formats/npy.h"

namespace ravlt {

Tensor load_npy(const std::string& path) {
  NpyArray a = read_npy(path);
  return {std::move(a.shape), std::move(a.data)};
}

void save_npy(const std::string& path, const Tensor& tensor) {
  write_npy(path, tensor.shape, tensor.data.data());
}

}  // namespace ravlt
