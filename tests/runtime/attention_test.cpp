// The attention kernels against naive loops written from the spec (in
// double, with per-token sin/cos), on every instruction-set path this CPU
// has, at odd token counts and head dimensions.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "runtime/cpu/isa.h"
#include "runtime/cpu/kernels.h"

using namespace ravlt::runtime;
using namespace ravlt::runtime::cpu;

namespace {

struct Problem {
  int64_t n, h, w;
  int heads, d;
  std::vector<float> qkvo, lepe, angle;
};

// q, k, v, o and lepe drawn from N(0, spread^2): a large spread makes the
// softmax peaked, so the online rescaling between key blocks matters.
Problem make_problem(int64_t n, int64_t h, int64_t w, int heads, int d, uint32_t seed,
                     float spread = 1.0f) {
  Problem p{n, h, w, heads, d, {}, {}, {}};
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, spread);
  const int64_t c = int64_t{heads} * d;
  p.qkvo.resize(static_cast<size_t>(n * h * w * 4 * c));
  for (float& v : p.qkvo) v = normal(rng);
  p.lepe.resize(static_cast<size_t>(n * h * w * c));
  for (float& v : p.lepe) v = normal(rng);
  for (int j = 0; j < d / 4; ++j) {  // the RoPE buffer: 10000^(-j/(d/4-1)), each twice
    const float a = d / 4 > 1
                        ? std::pow(10000.0f, -static_cast<float>(j) / static_cast<float>(d / 4 - 1))
                        : 1.0f;
    p.angle.push_back(a);
    p.angle.push_back(a);
  }
  return p;
}

// rope(u) at token (y, x), spec §3.5, in double.
std::vector<double> rope(const std::vector<double>& u, int64_t y, int64_t x,
                         const std::vector<float>& angle) {
  const size_t d = u.size();
  std::vector<double> out(d);
  for (size_t e = 0; e < d; ++e) {
    const float theta =
        e < d / 2 ? static_cast<float>(y) * angle[e] : static_cast<float>(x) * angle[e - d / 2];
    const double r = e % 2 == 0 ? -u[e + 1] : u[e - 1];
    out[e] = u[e] * std::cos(static_cast<double>(theta)) + r * std::sin(static_cast<double>(theta));
  }
  return out;
}

