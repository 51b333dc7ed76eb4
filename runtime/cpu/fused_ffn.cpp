// The FFN as one kernel (fused_ffn.h).
//
// Why: node by node, the hidden activations (3.5x the block's width) go to
// memory and back three times: fc1 writes them, the depthwise convolution
// reads them and writes its own, fc2 reads those. At batch 8, or at
// detection sizes, they are tens of MB and those passes run at memory
// speed (RAVLT-T's first ffn.dwconv: 3.6 ms at batch 8 for 50 M
// multiply-adds, 0.8 ms with its data in the caches).
//
// How: each thread takes a task, a whole image or an equal part of one's
// rows, and walks it by bands of `band_` image rows. Per band: fc1 and GELU
// of the rows below the band's first into a buffer of band_ + 2 rows (the
// row above and the first row come from the band before: only a task's
// first band computes them, so a part of an image recomputes one row of
// fc1 at its top); the depthwise convolution into a second buffer; fc2 of
// it, with the residual, into the output. Both buffers stay in the
// thread's second-level cache.
// Where image rows are so wide that fewer than two fit a band (detection
// sizes: 304 x 224 floats a row at 800 x 1216), bands are one row and
// fc1's last three rows stay in a ring of row buffers (carrying two rows
// from band to band would copy twice what a band computes), and the rows
// are cut into tiles of columns, each walked down the task's rows in
// turn, so that the ring and the convolution's row stay in the cache
// (four whole rows there: 1.1 MB). A tile's hidden rows reach one column
// past it on each side, the convolution's neighbours, computed by fc1
// twice. On AMD Zen 4 (RAVLT-T's backbone, alternated runs) the FFNs of
// stages 1-2 took 0.965x the time of bands of one whole row at 800 x 1216
// (ten rounds) and 0.95x at 1024 x 2048 (seven).
//
// The GEMMs are oneDNN matmuls (below AVX-512, their 1x1 convolution form:
// gemm_primitive.h) run single-threaded inside our parallel
// region (oneDNN's OpenMP runtime runs a nested call on its caller's
// thread), one primitive per distinct row count of the schedule, each with
// its weights packed for it: a run-time row count takes oneDNN's gemm:jit
// path, measured 10-25 % slower single-threaded than the fixed shapes'
// brgemm at these sizes. The convolution is ours (depthwise_loops.inc),
// two output rows a pass where a band has them (each hidden row read once
// for both): oneDNN's would need the band's rows as one padded image.
//
// In a bfloat16 plan both GEMMs compute in bfloat16 on oneDNN's bfloat16
// kernels (AMX or AVX512_BF16) with float32 accumulation: fc1 reads its
// bfloat16 source and writes the hidden rows in float32 (GELU over them in
// float32, as in a float32 plan), the convolution reads those and rounds
// its output once to bfloat16, fc2's source; fc2 writes the block's output
// and adds the residual in the types the plan stores them in. Node by node
// the hidden activations were rounded to bfloat16 once more (after GELU),
// and at batch 8 went through memory twice.
#include "runtime/cpu/fused_ffn.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <numeric>
#include <optional>
#include <set>

#include "runtime/cpu/dnnl_util.h"
#include "runtime/cpu/gemm_primitive.h"
#include "runtime/cpu/isa.h"
#include "runtime/cpu/isa_kernels.h"
#include "runtime/cpu/kernels.h"
#include "runtime/cpu/parallel_errors.h"

