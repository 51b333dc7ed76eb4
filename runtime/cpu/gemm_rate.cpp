#include "runtime/cpu/gemm_rate.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <dnnl.hpp>
#include <vector>

#include "runtime/cpu/cpu_backend.h"

namespace ravlt::runtime::cpu {

struct GemmRateProbe::State {
  int threads;
  int n;
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  dnnl::matmul matmul;
  std::vector<float> a, b, c;
  dnnl::memory ma, mb, mc;

  void once() {
    // Sessions set the thread count per run; so does the probe.
    omp_set_num_threads(threads);
    matmul.execute(stream, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}});
    stream.wait();
  }
};

GemmRateProbe::GemmRateProbe(int threads, int n) : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.threads = threads > 0 ? threads : default_threads();
  s.n = n;
  const dnnl::memory::desc md({n, n}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::ab);
  s.matmul = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(md, md, md), s.engine));
  s.a.assign(static_cast<size_t>(n) * n, 1.0f);
  s.b = s.a;
  s.c.resize(s.a.size());
  s.ma = dnnl::memory(md, s.engine, s.a.data());
  s.mb = dnnl::memory(md, s.engine, s.b.data());
  s.mc = dnnl::memory(md, s.engine, s.c.data());
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

double gemm_gflops(int threads, int n) {
  GemmRateProbe probe(threads, n);
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
