#include "runtime/reference/reference_ops.h"

#include <algorithm>
#include <cmath>

namespace ravlt::runtime::reference {
namespace {

double activate(double x, Activation a) {
  if (a == Activation::kGelu) return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
  if (a == Activation::kSwish) return x / (1 + std::exp(-x));
  return x;
}

size_t count(const Shape& shape) {
  return static_cast<size_t>(element_count(shape));
}

// rope(u) at token (y, x) (spec §3.5): the first half of the channels
// rotated by y * angle, the second by x * angle, pairs (2i, 2i+1). The
// angle is float32 times a float32 position, as every implementation
// computes it.
std::vector<double> rope(const std::vector<double>& u, int64_t y, int64_t x, const float* angle) {
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

// rope() at token l of a row-major grid `width` tokens wide.
std::vector<double> rope_at(const std::vector<double>& u, size_t l, int64_t width,
                            const float* angle) {
  return rope(u, static_cast<int64_t>(l) / width, static_cast<int64_t>(l) % width, angle);
}

using Rows = std::vector<std::vector<double>>;

// RALA's core for one image and head (spec §3.3): q, k, v of L tokens.
Rows rala_core(Rows q, Rows k, const Rows& v, int64_t width, const float* angle) {
  const size_t l_count = q.size(), d = q[0].size();
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  auto elu1 = [](double a) { return a > 0 ? a + 1 : std::exp(a); };
  for (Rows* m : {&q, &k})
    for (auto& row : *m)
      for (double& x : row) x = elu1(x);
  std::vector<double> qm(d, 0.0);
  for (const auto& row : q)
    for (size_t e = 0; e < d; ++e) qm[e] += row[e] / static_cast<double>(l_count);
  std::vector<double> logit(l_count);
  double mx = -1e300, sum = 0;
  for (size_t l = 0; l < l_count; ++l) {
    double s = 0;
    for (size_t e = 0; e < d; ++e) s += qm[e] * k[l][e];
    logit[l] = s * scale;
    mx = std::max(mx, logit[l]);
  }
  for (double s : logit) sum += std::exp(s - mx);
  for (size_t l = 0; l < l_count; ++l) {
    const double weight = std::exp(logit[l] - mx) / sum;
    for (double& x : k[l]) x *= weight * static_cast<double>(l_count);
  }
  std::vector<double> kbar(d, 0.0), kv(d * d, 0.0);
  for (size_t l = 0; l < l_count; ++l) {
    const auto kr = rope_at(k[l], l, width, angle);
    for (size_t r = 0; r < d; ++r) {
      kbar[r] += k[l][r] / static_cast<double>(l_count);
      for (size_t e = 0; e < d; ++e)
        kv[r * d + e] += kr[r] * v[l][e] / static_cast<double>(l_count);
    }
  }
  Rows res(l_count, std::vector<double>(d, 0.0));
  for (size_t l = 0; l < l_count; ++l) {
    double dot = 0;
    for (size_t e = 0; e < d; ++e) dot += q[l][e] * kbar[e];
    const double z = 1.0 / (dot + 1e-6);
    const auto qr = rope_at(q[l], l, width, angle);
    for (size_t e = 0; e < d; ++e) {
      double s = 0;
      for (size_t r = 0; r < d; ++r) s += qr[r] * kv[r * d + e];
      res[l][e] = s * z;
    }
  }
  return res;
}

// Softmax attention with RoPE on q and k, for one image and head.
Rows softmax_core(const Rows& q, const Rows& k, const Rows& v, int64_t width, const float* angle) {
  const size_t l_count = q.size(), d = q[0].size();
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  Rows kr;
  for (size_t m = 0; m < l_count; ++m) kr.push_back(rope_at(k[m], m, width, angle));
  Rows res(l_count, std::vector<double>(d, 0.0));
  for (size_t l = 0; l < l_count; ++l) {
    const auto qr = rope_at(q[l], l, width, angle);
    std::vector<double> s(l_count);
    double mx = -1e300, sum = 0;
    for (size_t m = 0; m < l_count; ++m) {
      double dot = 0;
      for (size_t e = 0; e < d; ++e) dot += qr[e] * kr[m][e];
      s[m] = dot * scale;
      mx = std::max(mx, s[m]);
    }
    for (double x : s) sum += std::exp(x - mx);
    for (size_t m = 0; m < l_count; ++m) {
      const double weight = std::exp(s[m] - mx) / sum;
      for (size_t e = 0; e < d; ++e) res[l][e] += weight * v[m][e];
    }
  }
  return res;
}

// Both attention ops: qkvo (N, H, W, 4C) split per head, then
// (core + lepe) * o.
std::vector<double> attention(const Node& node, const std::vector<Operand>& inputs,
                              const Shape& output_shape, bool rala) {
  const Shape& s = inputs[0].shape;
  const int64_t n = s[0], l_count = s[1] * s[2], width = s[2];
  const int64_t d = node.head_dim, c = int64_t{node.heads} * d;
  const float* qkvo = inputs[0].data;
  const float* lepe = inputs[1].data;
  const float* angle = inputs[2].data;
  std::vector<double> out(count(output_shape));
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t head = 0; head < node.heads; ++head) {
      Rows part[4];
      for (int p = 0; p < 4; ++p) {
        for (int64_t l = 0; l < l_count; ++l) {
          const float* row = qkvo + (b * l_count + l) * 4 * c + p * c + head * d;
          part[p].emplace_back(row, row + d);
        }
      }
      const Rows core = rala ? rala_core(part[0], part[1], part[2], width, angle)
                             : softmax_core(part[0], part[1], part[2], width, angle);
      for (int64_t l = 0; l < l_count; ++l) {
        for (int64_t e = 0; e < d; ++e) {
          const size_t i = static_cast<size_t>((b * l_count + l) * c + head * d + e);
          out[i] = (core[static_cast<size_t>(l)][static_cast<size_t>(e)] + lepe[i]) *
                   part[3][static_cast<size_t>(l)][static_cast<size_t>(e)];
        }
      }
    }
  }
  return out;
}

}  // namespace