namespace ravlt::runtime::cpu {
namespace {

// A fusion pays where the hidden activations outgrow what the caches keep
// between nodes (RAVLT-T at 224: the stage-1 FFN's 2.8 MB per image, the
// stage-2 one's 1.4 MB).
constexpr size_t kMinHiddenBytes = size_t{1} << 20;
// Per thread, the two band buffers together: half the second-level cache
// of the CPUs measured (1-2 MB per core), the rest for the GEMMs' operands.
constexpr size_t kBandBufferBytes = size_t{1} << 20;
// The most input plus output channels of an FFN per GEMM row of a band
// (is_ffn() says why).
constexpr int64_t kMostWidthPerBandRow = 2;

// How a kernel cuts its work: `parts` tasks per image (whole images per
// thread where they share out evenly or are many; else each image in
// parts, so that every thread has the same rows), bands of `band` rows;
// where bands are one row (`ring`), rows in `tiles` tiles of columns.
// `least_gemm_rows`: the fewest rows a tile's GEMMs may have.
struct Bands {
  Bands(int64_t n, int64_t h, int64_t w, int64_t f, int64_t threads, int64_t least_gemm_rows) {
    parts = n >= 4 * threads || n % threads == 0
                ? 1
                : std::min<int64_t>(h, threads / std::gcd(n, threads));
    const int64_t budget = static_cast<int64_t>(kBandBufferBytes);
    const int64_t part_rows = (h + parts - 1) / parts;
    const int64_t most = (budget / (w * f * kFloat) - 2) / 2;
    if (most >= 2) {
      const int64_t bands = (part_rows + most - 1) / most;
      band = (part_rows + bands - 1) / bands;
      return;
    }
    ring = true;
    // The ring's three rows and the convolution's one, each a tile and its
    // two neighbouring columns wide, within the budget.
    auto fits = [&](int64_t t) { return 4 * (ceil_div(w, t) + 2) * f * kFloat <= budget; };
    while (!fits(tiles) && ceil_div(w, tiles + 1) >= least_gemm_rows) ++tiles;
  }
  static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
  static constexpr int64_t kFloat = sizeof(float);
  int64_t parts = 1, band = 1, tiles = 1;
  bool ring = false;
};

bool is_ffn(const Graph& graph, const std::vector<Shape>& shapes, const Node& fc1, const Node& dw,
            const Node& fc2, const std::vector<int>& readers, const CpuContext& context) {
  if (fc1.op != Op::kLinear || dw.op != Op::kConv2d || fc2.op != Op::kLinear) return false;
  if (fc1.inputs.size() != 3 || dw.inputs[0] != fc1.output || fc2.inputs[0] != dw.output) {
    return false;
  }
  if (readers[fc1.output] != 1 || readers[dw.output] != 1) return false;
  if (fc1.activation == Activation::kSwish || dw.activation != Activation::kNone ||
      fc2.activation != Activation::kNone) {
    return false;
  }
  // Both GEMMs in the plan's type, fc1 reading its source as it is stored.
  const DType compute = context.compute_dtype(graph, fc1);
  if (context.compute_dtype(graph, fc2) != compute ||
      context.value_dtype(graph, fc1.inputs[0]) != compute) {
    return false;
  }
  const Shape& x = shapes[fc1.inputs[0]];
  const Shape& w1 = shapes[fc1.inputs[1]];
  const Shape& wd = shapes[dw.inputs[1]];
  const Shape& w2 = shapes[fc2.inputs[1]];
  if (x.size() != 4 || w1.size() != 2 || w2.size() != 2 || wd.size() != 4) return false;
  const int64_t f = w1[0];
  const ConvAttrs& c = dw.conv;
  const bool depthwise_3x3 = c.groups == f && wd[0] == f && wd[1] == 1 && c.kernel_h == 3 &&
                             c.kernel_w == 3 && c.stride_h == 1 && c.stride_w == 1 &&
                             c.pad_h == 1 && c.pad_w == 1;
  // Per image, not per batch: whether an image's rows go through the
  // fused kernel or node by node changes their rounding, and an image's
  // result must not depend on the batch it came in.
  if (!depthwise_3x3 || w1[1] != x[3] || w2[1] != f ||
      static_cast<size_t>(x[1] * x[2] * f) * sizeof(float) < kMinHiddenBytes) {
    return false;
  }
  // Every band's two GEMMs read both weights (from the last-level cache
  // once they outgrow the second): worth it only where a band has rows
  // enough. RAVLT-T at batch 8, fused against not: stage 1 (64 + 64
  // channels, bands of 448 rows) 9.6 against 13.5 ms per FFN, stage 2 (256,
  // 196 rows) 8.5 against 9.2 ms, stage 3 (512, 98 rows) 7.4-8.3 against
  // 7.3-7.7 ms, stage 4 (1024, 49 rows) 7.3-8.1 against 6.9-7.4 ms.
  // (Bands of whole images, for the same reason.)
  const int64_t least_gemm_rows = Bands::ceil_div(x[3] + w2[0], kMostWidthPerBandRow);
  const Bands whole(1, x[1], x[2], f, 1, least_gemm_rows);
  return x[3] + w2[0] <= kMostWidthPerBandRow * whole.band * (x[2] / whole.tiles);
}

class FusedFfnKernel : public Kernel {
 public:
  FusedFfnKernel(const Graph& g, const Fusion& f, const std::vector<Shape>& shapes,
                 CpuContext& context)
      : fc1_node_(g.nodes()[f.nodes[0]]),
        fc2_node_(g.nodes()[f.nodes[2]]),
        threads_(context.threads) {
    const Node& dw = g.nodes()[f.nodes[1]];
    compute_ = context.compute_dtype(g, fc1_node_);
    output_ = context.value_dtype(g, fc2_node_.output);
    const Shape& x = shapes[fc1_node_.inputs[0]];
    n_ = x[0], h_ = x[1], w_ = x[2], c_ = x[3];
    f_ = shapes[fc1_node_.inputs[1]][0];
    c2_ = shapes[fc2_node_.inputs[1]][0];
    gelu_ = fc1_node_.activation == Activation::kGelu;
    residual_ = fc2_node_.inputs.size() == 4;
    if (residual_) residual_type_ = context.value_dtype(g, fc2_node_.inputs[3]);
    const Bands bands(n_, h_, w_, f_, threads_, Bands::ceil_div(c_ + c2_, kMostWidthPerBandRow));
    parts_ = bands.parts;
    band_ = bands.band;
    ring_ = bands.ring;
    tiles_ = bands.tiles;
    const int64_t row_bytes = w_ * f_ * static_cast<int64_t>(sizeof(float));

    // The row counts of every GEMM the schedule runs, one primitive each.
    std::set<int64_t> fc1_rows, fc2_rows;
    if (ring_) {
      for (int64_t i = 0; i < tiles_; ++i) {
        const Tile t = tile(i);
        fc1_rows.insert(t.hx1 - t.hx0);
        fc2_rows.insert(t.x1 - t.x0);
        widest_hidden_ = std::max(widest_hidden_, t.hx1 - t.hx0);
      }
    } else {
      for (int64_t task = 0; task < n_ * parts_; ++task) {
        walk(
            task, [&](int64_t, int64_t rows, int64_t) { fc1_rows.insert(rows * w_); },
            [&](int64_t, int64_t rows, int64_t) { fc2_rows.insert(rows * w_); });
      }
    }
    PrepareArgs fc1_args{g, fc1_node_, shapes, context};
    PrepareArgs fc2_args{g, fc2_node_, shapes, context};
    std::optional<DType> residual;
    if (residual_) residual = residual_type_;
    for (int64_t rows : fc1_rows) {
      fc1_.emplace(rows, gemm(fc1_args, rows, c_, f_, DType::kFloat32, std::nullopt));
    }
    for (int64_t rows : fc2_rows) {
      fc2_.emplace(rows, gemm(fc2_args, rows, f_, c2_, output_, residual));
    }
    size_t gemm_scratch = 0;
    for (const auto* set : {&fc1_, &fc2_}) {
      for (const auto& [rows, gm] : *set) {
        gemm_scratch = std::max(gemm_scratch, gm.form.scratchpad.get_size());
      }
    }
    // The convolution's output is fc2's source, in the type the GEMMs compute in.
    const size_t conv_size = dtype_size(compute_);
    if (ring_) {  // the ring's three rows and a row of zeros; the convolution's row
      const auto tile_row = static_cast<size_t>(widest_hidden_ * f_);
      hidden_bytes_ = 4 * cache_lines(tile_row * sizeof(float));
      conv_bytes_ = cache_lines(tile_row * conv_size);
    } else {
      hidden_bytes_ = cache_lines(static_cast<size_t>((band_ + 2) * row_bytes));
      conv_bytes_ = cache_lines(static_cast<size_t>(band_ * w_ * f_) * conv_size);
    }
    per_thread_bytes_ = hidden_bytes_ + conv_bytes_ + cache_lines(gemm_scratch);
    gear_.reserve(static_cast<size_t>(threads_));
    for (int i = 0; i < threads_; ++i) gear_.emplace_back(context.engine, *this);

    // The convolution's taps as (3, 3, F), shared with the unfused kernel's
    // (the weight cache's copy, the mapped original released).
    taps_ = depthwise_taps(PrepareArgs{g, dw, shapes, context}, 3, f_);
  }

