#include <cstdlib>

#include "ravlt/error.h"
#include "runtime/cpu/cpu_context.h"

namespace ravlt::runtime::cpu {

const void* WeightCache::get(uint32_t value, const float* src, const dnnl::memory::desc& src_desc,
                             const dnnl::memory::desc& want, const dnnl::engine& engine) {
  if (want == src_desc) return src;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const Entry& e : entries_) {
    if (e.value == value && e.desc == want) return e.bytes.get();
  }
  const size_t size = want.get_size();
  auto* raw = static_cast<uint8_t*>(std::aligned_alloc(64, (size + 63) / 64 * 64));
  if (raw == nullptr) throw Error("out of memory reordering weights");
  Entry e{value, want, {raw, [](uint8_t* p) { std::free(p); }}};
  dnnl::memory from(src_desc, engine, const_cast<float*>(src));
  dnnl::memory to(want, engine, raw);
  dnnl::stream stream(engine);
  dnnl::reorder(from, to).execute(stream, from, to);
  stream.wait();
  reordered_bytes_ += size;
  entries_.push_back(std::move(e));
  return raw;
}

size_t WeightCache::reordered_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return reordered_bytes_;
}

}  // namespace ravlt::runtime::cpu
