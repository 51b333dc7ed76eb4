// The activation a GEMM or convolution applies to its output (Linear,
// Conv2d). Swish is oneDNN's eltwise post-op. GELU is ours where it can be
// (activation_loops.inc): oneDNN 2.6's gelu_erf, fused or as its own
// primitive, costs about three cycles per element, which made RAVLT's fc1
// GEMMs 1.8x (float32) to 4.5x (bfloat16 on AMX) as slow as without it at
// 3136 x 64 x 224; ours costs about a quarter of that.
//  - float32 output: in place over the output right after the primitive.
//  - bfloat16 output of a Linear: the GEMM runs on pieces of rows into a
//    float32 buffer of at most kPieceFloats (cache-sized), and ours writes
//    GELU of it, rounded once, into the output (as oneDNN's post-op did:
//    GELU of already-rounded values measured up to 1.4x the distance to
//    the float32 logits on a small image).
//  - bfloat16 output of a convolution (its rows cannot be split without
//    their halo): the convolution writes the whole output in float32 into
//    a buffer, and ours writes GELU of it, rounded once. Besides the cost
//    per element, oneDNN 2.6 took up to 0.36 s to create an AMX
//    convolution with the gelu_erf post-op (RAVLT's stem at 384x384: 32
//    channels at 192x192), 50 ms without it.
//  - Otherwise oneDNN's: when another post-op follows the activation (a
//    residual add).
#pragma once

#include <algorithm>
#include <cstdint>

#include "runtime/backend.h"
#include "runtime/cpu/dnnl_util.h"
#include "runtime/cpu/isa.h"
#include "runtime/cpu/isa_kernels.h"
#include "runtime/graph.h"

namespace ravlt::runtime::cpu {

class OutputActivation {
 public:
  enum class Mode { kOneDnn, kInPlace, kByPieces, kWhole };

  /// Float32 floats of the buffer a piece of GEMM rows goes through (1 MB:
  /// it stays in the second-level cache for GELU to read).
  static constexpr int64_t kPieceFloats = 256 * 1024;

  /// `more_post_ops`: whether post-ops follow the activation; `output`:
  /// the output's element type; `rows_can_split`: whether the producer can
  /// compute its output by pieces of rows (a GEMM can, a convolution not).
  OutputActivation(Activation activation, bool more_post_ops, DType output, bool rows_can_split,
                   int threads)
      : activation_(activation), threads_(threads) {
    if (activation != Activation::kGelu || more_post_ops) return;
    if (output == DType::kFloat32) mode_ = Mode::kInPlace;
    if (output == DType::kBFloat16) mode_ = rows_can_split ? Mode::kByPieces : Mode::kWhole;
  }

  /// Whether the producer writes float32 into a buffer of ours (by pieces
  /// or whole), which apply_into() then turns into the bfloat16 output.
  bool through_buffer() const { return mode_ == Mode::kByPieces || mode_ == Mode::kWhole; }

  Mode mode() const { return mode_; }

  /// Appends what oneDNN applies: the activation unless it is ours.
  void append_to(dnnl::post_ops& ops) const {
    switch (mode_ == Mode::kOneDnn ? activation_ : Activation::kNone) {
      case Activation::kNone:
        break;
      case Activation::kGelu:  // exact GELU, with erf
        ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0.0f, 0.0f);
        break;
      case Activation::kSwish:  // x * sigmoid(alpha x), alpha = 1
        ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_swish, 1.0f, 0.0f);
        break;
    }
  }

  /// kByPieces: rows per piece for rows of `width` elements, of `rows` in
  /// all: as many as fit kPieceFloats (16 at least), then evened out so
  /// that the last piece, which ends at the last row, overlaps the one
  /// before by fewer rows than there are pieces.
  static int64_t piece_rows(int64_t rows, int64_t width) {
    const int64_t most = std::max<int64_t>(16, kPieceFloats / width);
    if (rows <= most) return rows;
    const int64_t pieces = (rows + most - 1) / most;
    return (rows + pieces - 1) / pieces;
  }

  /// kInPlace: ours over the `count` elements of the float32 output, after
  /// the primitive (nothing in the other modes).
  void apply(const View& output, int64_t count) const {
    if (mode_ != Mode::kInPlace) return;
    float* x = output.f32();
    for_each_task(count, [&](int64_t i, int64_t n) { loops_.gelu_f32(x + i, n); });
  }

  /// kByPieces, kWhole: GELU of `count` float32 elements into bfloat16
  /// ones.
  void apply_into(const float* src, uint16_t* dst, int64_t count) const {
    for_each_task(count,
                  [&](int64_t i, int64_t n) { loops_.gelu_f32_to_bf16(src + i, dst + i, n); });
  }

 private:
  // body(first, count) over [0, count) in tasks of kTaskElements, on the
  // session's threads.
  template <typename Body>
  void for_each_task(int64_t count, Body&& body) const {
    const int64_t tasks = (count + kTaskElements - 1) / kTaskElements;
#pragma omp parallel for schedule(static) num_threads(threads_)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t i = t * kTaskElements;
      body(i, count - i < kTaskElements ? count - i : kTaskElements);
    }
  }

  // Elements per task: enough work that the loop's overhead does not show.
  static constexpr int64_t kTaskElements = 16384;

  Activation activation_;
  Mode mode_ = Mode::kOneDnn;
  int threads_;
  const ActivationLoops& loops_ = activation_loops(active_isa());
};

}  // namespace ravlt::runtime::cpu