  size_t scratch_bytes() const override {
    return static_cast<size_t>(threads_) * per_thread_bytes_;
  }

  void run(const ConstView* in, View output, uint8_t* scratch) override {
    // in: x, fc1's weight and bias, the convolution's weight and bias,
    // fc2's weight and bias, the residual (Fusion::inputs).
    ParallelErrors errors;
    const int64_t tasks = n_ * parts_;
#pragma omp parallel for schedule(static) num_threads(threads_)
    for (int64_t task = 0; task < tasks; ++task) {
      errors.run([&] {
        if (ring_) return run_ring_task(in, output, scratch, task);
        run_task(in, output, scratch, task);
      });
    }
    errors.rethrow();
  }

 private:
  // One GEMM at a fixed row count: (m, k) x (k, o) + bias, plus the
  // residual where asked; its weight packed for its primitive.
  struct Gemm {
    GemmPrimitive form;
    const void* weights;
  };

  // (m, k) x (k, o) from a source of the compute type into `output`, plus
  // a residual of type `residual` where given.
  Gemm gemm(const PrepareArgs& a, int64_t m, int64_t k, int64_t o, DType output,
            std::optional<DType> residual) const {
    GemmShape shape{m, k, o, dnnl_type(compute_), dnnl_type(output), std::nullopt};
    if (residual) shape.residual = dnnl_type(*residual);
    shape.weights_as_stored = !a.context.pack_weights;
    GemmPrimitive form = make_gemm_primitive(shape, nullptr, GemmForm::kBest, a.context.engine);
    const void* packed = packed_weight(a, 1, form.stored_weights, form.weights);
    count_stored_weight_gemm(a, 1, packed);
    return {std::move(form), packed};
  }

