// Rotary position embedding tables of RAVLT (spec §3.5).
//
// Instead of L x d sin/cos tensors, a plan keeps one table per image row and
// one per column (H x d/2 and W x d/2 values each): the first half of a
// head's channels rotates by the row, the second half by the column. The
// kernels apply the rotation on the fly (isa_kernels.inc).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "runtime/cpu/isa_kernels.h"

namespace ravlt::runtime::cpu {

class RopeTables {
 public:
  /// `angle` holds d/2 values (the stage's RoPE.angle buffer).
  RopeTables(const float* angle, int head_dim, int64_t height, int64_t width)
      : half_(head_dim / 2) {
    fill(angle, height, sin_y_, cos_y_);
    fill(angle, width, sin_x_, cos_x_);
  }

  RopeView view() const {
    return {sin_y_.data(), cos_y_.data(), sin_x_.data(), cos_x_.data(), half_};
  }

 private:
  // theta = position * angle[e], in float32 as the reference computes it.
  // The sine is stored with the sign of the pair rotation r(u) folded in
  // (r(u)_2i = -u_2i+1, r(u)_2i+1 = u_2i), so that
  // rope(u)_e = u_e cos_e + u_(e xor 1) sin'_e: exact, a negation.
  void fill(const float* angle, int64_t positions, std::vector<float>& s, std::vector<float>& c) {
    s.resize(static_cast<size_t>(positions * half_));
    c.resize(s.size());
    for (int64_t p = 0; p < positions; ++p) {
      for (int e = 0; e < half_; ++e) {
        const float theta = static_cast<float>(p) * angle[e];
        const float sine = std::sin(theta);
        s[static_cast<size_t>(p * half_ + e)] = e % 2 == 0 ? -sine : sine;
        c[static_cast<size_t>(p * half_ + e)] = std::cos(theta);
      }
    }
  }

  int half_ = 0;
  std::vector<float> sin_y_, cos_y_, sin_x_, cos_x_;
};

}  // namespace ravlt::runtime::cpu
