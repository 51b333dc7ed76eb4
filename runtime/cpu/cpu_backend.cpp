#include "runtime/cpu/cpu_backend.h"

#include <omp.h>

#include <exception>

#include "ravlt/error.h"
#include "runtime/cpu/depthwise_conv2d.h"
#include "runtime/cpu/fused_ffn.h"
#include "runtime/cpu/gemm_primitive.h"
#include "runtime/cpu/kernels.h"
#include "runtime/preparation_order.h"

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

// oneDNN's name for an instruction set it reports (messages only).
const char* cpu_isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41:
      return "SSE4.1";
    case dnnl::cpu_isa::avx:
      return "AVX";
    case dnnl::cpu_isa::avx2:
      return "AVX2";
    case dnnl::cpu_isa::avx2_vnni:
      return "AVX2 with VNNI";
    case dnnl::cpu_isa::avx512_core:
      return "AVX-512";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "AVX-512 with VNNI";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "AVX-512 with AVX512_BF16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "AVX-512 with AMX";
    default:
      return "another instruction set";
  }
}

}  // namespace

std::unique_ptr<Kernel> make_kernel(const PrepareArgs& args) {
  return kFactories[static_cast<size_t>(args.node.op)](args);
}

CpuBackend::CpuBackend(std::shared_ptr<WeightCache> weights, int threads, DType precision,
                       bool float32_interface) {
  std::string why;
  if (precision == DType::kBFloat16 && !cpu_bf16_support(&why)) {
    throw Error("precision bf16 on the CPU: " + why);
  }
  if (precision != DType::kFloat32 && precision != DType::kBFloat16) {
    throw Error(std::string("precision ") + dtype_short_name(precision).data() +
                " runs on the CUDA device only (the CPU computes in fp32 or bf16)");
  }
  context_.weights = std::move(weights);
  context_.threads = threads > 0 ? threads : default_threads();
  context_.precision = precision;
  context_.float32_interface = float32_interface;
  context_.stored_weight_gemms = &stored_weight_gemms_;
}

DType CpuBackend::value_dtype(const Graph& graph, uint32_t value) const {
  return context_.value_dtype(graph, value);
}

bool cpu_bf16_support(std::string* why) {
  // oneDNN's own view of the CPU: its effective ISA already accounts for
  // DNNL_MAX_CPU_ISA, which the tests use to stand in for an older CPU.
  const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
  const bool ok = isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
  if (!ok && why != nullptr) {
    *why = std::string("this CPU has neither AVX512_BF16 nor AMX-BF16 (oneDNN runs it as ") +
           cpu_isa_name(isa) + "); use --precision fp32";
  }
  return ok;
}

std::unique_ptr<Kernel> CpuBackend::prepare(const Graph& graph, const Node& node,
                                            const std::vector<Shape>& shapes) {
  try {
    return make_kernel(PrepareArgs{graph, node, shapes, context_});
  } catch (const dnnl::error& e) {
    throw Error("node '" + node.name + "' (" + op_name(node.op) + "): oneDNN: " + e.what());
  }
}

std::vector<Fusion> CpuBackend::fuse(const Graph& graph, const std::vector<size_t>& steps,
                                     const std::vector<Shape>& shapes,
                                     const std::vector<int>& readers) {
  if (!fusing_) return {};
  std::vector<Fusion> found = find_ffn_fusions(graph, steps, shapes, readers, context_);
  for (Fusion& f : find_slice_conv_fusions(graph, steps, shapes, readers, context_)) {
    found.push_back(std::move(f));
  }
  return found;
}

std::unique_ptr<Kernel> CpuBackend::prepare_fused(const Graph& graph, const Fusion& fusion,
                                                  const std::vector<Shape>& shapes) {
  const bool ffn = fusion.kind == kFusedFfnKind && fusion.nodes.size() == 3;
  const bool slice_conv = fusion.kind == kSliceConvKind && fusion.nodes.size() == 2;
  if (!ffn && !slice_conv) return Backend::prepare_fused(graph, fusion, shapes);
  try {
    if (slice_conv) return make_slice_conv(graph, fusion, shapes, context_);
    return make_fused_ffn(graph, fusion, shapes, context_);
  } catch (const dnnl::error& e) {
    throw Error("nodes '" + graph.nodes()[fusion.nodes.front()].name + "' .. '" +
                graph.nodes()[fusion.nodes.back()].name + "' (" + fusion.kind +
                "): oneDNN: " + e.what());
  }
}