  // One thread's handles for one Gemm, re-pointed per call.
  struct Call {
    Call(const dnnl::engine& engine, const Gemm& gm, bool adds, const std::string& node)
        : src(gm.form.src, engine, DNNL_MEMORY_NONE),
          weights(gm.form.weights, engine, const_cast<void*>(gm.weights)),
          bias(gm.form.bias, engine, DNNL_MEMORY_NONE),
          dst(gm.form.dst, engine, DNNL_MEMORY_NONE),
          residual(gm.form.residual, engine, DNNL_MEMORY_NONE),
          scratch(gm.form.scratchpad, engine, DNNL_MEMORY_NONE),
          args(node) {
      args.add(DNNL_ARG_SRC, src);
      args.add(DNNL_ARG_WEIGHTS, weights);
      args.add(DNNL_ARG_BIAS, bias);
      args.add(DNNL_ARG_DST, dst);
      args.add(DNNL_ARG_SCRATCHPAD, scratch);
      if (adds) {
        args.add(DNNL_ARG_ATTR_MULTIPLE_POST_OP(gm.form.residual_index) | DNNL_ARG_SRC_1, residual);
      }
    }
    dnnl::memory src, weights, bias, dst, residual, scratch;
    PrimitiveArgs args;
  };

  // One thread's stream and calls.
  struct Gear {
    Gear(const dnnl::engine& engine, const FusedFfnKernel& k) : stream(engine) {
      for (const auto& [rows, gm] : k.fc1_)
        fc1.emplace(rows, Call(engine, gm, false, k.fc1_node_.name));
      for (const auto& [rows, gm] : k.fc2_) {
        fc2.emplace(rows, Call(engine, gm, k.residual_, k.fc2_node_.name));
      }
    }
    dnnl::stream stream;  // one per thread: a stream is not for concurrent use
    std::map<int64_t, Call> fc1, fc2;
  };

