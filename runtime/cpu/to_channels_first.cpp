// (N, H, W, C) -> (N, C, H, W): a feature map handed out as a model output
// (always float32; a bfloat16 input is widened tile by tile).
// The maps are large (RAVLT-T's four at 800x1216: 29 MB) and written once,
// read next by the caller: each tile's channel runs go out with streaming
// stores where they are whole aligned runs, so that writing a line of the
// output does not first read it from memory (a third of the traffic).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "ravlt/error.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/typed_rows.h"

namespace ravlt::runtime::cpu {
namespace {

class ToChannelsFirstKernel : public Kernel {
 public:
  // Tiles of positions: the tile's rows of x stay in cache while each
  // channel's run of outputs is written contiguously.
  static constexpr int64_t kTile = 32;

  ToChannelsFirstKernel(const Shape& x, DType input, int threads)
      : n_(x[0]), plane_(x[1] * x[2]), c_(x[3]), convert_(convert_loops(active_isa())) {
    if (input != DType::kFloat32) buffers_ = ThreadBuffers(threads, kTile * c_);
  }

  size_t scratch_bytes() const override { return buffers_.bytes(); }

  void run(const ConstView* in, View output, uint8_t* scratch) override {
    float* out = output.f32();
    const bool widen = in[0].dtype != DType::kFloat32;
    const int64_t tiles = (plane_ + kTile - 1) / kTile;
    // A channel's run of a whole tile starts on 16 bytes when the planes
    // do (the output itself starts on a cache line).
    const bool aligned = plane_ % 4 == 0 && reinterpret_cast<uintptr_t>(out) % 16 == 0;
#pragma omp parallel num_threads(threads())
    {
#pragma omp for collapse(2) schedule(static) nowait
      for (int64_t b = 0; b < n_; ++b) {
        for (int64_t t = 0; t < tiles; ++t) {
          const int64_t p0 = t * kTile, p1 = std::min(plane_, p0 + kTile);
          // Positions p0..p1 of image b as float32, position p at rows + p * c.
          const float* rows = widen ? widen_rows(convert_, in[0], c_, 0, c_, b * plane_, p0, p1,
                                                 buffers_.mine(scratch))
                                          .base
                                    : in[0].f32() + b * plane_ * c_;
          float* dst = out + b * c_ * plane_;
          write_tile(rows, p0, p1, dst, aligned && p1 - p0 == kTile);
        }
      }
      // This thread's streaming stores drained before the region's closing
      // barrier, after which the caller reads the maps.
      _mm_sfence();
    }
  }

 private:
  static constexpr int64_t kChannelBlock = 64;

  // Positions [p0, p1) of `rows` into their channels' runs in `dst`, by
  // blocks of channels transposed in a buffer of this thread; streamed out
  // when `stream` (a whole tile, each run on 16 bytes).
  void write_tile(const float* rows, int64_t p0, int64_t p1, float* dst, bool stream) const {
    alignas(64) float block[kChannelBlock][kTile];
    const int64_t count = p1 - p0;
    for (int64_t c0 = 0; c0 < c_; c0 += kChannelBlock) {
      const int64_t cn = std::min(kChannelBlock, c_ - c0);
      for (int64_t p = 0; p < count; ++p) {
        const float* row = rows + (p0 + p) * c_ + c0;
        for (int64_t c = 0; c < cn; ++c) block[c][p] = row[c];
      }
      for (int64_t c = 0; c < cn; ++c) {
        float* run = dst + (c0 + c) * plane_ + p0;
        if (stream) {
          for (int64_t p = 0; p < kTile; p += 4) _mm_stream_ps(run + p, _mm_load_ps(block[c] + p));
        } else {
          std::memcpy(run, block[c], static_cast<size_t>(count) * sizeof(float));
        }
      }
    }
  }

  int threads() const {
    return buffers_.threads() > 0 ? buffers_.threads() : omp_get_max_threads();
  }

  int64_t n_, plane_, c_;
  const ConvertLoops& convert_;
  ThreadBuffers buffers_;
};

}  // namespace

std::unique_ptr<Kernel> make_to_channels_first(const PrepareArgs& args) {
  if (output_dtype(args) != DType::kFloat32) {
    throw Error("node '" + args.node.name + "': NCHW feature maps are float32");
  }
  return std::make_unique<ToChannelsFirstKernel>(args.input_shape(0), input_dtype(args, 0),
                                                 args.context.threads);
}

}  // namespace ravlt::runtime::cpu