void CpuBackend::prepare_all(const Graph& graph, const std::vector<size_t>& steps,
                             const std::vector<Fusion>& fusions, const std::vector<Shape>& shapes,
                             std::vector<std::unique_ptr<Kernel>>& kernels,
                             const std::atomic<bool>* cancel) {
  // Each kernel's constructor touches only its own nodes, oneDNN (whose
  // primitive creation is thread-safe) and the weight cache (locked). A
  // reorder inside runs on its caller's thread alone (nested parallel
  // regions are off), so one worker per node (or fusion) is the whole split.
  // Two passes (preparation_order.h): the repeats of a kind once its
  // primitives exist.
  const PreparationOrder order = preparation_order(graph, steps, fusions, shapes);
  std::vector<std::exception_ptr> errors(steps.size() + fusions.size());
  // The constants a node's kernel reads as it runs, copied by the thread
  // that prepared it (constant()), so that the cache file saved below
  // holds them too.
  const auto copy_constants = [&](size_t node) {
    for (const uint32_t v : graph.nodes()[node].inputs) {
      if (graph.values()[v].constant) constant(graph, v);
    }
  };
  for (const std::vector<size_t>* pass : {&order.first, &order.repeats}) {
    const auto count = static_cast<int64_t>(pass->size());
#pragma omp parallel for schedule(dynamic, 1) num_threads(context_.threads)
    for (int64_t i = 0; i < count; ++i) {
      const size_t job = (*pass)[static_cast<size_t>(i)];
      if (cancel != nullptr && cancel->load()) continue;
      // oneDNN fixes a convolution's thread count when it creates it, from
      // omp_get_max_threads() on the creating thread, and runs it with that
      // many whatever begin_run() sets later (its matmuls take the count
      // at each run). Inside this region that is the process's default
      // (all cores), not the session's count: a one-thread session's
      // convolutions would start a second thread (its team of one is not a
      // nested region), and on a larger machine a two-thread session's
      // would take every core. Set here, per thread of the team.
      omp_set_num_threads(context_.threads);
      try {
        if (job < steps.size()) {
          kernels[steps[job]] = prepare(graph, graph.nodes()[steps[job]], shapes);
          copy_constants(steps[job]);
        } else {
          const Fusion& f = fusions[job - steps.size()];
          kernels[f.nodes.back()] = prepare_fused(graph, f, shapes);
          for (const size_t k : f.nodes) copy_constants(k);
        }
      } catch (...) {
        errors[job] = std::current_exception();
      }
    }
  }
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  if (cancel != nullptr && cancel->load()) throw PreparationCancelled{};
  // What this plan packed, for the next process (a no-op without a cache
  // directory or when nothing new was packed).
  context_.weights->save();
}

void CpuBackend::set_weight_packing(bool on, bool after_first_run) {
  // With a cache directory the packing is kept for the next process (and
  // costs nothing once the file is read): done by the plan, not deferred.
  const bool cached = context_.weights && !context_.weights->file_path().empty();
  // Below AVX-512 every GEMM packs its weight all the same: nothing to
  // defer, and the plan packs as if asked (reading nothing in the file as
  // it runs: constant()).
  deferring_ = on && after_first_run && context_.precision == DType::kFloat32 && !cached &&
               gemm_reads_stored_weights(context_.engine);
  context_.pack_weights = on && !deferring_;
}

bool CpuBackend::take_deferred_weights() {
  // Below AVX-512 every GEMM packs its weight all the same: nothing to defer.
  return stored_weight_gemms_.exchange(0) > 0 && deferring_;
}

void CpuBackend::end_packing_deferral() {
  if (!deferring_) return;
  deferring_ = false;
  context_.pack_weights = true;
}

void CpuBackend::begin_run(int threads) {
  omp_set_num_threads(threads > 0 ? threads : context_.threads);
  // Packed weights read from a cache file are read in its mapping.
  if (context_.weights) context_.weights->check_file_unchanged();
}

const void* CpuBackend::constant(const Graph& graph, uint32_t value) {
  const Value& v = graph.values()[value];
  // A weight packed for its kernel: the kernel reads its copy, not this.
  if (context_.weights &&
      context_.weights->packed(value, static_cast<size_t>(element_count(v.shape)))) {
    return v.data;
  }
  // A copy, or (in a plan that reads weights in place) the mapped bytes,
  // verified first where the load left them to a cache file's copy.
  return stored_constant(graph, value, context_);
}

int default_threads() {
  return omp_get_num_procs();
}

}  // namespace ravlt::runtime::cpu
