#include <algorithm>

#include "ravlt/error.h"
#include "runtime/cpu/cpu_context.h"

namespace ravlt::runtime::cpu {
namespace {

// The packed weights share blocks of 64 MB (host_pages.h: mappings on 4 KB
// pages), one mapping for many weights rather than a heap block or a
// mapping each. A block is address space until touched: only what the
// weights fill becomes resident.
constexpr size_t kBlockBytes = size_t{64} << 20;
constexpr size_t kAlignment = 64;

}  // namespace

uint8_t* WeightCache::take(size_t bytes) {
  bytes = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (pages_.empty() || pages_.back().size() - used_ < bytes) {
    pages_.emplace_back(std::max(bytes, kBlockBytes));
    used_ = 0;
  }
  uint8_t* p = pages_.back().data() + used_;
  used_ += bytes;
  return p;
}

const void* WeightCache::get(uint32_t value, const float* src, const dnnl::memory::desc& src_desc,
                             const dnnl::memory::desc& want, const dnnl::engine& engine) {
  if (want == src_desc) return src;
  Entry* entry = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (Entry& e : entries_) {
      if (e.value == value && e.desc == want) entry = &e;
    }
    if (entry == nullptr) entry = &entries_.emplace_back(value, want, take(want.get_size()));
  }
  // The reorder runs outside the lock, so that kernels prepared
  // concurrently reorder their weights at once.
  std::call_once(entry->reordered, [&] {
    dnnl::memory from(src_desc, engine, const_cast<float*>(src));
    dnnl::memory to(want, engine, entry->bytes);
    dnnl::stream stream(engine);
    dnnl::reorder(from, to).execute(stream, from, to);
    stream.wait();
    reordered_bytes_ += want.get_size();
  });
  return entry->bytes;
}

size_t WeightCache::reordered_bytes() const {
  return reordered_bytes_.load();
}

}  // namespace ravlt::runtime::cpu
