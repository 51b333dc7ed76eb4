// One GEMM, (m, k) x (k, o) + bias with post-ops, on the oneDNN primitive
// that runs it best on this CPU: a matmul, or the same GEMM as a 1x1
// convolution where the matmul would be slow.
//
// Why two: oneDNN 2.6 has brgemm matmuls (weights packed once, into the
// layout the primitive asks for) only from avx512_core up. Below that a
// matmul takes its gemm:jit path, which packs the weight on every call,
// while the 1x1 convolution (jit_1x1:avx2) keeps it blocked once, at load.
// Measured on 2 cores with DNNL_MAX_CPU_ISA=AVX2, hot weights: 49 x 512 x
// 2048 0.58 against 1.23 ms, 196 x 256 x 1024 0.53 against 1.11 ms, 60800 x
// 64 x 256 12.8 against 17.7 ms, 3136 x 64 x 256 within 5 %; RAVLT-T at
// batch 1 38 against 46 ms. With brgemm the two are alike and the matmul
// stays.
//
// The convolution sees the m rows as m positions of one image column,
// channels last: the same bytes as the (m, k) source and (m, o) output
// rows, so callers bind the same buffers either way.
#pragma once

#include <dnnl.hpp>
#include <optional>

#include "runtime/cpu/dnnl_util.h"
#include "runtime/cpu/output_activation.h"

namespace ravlt::runtime::cpu {

struct GemmShape {
  int64_t m = 0, k = 0, o = 0;
  dt source = dt::f32;         // and the weights' compute type
  dt output = dt::f32;         // the destination's
  std::optional<dt> residual;  // a residual (m, o) added last, of this type
  /// Read the float32 weight where it is stored, (o, k) rows, rather than a
  /// packed copy (SessionOptions::pack_weights): only where oneDNN runs
  /// that on a brgemm matmul; elsewhere (below AVX-512) the weight is
  /// packed all the same, as the alternative repacks it every run.
  bool weights_as_stored = false;
};

struct GemmPrimitive {
  dnnl::primitive primitive;
  bool convolution = false;  // the 1x1 convolution form (else a matmul)
  dnnl::memory::desc src, weights, bias, dst, residual, scratchpad;
  int residual_index = 0;  // the residual add's place among the post-ops
  /// The stored (o, k) float32 weight as the chosen form reads it, for the
  /// reorder into `weights`.
  dnnl::memory::desc stored_weights;
};

enum class GemmForm {
  kBest,         // the matmul, unless it is gemm:jit and oneDNN has jit_1x1 for the convolution
  kMatmul,       // always the matmul (a caller that runs it on rows of a larger output)
  kConvolution,  // always the convolution, whatever oneDNN runs it with (tests)
};

/// Whether oneDNN runs a float32 GEMM on its weight where it is stored
/// (a brgemm matmul: AVX-512 and up), i.e. whether
/// GemmShape::weights_as_stored can leave weights unpacked on this CPU.
bool gemm_reads_stored_weights(const dnnl::engine& engine);

/// `activation`: what oneDNN applies before the residual add (its
/// append_to(); none if null). With shape.weights_as_stored and a brgemm
/// matmul, `weights` equals `stored_weights` (nothing to pack).
GemmPrimitive make_gemm_primitive(const GemmShape& shape, const OutputActivation* activation,
                                  GemmForm form, const dnnl::engine& engine);

}  // namespace ravlt::runtime::cpu