std::vector<double> naive(const Problem& p, bool rala) {
  const int64_t l_count = p.h * p.w, c = int64_t{p.heads} * p.d;
  std::vector<double> out(p.lepe.size());
  for (int64_t b = 0; b < p.n; ++b) {
    for (int head = 0; head < p.heads; ++head) {
      auto get = [&](int64_t l, int part) {
        std::vector<double> v(static_cast<size_t>(p.d));
        for (int e = 0; e < p.d; ++e)
          v[static_cast<size_t>(e)] =
              p.qkvo[static_cast<size_t>((b * l_count + l) * 4 * c + part * c + head * p.d + e)];
        return v;
      };
      std::vector<std::vector<double>> q, k, v, o;
      for (int64_t l = 0; l < l_count; ++l) {
        q.push_back(get(l, 0));
        k.push_back(get(l, 1));
        v.push_back(get(l, 2));
        o.push_back(get(l, 3));
      }
      std::vector<std::vector<double>> res(static_cast<size_t>(l_count),
                                           std::vector<double>(static_cast<size_t>(p.d), 0.0));
      const double scale = 1.0 / std::sqrt(static_cast<double>(p.d));
      if (rala) {
        auto elu1 = [](double a) { return a > 0 ? a + 1 : std::exp(a); };
        for (auto* m : {&q, &k})
          for (auto& row : *m)
            for (double& x : row) x = elu1(x);
        std::vector<double> qm(static_cast<size_t>(p.d), 0.0);
        for (auto& row : q)
          for (int e = 0; e < p.d; ++e)
            qm[static_cast<size_t>(e)] +=
                row[static_cast<size_t>(e)] / static_cast<double>(l_count);
        std::vector<double> logit(static_cast<size_t>(l_count));
        double mx = -1e300, sum = 0;
        for (int64_t l = 0; l < l_count; ++l) {
          double s = 0;
          for (int e = 0; e < p.d; ++e)
            s += qm[static_cast<size_t>(e)] * k[static_cast<size_t>(l)][static_cast<size_t>(e)];
          logit[static_cast<size_t>(l)] = s * scale;
          mx = std::max(mx, s * scale);
        }
        for (double& s : logit) sum += std::exp(s - mx);
        for (int64_t l = 0; l < l_count; ++l) {
          const double eff = std::exp(logit[static_cast<size_t>(l)] - mx) / sum;
          for (double& x : k[static_cast<size_t>(l)]) x *= eff * static_cast<double>(l_count);
        }
        std::vector<double> kbar(static_cast<size_t>(p.d), 0.0);
        std::vector<double> kv(static_cast<size_t>(p.d * p.d), 0.0);
        for (int64_t l = 0; l < l_count; ++l) {
          const auto kr = rope(k[static_cast<size_t>(l)], l / p.w, l % p.w, p.angle);
          for (int r = 0; r < p.d; ++r) {
            kbar[static_cast<size_t>(r)] +=
                k[static_cast<size_t>(l)][static_cast<size_t>(r)] / static_cast<double>(l_count);
            for (int e = 0; e < p.d; ++e)
              kv[static_cast<size_t>(r * p.d + e)] +=
                  kr[static_cast<size_t>(r)] * v[static_cast<size_t>(l)][static_cast<size_t>(e)] /
                  static_cast<double>(l_count);
          }
        }
        for (int64_t l = 0; l < l_count; ++l) {
          double dot = 0;
          for (int e = 0; e < p.d; ++e)
            dot += q[static_cast<size_t>(l)][static_cast<size_t>(e)] * kbar[static_cast<size_t>(e)];
          const double z = 1.0 / (dot + 1e-6);
          const auto qr = rope(q[static_cast<size_t>(l)], l / p.w, l % p.w, p.angle);
          for (int e = 0; e < p.d; ++e) {
            double s = 0;
            for (int r = 0; r < p.d; ++r)
              s += qr[static_cast<size_t>(r)] * kv[static_cast<size_t>(r * p.d + e)];
            res[static_cast<size_t>(l)][static_cast<size_t>(e)] = s * z;
          }
        }
      } else {
        std::vector<std::vector<double>> kr;
        for (int64_t m = 0; m < l_count; ++m)
          kr.push_back(rope(k[static_cast<size_t>(m)], m / p.w, m % p.w, p.angle));
        for (int64_t l = 0; l < l_count; ++l) {
          const auto qr = rope(q[static_cast<size_t>(l)], l / p.w, l % p.w, p.angle);
          std::vector<double> s(static_cast<size_t>(l_count));
          double mx = -1e300, sum = 0;
          for (int64_t m = 0; m < l_count; ++m) {
            double dot = 0;
            for (int e = 0; e < p.d; ++e)
              dot +=
                  qr[static_cast<size_t>(e)] * kr[static_cast<size_t>(m)][static_cast<size_t>(e)];
            s[static_cast<size_t>(m)] = dot * scale;
            mx = std::max(mx, dot * scale);
          }
          for (double& x : s) sum += std::exp(x - mx);
          for (int64_t m = 0; m < l_count; ++m) {
            const double w = std::exp(s[static_cast<size_t>(m)] - mx) / sum;
            for (int e = 0; e < p.d; ++e)
              res[static_cast<size_t>(l)][static_cast<size_t>(e)] +=
                  w * v[static_cast<size_t>(m)][static_cast<size_t>(e)];
          }
        }
      }
      for (int64_t l = 0; l < l_count; ++l) {
        for (int e = 0; e < p.d; ++e) {
          const size_t i = static_cast<size_t>((b * l_count + l) * c + head * p.d + e);
          out[i] = (res[static_cast<size_t>(l)][static_cast<size_t>(e)] + p.lepe[i]) *
                   o[static_cast<size_t>(l)][static_cast<size_t>(e)];
        }
      }
    }
  }
  return out;
}

