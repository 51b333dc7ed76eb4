#include "runtime/cpu/gemm_rate.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <dnnl.hpp>
#include <string>
#include <vector>

#include "ravlt/error.h"
#include "runtime/cpu/cpu_backend.h"

namespace ravlt::runtime::cpu {

struct GemmRateProbe::State {
  int threads;
  int n;
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  dnnl::matmul matmul;
  dnnl::memory ma, mb, mc;  // oneDNN's own buffers

  void once() {
    // Sessions set the thread count per run; so does the probe.
    omp_set_num_threads(threads);
    matmul.execute(stream, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}});
    stream.wait();
  }
};

namespace {

// Every element of `m` (float32 or bfloat16) set to 1.
void fill_ones(const dnnl::memory& m) {
  const dnnl::memory::desc desc = m.get_desc();
  const size_t bytes = desc.get_size();
  if (desc.data_type() == dnnl::memory::data_type::f32) {
    std::fill_n(static_cast<float*>(m.get_data_handle()), bytes / sizeof(float), 1.0f);
  } else {
    std::fill_n(static_cast<uint16_t*>(m.get_data_handle()), bytes / 2, uint16_t{0x3f80});
  }
}

}  // namespace

GemmRateProbe::GemmRateProbe(int threads, int n, DType dtype) : state_(std::make_unique<State>()) {
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  if (dtype != DType::kFloat32 && dtype != DType::kBFloat16) {
    throw Error("the GEMM rate is measured in float32 or bfloat16, not " +
                std::string(dtype_name(dtype)));
  }
  std::string why;
  if (dtype == DType::kBFloat16 && !cpu_bf16_support(&why)) {
    throw Error("no bfloat16 GEMM rate on this CPU: " + why);
  }
  State& s = *state_;
  s.threads = threads > 0 ? threads : default_threads();
  s.n = n;
  const dt operands = dtype == DType::kBFloat16 ? dt::bf16 : dt::f32;
  const dnnl::memory::desc rows({n, n}, operands, tag::ab), out({n, n}, dt::f32, tag::ab);
  // float32: the weights in rows, as this probe has always run (oneDNN's
  // brgemm reads them in place); bfloat16: packed, as a plan's weights are.
  const dnnl::memory::desc weights({n, n}, operands,
                                   dtype == DType::kBFloat16 ? tag::any : tag::ab);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(rows, weights, out), s.engine);
  s.matmul = dnnl::matmul(pd);
  s.ma = dnnl::memory(rows, s.engine);
  s.mb = dnnl::memory(pd.weights_desc(), s.engine);
  s.mc = dnnl::memory(out, s.engine);
  fill_ones(s.ma);
  if (pd.weights_desc() == rows) {
    fill_ones(s.mb);
  } else {  // ones in rows, reordered into the kernel's layout
    dnnl::memory plain(rows, s.engine);
    fill_ones(plain);
    dnnl::reorder(plain, s.mb).execute(s.stream, plain, s.mb);
    s.stream.wait();
  }
  // Untimed: the first runs pay for page faults and cold caches.
  s.once();
  s.once();
}

GemmRateProbe::~GemmRateProbe() = default;

double GemmRateProbe::measure() {
  const auto start = std::chrono::steady_clock::now();
  state_->once();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double n = state_->n;
  return 2.0 * n * n * n / seconds / 1e9;
}

double gemm_gflops(int threads, int n, DType dtype) {
  GemmRateProbe probe(threads, n, dtype);
  // The best of several timed batches of four.
  double best = 0.0;
  for (int round = 0; round < 5; ++round) {
    // Each matmul does the same work: a batch's rate is 4 / sum(1 / rate).
    double inverse = 0.0;
    for (int i = 0; i < 4; ++i) inverse += 1.0 / probe.measure();
    best = std::max(best, 4.0 / inverse);
  }
  return best;
}

}  // namespace ravlt::runtime::cpu
