// The layout changes NCHW <-> NHWC as one batched transpose: y[b][j][i] =
// x[b][i][j] for x of (batches, rows, cols). Reads and writes stay
// contiguous across a warp:
//  - few rows (an RGB image's 3 channels): a thread per column copies that
//    column's few values into one contiguous run of y;
//  - otherwise 32 x 32 tiles through shared memory (a padded row: no bank
//    conflicts on the transposed read).
// Indices are 32-bit within an image (the host checks that they fit).
#include "runtime/cuda/device_math.cuh"

namespace ravlt::runtime::cuda {
namespace {

constexpr int kFewRows = 4;
constexpr int kSide = 32;
constexpr int kStep = 8;  // threadIdx.y: a tile's rows in steps of 8

template <typename T>
__global__ void transpose_few_rows_kernel(const T* __restrict__ x, T* __restrict__ y,
                                          unsigned columns_total, int rows, int cols) {
  for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < columns_total;
       i += gridDim.x * blockDim.x) {
    const unsigned b = i / static_cast<unsigned>(cols), j = i - b * cols;
    const T* src = x + static_cast<int64_t>(b) * rows * cols + j;
    T* dst = y + static_cast<int64_t>(i) * rows;
    for (int r = 0; r < rows; ++r) dst[r] = src[static_cast<int64_t>(r) * cols];
  }
}

template <typename T>
__global__ void transpose_tiled_kernel(const T* __restrict__ x, T* __restrict__ y, int rows,
                                       int cols, int col_tiles, int tiles_per_image) {
  __shared__ T tile[kSide][kSide + 1];
  const int image = blockIdx.x / tiles_per_image;
  const int t = blockIdx.x - image * tiles_per_image;
  const int r0 = (t / col_tiles) * kSide, c0 = (t % col_tiles) * kSide;
  const int64_t base = static_cast<int64_t>(image) * rows * cols;
  const T* src = x + base;
  T* dst = y + base;
  for (int i = threadIdx.y; i < kSide; i += kStep) {
    const int r = r0 + i, c = c0 + threadIdx.x;
    if (r < rows && c < cols) tile[i][threadIdx.x] = src[r * cols + c];
  }
  __syncthreads();
  for (int i = threadIdx.y; i < kSide; i += kStep) {
    const int c = c0 + i, r = r0 + threadIdx.x;
    if (r < rows && c < cols) dst[c * rows + r] = tile[threadIdx.x][i];
  }
}

}  // namespace

bool transpose_handles(int64_t batches, int64_t rows, int64_t cols) {
  const int64_t tiles = ((rows + kSide - 1) / kSide) * ((cols + kSide - 1) / kSide);
  return rows * cols < (int64_t{1} << 31) && batches * cols < (int64_t{1} << 31) &&
         batches * tiles < (int64_t{1} << 31);
}

void launch_transpose(DType s, const void* x, void* y, int batches, int rows, int cols,
                      cudaStream_t stream) {
  with_storage(s, [&](auto type) {
    using T = decltype(type);
    const T* in = static_cast<const T*>(x);
    T* out = static_cast<T*>(y);
    if (rows <= kFewRows) {
      const int64_t columns = static_cast<int64_t>(batches) * cols;
      transpose_few_rows_kernel<<<grid_for(columns), 256, 0, stream>>>(
          in, out, static_cast<unsigned>(columns), rows, cols);
      return;
    }
    const int col_tiles = (cols + kSide - 1) / kSide;
    const int tiles = ((rows + kSide - 1) / kSide) * col_tiles;
    transpose_tiled_kernel<<<static_cast<unsigned>(static_cast<int64_t>(batches) * tiles),
                             dim3(kSide, kStep), 0, stream>>>(in, out, rows, cols, col_tiles,
                                                              tiles);
  });
}

}  // namespace ravlt::runtime::cuda
