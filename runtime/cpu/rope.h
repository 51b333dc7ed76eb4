// Rotary position embedding of RAVLT (spec §3.5), applied on the fly.
//
// Instead of L x d sin/cos tensors, a plan keeps one table per image row and
// one per column (H x d/2 and W x d/2 values each): the first half of a
// head's channels rotates by the row, the second half by the column.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace ravlt::runtime::cpu {

class RopeTables {
 public:
  RopeTables() = default;
  /// `angle` holds d/2 values (the stage's RoPE.angle buffer).
  RopeTables(const float* angle, int head_dim, int64_t height, int64_t width)
      : half_(head_dim / 2) {
    fill(angle, height, sin_y_, cos_y_);
    fill(angle, width, sin_x_, cos_x_);
  }

  /// out = rope(u) for the token at (y, x); u and out hold d values.
  void rotate(const float* u, int64_t y, int64_t x, float* out) const {
    rotate_half(u, sin_y_.data() + y * half_, cos_y_.data() + y * half_, out);
    rotate_half(u + half_, sin_x_.data() + x * half_, cos_x_.data() + x * half_, out + half_);
  }

 private:
  // theta = position * angle[e], in float32 as the reference computes it.
  void fill(const float* angle, int64_t positions, std::vector<float>& s, std::vector<float>& c) {
    s.resize(static_cast<size_t>(positions * half_));
    c.resize(s.size());
    for (int64_t p = 0; p < positions; ++p) {
      for (int e = 0; e < half_; ++e) {
        const float theta = static_cast<float>(p) * angle[e];
        s[static_cast<size_t>(p * half_ + e)] = std::sin(theta);
        c[static_cast<size_t>(p * half_ + e)] = std::cos(theta);
      }
    }
  }

  // Pairs (u0, u1): (u0 c0 - u1 s0, u1 c1 + u0 s1).
  void rotate_half(const float* u, const float* s, const float* c, float* out) const {
    for (int e = 0; e < half_; e += 2) {
      out[e] = u[e] * c[e] - u[e + 1] * s[e];
      out[e + 1] = u[e + 1] * c[e + 1] + u[e] * s[e + 1];
    }
  }

  int half_ = 0;
  std::vector<float> sin_y_, cos_y_, sin_x_, cos_x_;
};

}  // namespace ravlt::runtime::cpu
