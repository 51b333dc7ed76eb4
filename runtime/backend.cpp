#include "runtime/backend.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "base/half_float.h"
#include "ravlt/error.h"

namespace ravlt::runtime {
namespace {

constexpr size_t kAlignment = 64;

class HostMemory : public BackendMemory {
 public:
  explicit HostMemory(size_t bytes) {
    const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    data_ =
        static_cast<uint8_t*>(std::aligned_alloc(kAlignment, rounded == 0 ? kAlignment : rounded));
    if (data_ == nullptr)
      throw Error("out of memory allocating " + std::to_string(bytes) + " bytes");
  }
  ~HostMemory() override { std::free(data_); }
  uint8_t* data() const override { return data_; }

 private:
  uint8_t* data_;
};

}  // namespace

std::unique_ptr<BackendMemory> allocate_host(size_t bytes) {
  return std::make_unique<HostMemory>(bytes);
}

std::unique_ptr<BackendMemory> Backend::allocate(size_t bytes) {
  return allocate_host(bytes);
}

void Backend::copy_in(void* backend_dst, DType dst_type, const float* host_src, size_t count) {
  convert_from_float32(dst_type, host_src, backend_dst, count);
}

void Backend::copy_out(float* host_dst, const void* backend_src, DType src_type, size_t count) {
  convert_to_float32(src_type, backend_src, host_dst, count);
}

}  // namespace ravlt::runtime