  // The steps of task `task`, in order: fc1(first_row, rows, slot) for fc1
  // of image rows [first_row, first_row + rows) into the band buffer from
  // row slot `slot`; band(y, rows, fresh) for the band of rows [y, y + rows),
  // once its buffer holds rows y - 1 .. y + rows (the `fresh` ones below y
  // just computed; a row outside the image is left to band() to zero).
  template <typename Fc1, typename Band>
  void walk(int64_t task, Fc1&& fc1, Band&& band) const {
    const int64_t part = task % parts_;
    const int64_t ya = h_ * part / parts_, yb = h_ * (part + 1) / parts_;
    const int64_t lead = ya > 0 ? ya - 1 : ya;  // rows ya - 1 (if any) and ya
    fc1(lead, ya + 1 - lead, ya > 0 ? 0 : 1);
    for (int64_t y = ya; y < yb; y += band_) {
      const int64_t rows = std::min(band_, yb - y);
      const int64_t fresh = std::min(y + rows, h_ - 1) - y;  // rows y + 1 .. in the image
      if (fresh > 0) fc1(y + 1, fresh, 2);
      band(y, rows, fresh);
    }
  }

  void run_task(const ConstView* in, View out, uint8_t* scratch, int64_t task) {
    const int me = omp_get_thread_num();
    Gear& gear = gear_[static_cast<size_t>(me)];
    uint8_t* mine = scratch + static_cast<size_t>(me) * per_thread_bytes_;
    auto* hidden = reinterpret_cast<float*>(mine);
    uint8_t* conv = mine + hidden_bytes_;
    uint8_t* gemm_scratch = mine + hidden_bytes_ + conv_bytes_;
    const int64_t image = task / parts_, row = w_ * f_;
    const int64_t pixels = image * h_ * w_;  // before this image's first
    const float* bias = in[4].f32();
    walk(
        task,
        [&](int64_t first, int64_t rows, int64_t slot) {
          if (slot == 1) std::memset(hidden, 0, static_cast<size_t>(row) * sizeof(float));
          float* dst = hidden + slot * row;
          run_gemm(gear.fc1.at(rows * w_), fc1_.at(rows * w_), gear.stream,
                   at_pixel(in[0], pixels + first * w_, c_), dst, in[2].f32(), nullptr,
                   gemm_scratch);
          if (gelu_) activation_.gelu_f32(dst, rows * row);
        },
        [&](int64_t y, int64_t rows, int64_t fresh) {
          if (fresh < rows) {  // the row below the image
            std::memset(hidden + (rows + 1) * row, 0, static_cast<size_t>(row) * sizeof(float));
          }
          int64_t i = 0;
          for (; i + 2 <= rows; i += 2) {
            const float* taps_rows[4] = {hidden + i * row, hidden + (i + 1) * row,
                                         hidden + (i + 2) * row, hidden + (i + 3) * row};
            convolve_two_rows(taps_rows, bias, w_, conv_row(conv, i * row),
                              conv_row(conv, (i + 1) * row));
          }
          if (i < rows) {
            const float* taps_rows[3] = {hidden + i * row, hidden + (i + 1) * row,
                                         hidden + (i + 2) * row};
            convolve_row(taps_rows, bias, w_, conv_row(conv, i * row));
          }
          const int64_t at = pixels + y * w_;
          run_gemm(gear.fc2.at(rows * w_), fc2_.at(rows * w_), gear.stream, conv,
                   at_pixel(out, at, c2_), in[6].f32(),
                   residual_ ? at_pixel(in[7], at, c2_) : nullptr, gemm_scratch);
          // Rows y + rows - 1 and y + rows become the next band's first two.
          std::memmove(hidden, hidden + rows * row, static_cast<size_t>(2 * row) * sizeof(float));
        });
  }

  // Tile i's output columns [x0, x1) and its hidden ones [hx0, hx1): one
  // column more on each side, where the image has it.
  struct Tile {
    int64_t x0, x1, hx0, hx1;
  };
  Tile tile(int64_t i) const {
    const int64_t x0 = w_ * i / tiles_, x1 = w_ * (i + 1) / tiles_;
    return {x0, x1, std::max<int64_t>(0, x0 - 1), std::min(w_, x1 + 1)};
  }

