// Our float32 inner loops on operands that may be bfloat16: a kernel whose
// operands are not all float32 copies the rows one piece of work needs into
// a float32 buffer of its thread (widening bfloat16), runs the float32
// loops on the buffers, and narrows the result into its output. Pieces are
// small (tens of rows), so the buffers stay in cache and the arena holds
// every activation in 16 bits.
#pragma once

#include <omp.h>

#include <cassert>
#include <cstdint>
#include <cstring>

#include "runtime/backend.h"
#include "runtime/cpu/isa_kernels.h"

namespace ravlt::runtime::cpu {

/// Rows of a buffer addressed as the inner loops address an operand: row
/// l at base + l * stride.
struct RowsF32 {
  const float* base;
  int64_t stride;
};

/// Where row l of a buffer holding rows [l0, ...) with `stride` floats each
/// lies, in the addressing of the inner loops (a pointer the loops only
/// ever offset back into the buffer).
template <typename Float>
inline Float* rebase(Float* buffer, int64_t l0, int64_t stride) {
  return reinterpret_cast<Float*>(reinterpret_cast<uintptr_t>(buffer) -
                                  static_cast<uintptr_t>(l0 * stride) * sizeof(float));
}

/// Columns [col, col + cols) of rows first + l, l in [l0, l1), of `x`
/// (rows of `stride` elements, float32 or bfloat16; `first`: the row where
/// the loop's addressing starts, e.g. an image's first token) copied into
/// `buffer` as float32, `cols` per row; returned in the loops' addressing
/// (row l at .base + l * .stride).
inline RowsF32 widen_rows(const ConvertLoops& cv, ConstView x, int64_t stride, int64_t col,
                          int64_t cols, int64_t first, int64_t l0, int64_t l1, float* buffer) {
  const int64_t at = (first + l0) * stride + col;
  if (x.dtype == DType::kBFloat16) {
    cv.bf16_rows_to_f32(static_cast<const uint16_t*>(x.data) + at, stride, l1 - l0, cols, buffer);
  } else {
    for (int64_t l = l0; l < l1; ++l) {
      std::memcpy(buffer + (l - l0) * cols, x.f32() + at + (l - l0) * stride,
                  static_cast<size_t>(cols) * sizeof(float));
    }
  }
  return {rebase(static_cast<const float*>(buffer), l0, cols), cols};
}

/// The reverse: `buffer` (rows l in [l0, l1), `cols` floats each) into
/// columns [col, col + cols) of rows first + l of `out`.
inline void narrow_rows(const ConvertLoops& cv, const float* buffer, View out, int64_t stride,
                        int64_t col, int64_t cols, int64_t first, int64_t l0, int64_t l1) {
  const int64_t at = (first + l0) * stride + col;
  if (out.dtype == DType::kBFloat16) {
    cv.f32_rows_to_bf16(buffer, l1 - l0, cols, static_cast<uint16_t*>(out.data) + at, stride);
  } else {
    for (int64_t l = l0; l < l1; ++l) {
      std::memcpy(out.f32() + at + (l - l0) * stride, buffer + (l - l0) * cols,
                  static_cast<size_t>(cols) * sizeof(float));
    }
  }
}

/// Per-thread float32 buffers in a kernel's scratch: `threads` of
/// `floats` each (64-byte aligned).
class ThreadBuffers {
 public:
  ThreadBuffers() = default;
  ThreadBuffers(int threads, int64_t floats)
      : threads_(threads), floats_((floats + 15) / 16 * 16) {}
  size_t bytes() const { return static_cast<size_t>(threads_ * floats_) * sizeof(float); }
  int threads() const { return threads_; }
  /// The calling OpenMP thread's buffer, `scratch` being what bytes() asked for.
  float* mine(uint8_t* scratch) const {
    const int t = omp_get_thread_num();
    assert(t < threads_);
    return reinterpret_cast<float*>(scratch) + t * floats_;
  }

 private:
  int threads_ = 0;
  int64_t floats_ = 0;
};

/// A GEMM or convolution computing in bfloat16 from a float32 source (the
/// residual stream, the pooled features): the source narrowed into the
/// kernel's scratch before the primitive runs.
class NarrowedSource {
 public:
  NarrowedSource() = default;
  /// `elements` of a `source` operand for a primitive computing in `compute`.
  NarrowedSource(DType source, DType compute, int64_t elements)
      : elements_(source == DType::kFloat32 && compute == DType::kBFloat16 ? elements : 0) {}
  /// Scratch bytes it needs (0: the source is read as it is).
  size_t bytes() const { return (static_cast<size_t>(elements_) * 2 + 63) / 64 * 64; }
  /// The source as the primitive reads it: `in` itself, or its narrowed
  /// copy in `scratch` (64-byte aligned, bytes() long).
  void* source(const ConvertLoops& cv, ConstView in, uint8_t* scratch) const {
    if (elements_ == 0) return const_cast<void*>(in.data);
    auto* dst = reinterpret_cast<uint16_t*>(scratch);
    constexpr int64_t kPiece = 4096;
    const int64_t pieces = (elements_ + kPiece - 1) / kPiece;
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < pieces; ++p) {
      const int64_t begin = p * kPiece;
      const int64_t count = begin + kPiece < elements_ ? kPiece : elements_ - begin;
      cv.f32_to_bf16(in.f32() + begin, dst + begin, count);
    }
    return dst;
  }

 private:
  int64_t elements_ = 0;
};

/// Whether a kernel with these operands runs its inner loops in place
/// (every one float32) or through buffers.
inline bool all_float32(std::initializer_list<DType> types) {
  for (DType t : types) {
    if (t != DType::kFloat32) return false;
  }
  return true;
}

}  // namespace ravlt::runtime::cpu
