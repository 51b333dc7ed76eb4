// (N, C, H, W) -> (N, H, W, C): the graph input into the canonical layout
// (narrowed to bfloat16 when the plan stores its output so).
#include "base/half_float.h"
#include "runtime/cpu/isa_kernels.h"
#include "runtime/cpu/kernels.h"

namespace ravlt::runtime::cpu {
namespace {

// Pixels [p0, p1) of C planes interleaved. With C known the compiler
// vectorizes it (loads of each plane, shuffles into pixels): RAVLT-T's
// 224 x 224 RGB input 0.064-0.081 -> 0.036 ms at 2 threads, against one
// element at a time (AMD Zen 5).
template <int C>
void interleave(const float* __restrict x, int64_t plane, int64_t p0, int64_t p1,
                float* __restrict out) {
  for (int64_t p = p0; p < p1; ++p) {
    for (int c = 0; c < C; ++c) out[p * C + c] = x[c * plane + p];
  }
}

class ToChannelsLastKernel : public Kernel {
 public:
  explicit ToChannelsLastKernel(const Shape& x)
      : n_(x[0]), c_(x[1]), h_(x[2]), w_(x[3]), convert_(convert_loops(active_isa())) {}

  void run(const ConstView* in, View output, uint8_t*) override {
    const int64_t plane = h_ * w_;
    if (output.dtype == DType::kFloat32 && c_ == 3) {  // RGB: runs of pixels, vectorized
      const float* x = in[0].f32();
      float* out = output.f32();
      constexpr int64_t kRun = 1024;
      const int64_t runs = (plane + kRun - 1) / kRun;
#pragma omp parallel for collapse(2) schedule(static)
      for (int64_t b = 0; b < n_; ++b) {
        for (int64_t r = 0; r < runs; ++r) {
          const int64_t p0 = r * kRun, p1 = p0 + kRun < plane ? p0 + kRun : plane;
          interleave<3>(x + b * 3 * plane, plane, p0, p1, out + b * plane * 3);
        }
      }
      return;
    }
    if (output.dtype == DType::kFloat32) {
      const float* x = in[0].f32();
      float* out = output.f32();
#pragma omp parallel for collapse(2) schedule(static)
      for (int64_t b = 0; b < n_; ++b) {
        for (int64_t p = 0; p < plane; ++p) {
          const float* src = x + b * c_ * plane + p;
          float* dst = out + (b * plane + p) * c_;
          for (int64_t c = 0; c < c_; ++c) dst[c] = src[c * plane];
        }
      }
      return;
    }
    // bfloat16: a tile of positions gathered as float32 (channels in
    // pieces of at most 16), then narrowed a row at a time.
    auto* out = static_cast<uint16_t*>(output.data);
    constexpr int64_t kTile = 64, kPiece = 16;
    const int64_t tiles = (plane + kTile - 1) / kTile;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < n_; ++b) {
      for (int64_t t = 0; t < tiles; ++t) {
        const int64_t p0 = t * kTile, p1 = p0 + kTile < plane ? p0 + kTile : plane;
        for (int64_t c0 = 0; c0 < c_; c0 += kPiece) {
          const int64_t cc = c0 + kPiece < c_ ? kPiece : c_ - c0;
          float rows[kTile * kPiece];
          for (int64_t p = p0; p < p1; ++p) {
            for (int64_t c = 0; c < cc; ++c) {
              rows[(p - p0) * cc + c] = element(in[0], (b * c_ + c0 + c) * plane + p);
            }
          }
          if (cc == c_) {  // whole rows: the tile is one contiguous run
            convert_.f32_to_bf16(rows, out + (b * plane + p0) * c_, (p1 - p0) * c_);
            continue;
          }
          for (int64_t p = p0; p < p1; ++p) {
            convert_.f32_to_bf16(rows + (p - p0) * cc, out + (b * plane + p) * c_ + c0, cc);
          }
        }
      }
    }
  }

 private:
  // Element i of x as float32 (a session's input is float32; a kernel test
  // also feeds bfloat16).
  static float element(ConstView x, int64_t i) {
    if (x.dtype == DType::kFloat32) return x.f32()[i];
    return bfloat16_to_float(static_cast<const uint16_t*>(x.data)[i]);
  }

  int64_t n_, c_, h_, w_;
  const ConvertLoops& convert_;
};

}  // namespace

std::unique_ptr<Kernel> make_to_channels_last(const PrepareArgs& args) {
  return std::make_unique<ToChannelsLastKernel>(args.input_shape(0));
}

}  // namespace ravlt::runtime::cpu