std::vector<double> to_channels_last(const Node&, const std::vector<Operand>& inputs,
                                     const Shape& output_shape) {
  const Shape& s = inputs[0].shape;  // (N, C, H, W)
  const int64_t n = s[0], c = s[1], plane = s[2] * s[3];
  std::vector<double> out(count(output_shape));
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t p = 0; p < plane; ++p)
        out[static_cast<size_t>((b * plane + p) * c + ch)] =
            inputs[0].data[(b * c + ch) * plane + p];
  return out;
}

std::vector<double> to_channels_first(const Node&, const std::vector<Operand>& inputs,
                                      const Shape& output_shape) {
  const Shape& s = inputs[0].shape;  // (N, H, W, C)
  const int64_t n = s[0], plane = s[1] * s[2], c = s[3];
  std::vector<double> out(count(output_shape));
  for (int64_t b = 0; b < n; ++b)
    for (int64_t p = 0; p < plane; ++p)
      for (int64_t ch = 0; ch < c; ++ch)
        out[static_cast<size_t>((b * c + ch) * plane + p)] =
            inputs[0].data[(b * plane + p) * c + ch];
  return out;
}

std::vector<double> conv2d(const Node& node, const std::vector<Operand>& inputs,
                           const Shape& output_shape) {
  const Shape& x = inputs[0].shape;  // (N, H, W, Ci)
  const Shape& w = inputs[1].shape;  // (Co, Ci / groups, KH, KW)
  const ConvAttrs& a = node.conv;
  const int64_t n = x[0], h = x[1], wd = x[2], cin = x[3];
  const int64_t oh = output_shape[1], ow = output_shape[2], cout = output_shape[3];
  const int64_t cin_g = w[1], cout_g = cout / a.groups;
  std::vector<double> out(count(output_shape));
  for (int64_t b = 0; b < n; ++b)
    for (int64_t y = 0; y < oh; ++y)
      for (int64_t xx = 0; xx < ow; ++xx)
        for (int64_t o = 0; o < cout; ++o) {
          double acc = inputs[2].data[o];
          const int64_t g = o / cout_g;
          for (int64_t i = 0; i < cin_g; ++i)
            for (int64_t ky = 0; ky < a.kernel_h; ++ky)
              for (int64_t kx = 0; kx < a.kernel_w; ++kx) {
                const int64_t iy = y * a.stride_h + ky - a.pad_h;
                const int64_t ix = xx * a.stride_w + kx - a.pad_w;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                acc += static_cast<double>(
                           inputs[1].data[((o * cin_g + i) * a.kernel_h + ky) * a.kernel_w + kx]) *
                       inputs[0].data[((b * h + iy) * wd + ix) * cin + g * cin_g + i];
              }
          out[static_cast<size_t>(((b * oh + y) * ow + xx) * cout + o)] =
              activate(acc, node.activation);
        }
  return out;
}

