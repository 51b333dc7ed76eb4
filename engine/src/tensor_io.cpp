#include "ravlt/tensor_io.h"

#include "formats/npy.h"
#include "formats/npz.h"

namespace ravlt {

Tensor load_npy(const std::string& path) {
  NpyArray a = read_npy(path);
  return {std::move(a.shape), std::move(a.data)};
}

void save_npy(const std::string& path, const Tensor& tensor) {
  write_npy(path, tensor.shape, tensor.data.data());
}

void save_npz(const std::string& path, const std::vector<Output>& outputs) {
  std::vector<NpzMember> members;
  for (const Output& o : outputs) members.push_back({o.name, o.shape, o.data.data()});
  write_npz(path, members);
}

}  // namespace ravlt
