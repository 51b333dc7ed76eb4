// Each conversion-time rewrite computes what the unfolded layers compute.
// The convolutions here are naive loops written from the definitions.
#include <doctest/doctest.h>

#include <cmath>
#include <random>

#include "engine/src/folding.h"
#include "ravlt/error.h"

using namespace ravlt;
using namespace ravlt::engine;

namespace {

HostTensor random_tensor(std::vector<int64_t> shape, std::mt19937& rng, float lo, float hi) {
  HostTensor t;
  t.shape = std::move(shape);
  size_t n = 1;
  for (int64_t d : t.shape) n *= static_cast<size_t>(d);
  std::uniform_real_distribution<float> u(lo, hi);
  t.data.resize(n);
  for (float& v : t.data) v = u(rng);
  return t;
}

// y = conv2d(x, w, b), x (C, H, W), w (O, C/groups, K, K), stride 1, padding K/2.
std::vector<double> conv(const HostTensor& x, const HostTensor& w, const HostTensor& b,
                         int groups) {
  const int64_t c = x.dim(0), h = x.dim(1), wd = x.dim(2), o = w.dim(0), k = w.dim(2);
  const int64_t cin = c / groups, cout = o / groups;
  std::vector<double> y(static_cast<size_t>(o * h * wd));
  for (int64_t oc = 0; oc < o; ++oc) {
    const int64_t g = oc / cout;
    for (int64_t yy = 0; yy < h; ++yy) {
      for (int64_t xx = 0; xx < wd; ++xx) {
        double acc = b.data[static_cast<size_t>(oc)];
        for (int64_t ic = 0; ic < cin; ++ic) {
          for (int64_t ky = 0; ky < k; ++ky) {
            for (int64_t kx = 0; kx < k; ++kx) {
              const int64_t iy = yy + ky - k / 2, ix = xx + kx - k / 2;
              if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
              acc += static_cast<double>(
                         w.data[static_cast<size_t>(((oc * cin + ic) * k + ky) * k + kx)]) *
                     x.data[static_cast<size_t>(((g * cin + ic) * h + iy) * wd + ix)];
            }
          }
        }
        y[static_cast<size_t>((oc * h + yy) * wd + xx)] = acc;
      }
    }
  }
  return y;
}

void check_close(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double err = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    err += (a[i] - b[i]) * (a[i] - b[i]);
    norm += b[i] * b[i];
  }
  CHECK(std::sqrt(err / norm) < 1e-6);
}

}  // namespace

TEST_CASE("BatchNorm folded into the convolution before it") {
  std::mt19937 rng(1);
  const HostTensor x = random_tensor({5, 7, 6}, rng, -1, 1);
  HostTensor w = random_tensor({4, 5, 3, 3}, rng, -0.5f, 0.5f);
  HostTensor b = random_tensor({4}, rng, -0.3f, 0.3f);
  const HostTensor gamma = random_tensor({4}, rng, 0.5f, 1.5f);
  const HostTensor beta = random_tensor({4}, rng, -0.5f, 0.5f);
  const HostTensor mean = random_tensor({4}, rng, -0.5f, 0.5f);
  const HostTensor var = random_tensor({4}, rng, 0.1f, 2.0f);
  // Unfolded: BN(conv(x)) from the definition.
  std::vector<double> want = conv(x, w, b, 1);
  const size_t plane = 7 * 6;
  for (size_t o = 0; o < 4; ++o) {
    for (size_t i = 0; i < plane; ++i) {
      double& v = want[o * plane + i];
      v = (v - mean.data[o]) / std::sqrt(static_cast<double>(var.data[o]) + 1e-5) * gamma.data[o] +
          beta.data[o];
    }
  }
  fold_batchnorm(w, b, {&gamma, &beta, &mean, &var, 1e-5f});
  check_close(conv(x, w, b, 1), want);
  // The fold changed something: a test that cannot fail proves nothing.
  CHECK(conv(x, w, b, 1) != conv(x, random_tensor({4, 5, 3, 3}, rng, -0.5f, 0.5f), b, 1));
}

TEST_CASE("layer scale folded into the projection before it") {
  std::mt19937 rng(2);
  const HostTensor x = random_tensor({6, 3, 4}, rng, -1, 1);
  HostTensor w = random_tensor({5, 6, 1, 1}, rng, -0.5f, 0.5f);  // a 1x1 projection
  HostTensor b = random_tensor({5}, rng, -0.3f, 0.3f);
  const HostTensor gamma = random_tensor({5}, rng, -0.6f, 0.6f);
  std::vector<double> want = conv(x, w, b, 1);
  for (size_t o = 0; o < 5; ++o) {
    for (size_t i = 0; i < 12; ++i) want[o * 12 + i] *= gamma.data[o];
  }
  fold_layer_scale(w, b, gamma);
  check_close(conv(x, w, b, 1), want);
}

TEST_CASE("x + dwconv(x) folded into the centre tap, for 3x3 and 5x5") {
  std::mt19937 rng(3);
  for (int k : {3, 5}) {
    const HostTensor x = random_tensor({4, 5, 7}, rng, -1, 1);
    HostTensor w = random_tensor({4, 1, k, k}, rng, -0.5f, 0.5f);
    const HostTensor b = random_tensor({4}, rng, -0.3f, 0.3f);
    std::vector<double> want = conv(x, w, b, 4);
    for (size_t i = 0; i < want.size(); ++i) want[i] += x.data[i];
    fold_identity_into_depthwise(w);
    check_close(conv(x, w, b, 4), want);
  }
}

TEST_CASE("folds refuse mismatched shapes") {
  HostTensor w{{4, 1, 3, 3}, std::vector<float>(36)};
  HostTensor b{{3}, std::vector<float>(3)};
  HostTensor g{{4}, std::vector<float>(4)};
  CHECK_THROWS_AS(fold_layer_scale(w, b, g), Error);
  HostTensor even{{4, 1, 2, 2}, std::vector<float>(16)};
  CHECK_THROWS_AS(fold_identity_into_depthwise(even), Error);
  HostTensor dense{{4, 2, 3, 3}, std::vector<float>(72)};
  CHECK_THROWS_AS(fold_identity_into_depthwise(dense), Error);
}
