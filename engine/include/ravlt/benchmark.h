// Measurements that put benchmark figures in context.
#pragma once

#include "ravlt/export.h"

namespace ravlt {

/// This machine's float32 GEMM rate in GFLOP/s, measured with oneDNN's
/// matmul on `size` x `size` matrices using `threads` threads (0: all
/// cores): the rate a convolution-and-GEMM network can at best reach. Takes
/// about a second.
RAVLT_API double measure_gemm_gflops(int threads, int size = 1024);

}  // namespace ravlt