std::vector<float> run_kernel(const Problem& p, bool rala) {
  const int64_t c = int64_t{p.heads} * p.d;
  std::vector<Value> values(4);
  values[0].shape = {p.n, p.h, p.w, 4 * c};
  values[1].shape = {p.n, p.h, p.w, c};
  values[2].constant = true;
  values[2].shape = {p.d / 2};
  values[2].data = p.angle.data();
  values[3].shape = {p.n, p.h, p.w, c};
  Node node;
  node.name = "attention";
  node.op = rala ? Op::kRalaAttention : Op::kSoftmaxAttention;
  node.inputs = {0, 1, 2};
  node.output = 3;
  node.heads = p.heads;
  node.head_dim = p.d;
  auto graph = Graph::from_parts(values, {node}, 0, 3);
  std::vector<Shape> shapes;
  for (const Value& v : values) shapes.push_back(v.shape);
  CpuContext context;
  const PrepareArgs args{*graph, graph->nodes()[0], shapes, context};
  auto kernel = make_kernel(args);
  std::vector<uint8_t> scratch(kernel->scratch_bytes() + 64);
  auto* aligned =
      reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) / 64 * 64);
  std::vector<float> out(p.lepe.size());
  const float* inputs[3] = {p.qkvo.data(), p.lepe.data(), p.angle.data()};
  kernel->run(inputs, out.data(), aligned);
  return out;
}

double rel_l2(const std::vector<float>& got, const std::vector<double>& want) {
  double err = 0, norm = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    err += (got[i] - want[i]) * (got[i] - want[i]);
    norm += want[i] * want[i];
  }
  return std::sqrt(err / norm);
}

void check_all_paths(bool rala) {
  struct Size {
    int64_t n, h, w;
  };
  // L = 1, 7 (7 x 1), 3137 (1 x 3137, and 3137 is prime) and a 2-D grid.
  const Size sizes[] = {{2, 1, 1}, {2, 7, 1}, {1, 1, 3137}, {2, 9, 13}};
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (static_cast<int>(isa) > static_cast<int>(detected_isa())) {
      MESSAGE("skipped: this CPU has no " << isa_name(isa));
      continue;
    }
    force_isa(isa);
    // Fast paths (16, 32, 48, 64, 96) and the generic path (20, 44).
    for (int d : {16, 20, 32, 44, 48, 64, 96}) {
      for (const Size& s : sizes) {
        // The naive softmax attention is quadratic: L = 3137 only at d = 16.
        if (!rala && s.h * s.w > 1000 && d != 16) continue;
        const Problem p = make_problem(s.n, s.h, s.w, 2, d, static_cast<uint32_t>(d + s.w));
        const double err = rel_l2(run_kernel(p, rala), naive(p, rala));
        INFO(isa_name(isa) << " d=" << d << " batch " << s.n << " " << s.h << "x" << s.w << ": "
                           << err);
        CHECK(err < 2e-6);
      }
    }
    // Peaked: scores spread over tens, the maximum moving between blocks.
    for (int d : {20, 64}) {
      const Problem p = make_problem(1, 15, 17, 3, d, 7u, 3.0f);
      const double err = rel_l2(run_kernel(p, rala), naive(p, rala));
      INFO(isa_name(isa) << " d=" << d << " peaked 15x17: " << err);
      CHECK(err < 2e-6);
    }
  }
  reset_isa();
}

}  // namespace

TEST_CASE("RALA attention kernel matches the spec on every instruction-set path") {
  check_all_paths(true);
}

TEST_CASE("softmax attention kernel matches the spec on every instruction-set path") {
  check_all_paths(false);
}

TEST_CASE("a NaN in the input comes out as NaN, on every path (no garbage, no crash)") {
  for (bool rala : {true, false}) {
    for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
      if (static_cast<int>(isa) > static_cast<int>(detected_isa())) continue;
      force_isa(isa);
      for (int d : {20, 64}) {
        Problem p = make_problem(1, 5, 7, 2, d, 3u);
        p.qkvo[static_cast<size_t>(4 * 2 * d) + 1] = std::nanf("");  // token 1, head 0, q
        const std::vector<float> out = run_kernel(p, rala);
        size_t nans = 0;
        for (float v : out) nans += std::isnan(v) ? 1 : 0;
        INFO(std::string(rala ? "RALA " : "softmax ") << isa_name(isa) << " d=" << d);
        CHECK(nans > 0);
      }
    }
  }
  reset_isa();
}

TEST_CASE("forcing an instruction set the CPU lacks is refused") {
  if (detected_isa() == Isa::kAvx512) {
    MESSAGE("skipped: this CPU has every path");
    return;
  }
  CHECK_THROWS(force_isa(Isa::kAvx512));
}
