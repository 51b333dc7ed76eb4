#include "runtime/cpu/gemm_rate.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <dnnl.hpp>
#include <vector>

#include "runtime/cpu/cpu_backend.h"

namespace ravlt::runtime::cpu {

double gemm_gflops(int threads, int n) {
  omp_set_num_threads(threads > 0 ? threads : default_threads());
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const dnnl::memory::desc md({n, n}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::ab);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(md, md, md), engine);
  const dnnl::matmul matmul(pd);
  std::vector<float> a(static_cast<size_t>(n) * n, 1.0f), b(a.size(), 1.0f), c(a.size());
  dnnl::memory ma(md, engine, a.data()), mb(md, engine, b.data()), mc(md, engine, c.data());
  auto once = [&] {
    matmul.execute(stream, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}});
    stream.wait();
  };
  once();
  once();
  // The best of several timed batches: the rate the machine can reach.
  double best = 0.0;
  for (int round = 0; round < 5; ++round) {
    const int reps = 4;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) once();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, 2.0 * n * n * static_cast<double>(n) * reps / seconds / 1e9);
  }
  return best;
}

}  // namespace ravlt::runtime::cpu
