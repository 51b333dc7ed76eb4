#include "runtime/cpu/cpu_backend.h"

#include <omp.h>

#include "ravlt/error.h"
#include "runtime/cpu/kernels.h"

namespace ravlt::runtime::cpu {
namespace {

// One entry per runtime::Op, in its order.
constexpr KernelFactory kFactories[] = {
#define RAVLT_OP(Name, snake, ...) make_##snake,
#include "formats/rvlt/ops.def"
#undef RAVLT_OP
};
static_assert(sizeof(kFactories) / sizeof(kFactories[0]) == kOpCount,
              "every op needs a CPU kernel factory");

}  // namespace

std::unique_ptr<Kernel> make_kernel(const PrepareArgs& args) {
  return kFactories[static_cast<size_t>(args.node.op)](args);
}

CpuBackend::CpuBackend(std::shared_ptr<WeightCache> weights, int threads) {
  context_.weights = std::move(weights);
  context_.threads = threads > 0 ? threads : default_threads();
}

std::unique_ptr<Kernel> CpuBackend::prepare(const Graph& graph, const Node& node,
                                            const std::vector<Shape>& shapes) {
  try {
    return make_kernel(PrepareArgs{graph, node, shapes, context_});
  } catch (const dnnl::error& e) {
    throw Error("node '" + node.name + "' (" + op_name(node.op) + "): oneDNN: " + e.what());
  }
}

void CpuBackend::begin_run(int threads) {
  omp_set_num_threads(threads > 0 ? threads : context_.threads);
}

int default_threads() {
  return omp_get_num_procs();
}

}  // namespace ravlt::runtime::cpu