  // Bands of one row (Bands::ring): per tile of columns, down the task's
  // rows, fc1's rows y - 1, y, y + 1 in ring slots (y mod 3), a row of
  // zeros standing for those outside the image.
  void run_ring_task(const ConstView* in, View out, uint8_t* scratch, int64_t task) {
    const int me = omp_get_thread_num();
    Gear& gear = gear_[static_cast<size_t>(me)];
    uint8_t* mine = scratch + static_cast<size_t>(me) * per_thread_bytes_;
    const size_t slot_bytes = hidden_bytes_ / 4;
    auto slot = [&](int64_t i) { return reinterpret_cast<float*>(mine + i * slot_bytes); };
    float* zeros = slot(3);
    uint8_t* conv = mine + hidden_bytes_;
    uint8_t* gemm_scratch = mine + hidden_bytes_ + conv_bytes_;
    const int64_t image = task / parts_, part = task % parts_;
    const int64_t ya = h_ * part / parts_, yb = h_ * (part + 1) / parts_;
    const int64_t pixels = image * h_ * w_;  // before this image's first
    std::memset(zeros, 0, static_cast<size_t>(widest_hidden_ * f_) * sizeof(float));
    for (int64_t i = 0; i < tiles_; ++i) {
      const Tile t = tile(i);
      const int64_t hidden = t.hx1 - t.hx0, cols = t.x1 - t.x0;
      // fc1 and GELU of image row r's hidden columns into its slot.
      auto fc1 = [&](int64_t r) {
        float* dst = slot(r % 3);
        run_gemm(gear.fc1.at(hidden), fc1_.at(hidden), gear.stream,
                 at_pixel(in[0], pixels + r * w_ + t.hx0, c_), dst, in[2].f32(), nullptr,
                 gemm_scratch);
        if (gelu_) activation_.gelu_f32(dst, hidden * f_);
      };
      auto row = [&](int64_t r) -> const float* { return r < 0 || r >= h_ ? zeros : slot(r % 3); };
      if (ya > 0) fc1(ya - 1);
      fc1(ya);
      for (int64_t y = ya; y < yb; ++y) {
        if (y + 1 < h_) fc1(y + 1);
        const float* taps_rows[3] = {row(y - 1), row(y), row(y + 1)};
        // Every hidden column: the two outside the tile are wrong (their
        // neighbours are missing) and left out.
        convolve_row(taps_rows, in[4].f32(), hidden, conv);
        const int64_t at = pixels + y * w_ + t.x0;
        run_gemm(gear.fc2.at(cols), fc2_.at(cols), gear.stream, conv_row(conv, (t.x0 - t.hx0) * f_),
                 at_pixel(out, at, c2_), in[6].f32(),
                 residual_ ? at_pixel(in[7], at, c2_) : nullptr, gemm_scratch);
      }
    }
  }

  static void run_gemm(Call& call, const Gemm& gm, dnnl::stream& stream, const void* src, void* dst,
                       const float* bias, const void* residual, uint8_t* scratch) {
    call.src.set_data_handle(const_cast<void*>(src));
    call.dst.set_data_handle(dst);
    call.bias.set_data_handle(const_cast<float*>(bias));
    call.scratch.set_data_handle(scratch);
    if (residual != nullptr) call.residual.set_data_handle(const_cast<void*>(residual));
    call.args.execute(gm.form.primitive, stream);
  }

  // Pixel p of a channels-last tensor of `channels` per pixel, of its type.
  static uint8_t* at_pixel(const View& v, int64_t p, int64_t channels) {
    return static_cast<uint8_t*>(v.data) + static_cast<size_t>(p * channels) * dtype_size(v.dtype);
  }
  static const uint8_t* at_pixel(const ConstView& v, int64_t p, int64_t channels) {
    return static_cast<const uint8_t*>(v.data) +
           static_cast<size_t>(p * channels) * dtype_size(v.dtype);
  }
  // Element e of the convolution's output buffer (the compute type).
  uint8_t* conv_row(uint8_t* conv, int64_t e) const {
    return conv + static_cast<size_t>(e) * dtype_size(compute_);
  }