std::vector<double> linear(const Node& node, const std::vector<Operand>& inputs,
                           const Shape& output_shape) {
  const int64_t k = inputs[1].shape[1], o = inputs[1].shape[0];
  const int64_t m = element_count(inputs[0].shape) / k;
  const bool residual = inputs.size() == 4;
  std::vector<double> out(count(output_shape));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < o; ++j) {
      double acc = inputs[2].data[j];
      for (int64_t t = 0; t < k; ++t)
        acc += static_cast<double>(inputs[0].data[i * k + t]) * inputs[1].data[j * k + t];
      out[static_cast<size_t>(i * o + j)] =
          activate(acc, node.activation) + (residual ? inputs[3].data[i * o + j] : 0.0);
    }
  return out;
}

std::vector<double> layer_norm(const Node& node, const std::vector<Operand>& inputs,
                               const Shape& output_shape) {
  const int64_t width = inputs[0].shape.back(), rows = element_count(inputs[0].shape) / width;
  const float* x = inputs[0].data;
  std::vector<double> out(count(output_shape));
  for (int64_t r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < width; ++i) mean += x[r * width + i] / static_cast<double>(width);
    for (int64_t i = 0; i < width; ++i)
      var += (x[r * width + i] - mean) * (x[r * width + i] - mean) / static_cast<double>(width);
    for (int64_t i = 0; i < width; ++i)
      out[static_cast<size_t>(r * width + i)] =
          (x[r * width + i] - mean) / std::sqrt(var + node.epsilon) * inputs[1].data[i] +
          inputs[2].data[i];
  }
  return out;
}

std::vector<double> channel_slice(const Node& node, const std::vector<Operand>& inputs,
                                  const Shape& output_shape) {
  const int64_t c = inputs[0].shape.back(), width = node.slice_end - node.slice_begin;
  const int64_t rows = element_count(inputs[0].shape) / c;
  std::vector<double> out(count(output_shape));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < width; ++i)
      out[static_cast<size_t>(r * width + i)] = inputs[0].data[r * c + node.slice_begin + i];
  return out;
}

std::vector<double> rala_attention(const Node& node, const std::vector<Operand>& inputs,
                                   const Shape& output_shape) {
  return attention(node, inputs, output_shape, true);
}

std::vector<double> softmax_attention(const Node& node, const std::vector<Operand>& inputs,
                                      const Shape& output_shape) {
  return attention(node, inputs, output_shape, false);
}

std::vector<double> global_avg_pool(const Node&, const std::vector<Operand>& inputs,
                                    const Shape& output_shape) {
  const Shape& s = inputs[0].shape;  // (N, H, W, C)
  const int64_t n = s[0], positions = s[1] * s[2], c = s[3];
  std::vector<double> out(count(output_shape), 0.0);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t p = 0; p < positions; ++p)
      for (int64_t i = 0; i < c; ++i)
        out[static_cast<size_t>(b * c + i)] +=
            inputs[0].data[(b * positions + p) * c + i] / static_cast<double>(positions);
  return out;
}

namespace {

using ReferenceKernel = std::vector<double> (*)(const Node&, const std::vector<Operand>&,
                                                const Shape&);
// One entry per runtime::Op, in its order.
constexpr ReferenceKernel kKernels[] = {
#define RAVLT_OP(Name, snake, ...) snake,
#include "formats/rvlt/ops.def"
#undef RAVLT_OP
};
static_assert(sizeof(kKernels) / sizeof(kKernels[0]) == kOpCount,
              "every op needs a reference kernel");

}  // namespace

std::vector<double> run(const Node& node, const std::vector<Operand>& inputs,
                        const Shape& output_shape) {
  return kKernels[static_cast<size_t>(node.op)](node, inputs, output_shape);
}

}  // namespace ravlt::runtime::reference
