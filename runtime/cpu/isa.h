// Which instruction set the hand-written CPU kernels use.
//
// The kernels' inner loops are compiled once per instruction set
// (isa_kernels.inc, built as a scalar, an AVX2/FMA and an AVX-512 object);
// at run time the widest one the CPU supports is chosen, unless a narrower
// one is forced (tests do, to cover every path on any machine).
#pragma once

namespace ravlt::runtime::cpu {

enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

/// The widest instruction set this CPU supports among Isa's.
Isa detected_isa();
/// The one kernels prepared from now on use: detected_isa(), or the forced one.
Isa active_isa();
/// Forces kernels prepared from now on to use `isa` (which this CPU must
/// support: throws ravlt::Error otherwise). For tests and benchmarks.
void force_isa(Isa isa);
/// Back to detected_isa().
void reset_isa();
const char* isa_name(Isa isa);

/// Whether this CPU's AVX512_BF16 dot product (vdpbf16ps) does more
/// multiply-adds per cycle than its float32 FMA, so that bfloat16 GEMMs
/// without AMX pay off even where our float32 kernels are tuned: AMD's
/// (Zen 4 and later: 32 multiply-adds per instruction at the rate of a
/// 16-lane FMA; oneDNN's 1024^3 matmul measured 385 against 127 GFLOP/s
/// on two Zen 4 cores). Intel's do not: on a Sapphire Rapids (beside
/// AMX) it measured half the FMA's multiply-add rate; Cooper Lake, not
/// measured, is taken to be alike. False without AVX512_BF16.
bool bf16_dot_outruns_fma();

}  // namespace ravlt::runtime::cpu