  // One output row of the convolution (`width` pixels) from hidden rows
  // rows[0..2], into `out` in the compute type; two rows from rows[0..3].
  void convolve_row(const float* const* rows, const float* bias, int64_t width,
                    uint8_t* out) const {
    if (compute_ == DType::kBFloat16) {
      return depthwise_.depthwise3x3_row_bf16_out(rows, taps_, bias, width, f_, f_,
                                                  reinterpret_cast<uint16_t*>(out));
    }
    depthwise_.depthwise3x3_row(rows, taps_, bias, width, f_, f_, reinterpret_cast<float*>(out));
  }
  void convolve_two_rows(const float* const* rows, const float* bias, int64_t width, uint8_t* out0,
                         uint8_t* out1) const {
    if (compute_ == DType::kBFloat16) {
      uint16_t* const outs[2] = {reinterpret_cast<uint16_t*>(out0),
                                 reinterpret_cast<uint16_t*>(out1)};
      return depthwise_.depthwise3x3_two_rows_bf16_out(rows, taps_, bias, width, f_, f_, outs);
    }
    float* const outs[2] = {reinterpret_cast<float*>(out0), reinterpret_cast<float*>(out1)};
    depthwise_.depthwise3x3_two_rows(rows, taps_, bias, width, f_, f_, outs);
  }

  const Node& fc1_node_;
  const Node& fc2_node_;
  int threads_;
  int64_t n_ = 0, h_ = 0, w_ = 0, c_ = 0, f_ = 0, c2_ = 0;
  bool gelu_ = false, residual_ = false;
  DType compute_ = DType::kFloat32;  // the GEMMs' sources and the convolution's output
  // The output's and the residual's types, as the plan stores them.
  DType output_ = DType::kFloat32, residual_type_ = DType::kFloat32;
  int64_t parts_ = 1;                  // tasks per image
  int64_t band_ = 1;                   // image rows per band
  bool ring_ = false;                  // bands of one row, in tiles (run_ring_task)
  int64_t tiles_ = 1;                  // of columns, with ring_
  int64_t widest_hidden_ = 0;          // a tile's hidden columns, at most (ring_)
  std::map<int64_t, Gemm> fc1_, fc2_;  // by GEMM rows
  size_t hidden_bytes_ = 0, conv_bytes_ = 0, per_thread_bytes_ = 0;
  std::vector<Gear> gear_;
  const float* taps_ = nullptr;  // (3, 3, F): depthwise_taps()
  const ActivationLoops& activation_ = activation_loops(active_isa());
  const DepthwiseLoops& depthwise_ = depthwise_loops(active_isa());
};

}  // namespace

std::vector<Fusion> find_ffn_fusions(const Graph& graph, const std::vector<size_t>& steps,
                                     const std::vector<Shape>& shapes,
                                     const std::vector<int>& readers, const CpuContext& context) {
  std::vector<Fusion> found;
  const auto& nodes = graph.nodes();
  for (size_t i = 0; i + 2 < steps.size(); ++i) {
    const Node& fc1 = nodes[steps[i]];
    const Node& dw = nodes[steps[i + 1]];
    const Node& fc2 = nodes[steps[i + 2]];
    if (!is_ffn(graph, shapes, fc1, dw, fc2, readers, context)) continue;
    Fusion f{{steps[i], steps[i + 1], steps[i + 2]}, {}, kFusedFfnKind};
    f.inputs = fc1.inputs;
    f.inputs.insert(f.inputs.end(), dw.inputs.begin() + 1, dw.inputs.end());
    f.inputs.insert(f.inputs.end(), fc2.inputs.begin() + 1, fc2.inputs.end());
    found.push_back(std::move(f));
    i += 2;
  }
  return found;
}

std::unique_ptr<Kernel> make_fused_ffn(const Graph& graph, const Fusion& fusion,
                                       const std::vector<Shape>& shapes, CpuContext& context) {
  return std::make_unique<FusedFfnKernel>(graph, fusion, shapes, context);
}

}  // namespace ravlt::runtime::cpu
