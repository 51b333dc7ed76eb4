#include "runtime/backend.h"

#include "base/half_float.h"
#include "ravlt/error.h"
#include "runtime/host_pages.h"

namespace ravlt::runtime {
namespace {

// Page-backed (host_pages.h): arenas are large and touched at once by a
// plan's first run.
class HostMemory : public BackendMemory {
 public:
  explicit HostMemory(size_t bytes) : pages_(bytes) {}
  uint8_t* data() const override { return pages_.data(); }

 private:
  HostPages pages_;
};

}  // namespace

std::unique_ptr<BackendMemory> allocate_host(size_t bytes) {
  return std::make_unique<HostMemory>(bytes);
}

std::unique_ptr<Kernel> Backend::prepare_fused(const Graph& graph, const Fusion& fusion,
                                               const std::vector<Shape>& shapes) {
  (void)graph, (void)shapes;
  throw Error("this backend fuses no nodes ('" + fusion.kind + "' asked)");
}

void Backend::prepare_all(const Graph& graph, const std::vector<size_t>& steps,
                          const std::vector<Fusion>& fusions, const std::vector<Shape>& shapes,
                          std::vector<std::unique_ptr<Kernel>>& kernels,
                          const std::atomic<bool>* cancel) {
  auto cancelled = [cancel] { return cancel != nullptr && cancel->load(); };
  for (size_t k : steps) {
    if (cancelled()) throw PreparationCancelled{};
    kernels[k] = prepare(graph, graph.nodes()[k], shapes);
  }
  for (const Fusion& f : fusions) {
    if (cancelled()) throw PreparationCancelled{};
    kernels[f.nodes.back()] = prepare_fused(graph, f, shapes);
  }
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
