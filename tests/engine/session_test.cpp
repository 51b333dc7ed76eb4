// The public Model / Session API: runs, shapes, errors, no allocation in a
// steady-state run, and several threads sharing one Model.
#include <doctest/doctest.h>
#include <filesystem>

#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>
#include <dnnl.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <thread>

#include "ravlt/convert.h"
#include "ravlt/error.h"
#include "ravlt/model.h"
#include "ravlt/model_info.h"
#include "tests/test_util.h"

// Heap allocations made while `recording` is on are logged with their call
// site (C allocator interposed, operator new replaced), so that a test can
// tell the engine's own allocations from those inside oneDNN. Not in a
// sanitizer build: AddressSanitizer owns the allocator there.
#ifndef RAVLT_SANITIZED
extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);
}
namespace {
std::atomic<bool> recording{false};
std::atomic<int> recorded{0};
void* call_sites[1 << 16];
void note(void* site) {
  if (!recording.load(std::memory_order_relaxed)) return;
  const int i = recorded.fetch_add(1, std::memory_order_relaxed);
  if (i < (1 << 16)) call_sites[i] = site;
}
}  // namespace
extern "C" {
void* malloc(size_t n) {
  note(__builtin_return_address(0));
  return __libc_malloc(n);
}
void* calloc(size_t n, size_t m) {
  note(__builtin_return_address(0));
  return __libc_calloc(n, m);
}
void* realloc(void* p, size_t n) {
  note(__builtin_return_address(0));
  return __libc_realloc(p, n);
}
void* aligned_alloc(size_t a, size_t n) {
  note(__builtin_return_address(0));
  return __libc_memalign(a, n);
}
int posix_memalign(void** p, size_t a, size_t n) {
  note(__builtin_return_address(0));
  *p = __libc_memalign(a, n);
  return *p == nullptr ? ENOMEM : 0;
}
}
void* operator new(size_t n) {
  note(__builtin_return_address(0));
  void* p = __libc_malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
// (__libc_free, not free: GCC cannot tell the replaced operator new's
// memory comes from malloc, and warns about a mismatched free.)
void operator delete(void* p) noexcept {
  __libc_free(p);
}
void operator delete(void* p, size_t) noexcept {
  __libc_free(p);
}
#else
namespace {
std::atomic<bool> recording{false};
std::atomic<int> recorded{0};
}  // namespace
#endif

namespace {
// Allocations recorded, split into those made from inside libdnnl and the rest.
std::pair<int, int> classify_recorded() {
  int dnnl = 0, other = 0;
#ifndef RAVLT_SANITIZED
  const int n = std::min(recorded.load(), 1 << 16);
  for (int i = 0; i < n; ++i) {
    Dl_info info;
    const bool in_dnnl = dladdr(call_sites[i], &info) != 0 && info.dli_fname != nullptr &&
                         std::strstr(info.dli_fname, "libdnnl") != nullptr;
    (in_dnnl ? dnnl : other)++;
  }
#endif
  return {dnnl, other};
}
}  // namespace

using namespace ravlt;
using ravlt::test::random_vector;
using ravlt::test::TempDir;
using ravlt::test::testdata;

namespace {

std::shared_ptr<const Model> custom_model(const TempDir& dir) {
  const std::string path = dir.file("custom.rvlt");
  convert_checkpoint(testdata("custom_bare.pth"), path);
  return Model::load(path);
}

}  // namespace

TEST_CASE("a session runs any batch and size; a planned shape runs without allocating") {
  TempDir dir;
  const auto model = custom_model(dir);
  CHECK(model->num_classes() == 11);
  Session session(model, SessionOptions{2});
  const std::vector<int64_t> shape = {3, 3, 41, 29};
  const auto input = random_vector(3 * 3 * 41 * 29, 1);
  const std::span<const float> first_run = session.run(input.data(), shape);
  const std::vector<float> first(first_run.begin(), first_run.end());
  REQUIRE(first.size() == 3 * 11);
  // Warm: OpenMP's team exists.
  session.run(input.data(), shape);
  recorded = 0;
  recording = true;
  const auto out = session.run(input.data(), shape);
  recording = false;
  const auto [in_dnnl, ours] = classify_recorded();
  // The engine allocates nothing; oneDNN 2.6 builds a small argument map
  // inside every primitive execution, which no API lets us avoid.
#ifdef RAVLT_SANITIZED
  MESSAGE("skipped: allocations are not counted in a sanitizer build");
#else
  CHECK(in_dnnl > 0);  // the interposition works: it sees oneDNN's
#endif
  CHECK(ours == 0);
  MESSAGE("steady-state run: " << ours << " allocations by the engine, " << in_dnnl
                               << " inside oneDNN's primitive execution");
  CHECK(std::equal(out.begin(), out.end(), first.begin()));  // deterministic
  // Another shape, then the first again: plans are cached.
  const auto small = random_vector(1 * 3 * 33 * 47, 2);
  CHECK(session.run(small.data(), std::vector<int64_t>{1, 3, 33, 47}).size() == 11);
  const auto again = session.run(input.data(), shape);
  CHECK(std::equal(again.begin(), again.end(), first.begin()));
  const PlanMemory memory = session.plan(shape);
  CHECK(memory.arena_bytes >= memory.lower_bound);
  CHECK(memory.lower_bound > 0);
  CHECK(memory.activation_bytes > 0);
  CHECK(memory.activation_bytes <= memory.arena_bytes);
  CHECK(memory.scratch_bytes > 0);  // RALA's and oneDNN's working memory
}

TEST_CASE(
    "a batch run image by image first allocates nothing either, and equals each image's run") {
  TempDir dir;
  const auto model = custom_model(dir);
  Session session(model, SessionOptions{2});
  // Large enough that the first values of the batch outgrow the CPU's
  // 8 MB limit (Backend::image_by_image_bytes).
  const std::vector<int64_t> shape = {2, 3, 301, 333};
  const size_t image = 3 * 301 * 333;
  const auto input = random_vector(2 * image, 12);
  const PlanMemory memory = session.plan(shape);
  REQUIRE(memory.image_by_image_ops > 0);
  CHECK(memory.arena_bytes >= memory.lower_bound);
  session.run(input.data(), shape);  // warm
  session.run(input.data(), shape);  // (twice: as a session that defers packing would need)
  recorded = 0;
  recording = true;
  const auto out = session.run(input.data(), shape);
  recording = false;
  CHECK(classify_recorded().second == 0);
  const std::vector<float> batched(out.begin(), out.end());
  REQUIRE(batched.size() == 2 * 11);
  for (size_t n = 0; n < 2; ++n) {
    const auto alone = session.run(input.data() + n * image, std::vector<int64_t>{1, 3, 301, 333});
    for (size_t j = 0; j < 11; ++j)
      CHECK(batched[n * 11 + j] == doctest::Approx(alone[j]).epsilon(1e-5));
  }
}

TEST_CASE("plan() prepares what run() and run_all() then use: their first call plans nothing") {
  TempDir dir;
  const auto model = custom_model(dir);
  // Packed by the plan (the default, said outright: with defer_packing the
  // packing after the first run makes the plan again, tested below).
  SessionOptions options{2};
  options.defer_packing = false;
  Session session(model, options);
  const std::vector<int64_t> shape = {2, 3, 37, 45};
  const auto input = random_vector(2 * 3 * 37 * 45, 9);
  session.plan(shape);
  // A classifier's logits compute its embedding on the way: one plan
  // serves run(), run_all() and run_all({"logits"}); planning would
  // allocate (kernels, memory), a planned run does not.
  for (const std::vector<std::string>& select :
       {std::vector<std::string>{}, std::vector<std::string>{"logits"}}) {
    recorded = 0;
    recording = true;
    const std::vector<Output> out = session.run_all(input.data(), shape, select);
    std::span<const float> first = session.run(input.data(), shape);
    recording = false;
    CHECK(out[0].name == "logits");
    CHECK(first.size() == 2 * 11);
    CHECK(std::equal(first.begin(), first.end(), out[0].data.begin(), out[0].data.end()));
#ifndef RAVLT_SANITIZED
    // run_all() builds its result (names, shapes: 6 to 9 allocations
    // here); planning allocates thousands of times (2,700 here).
    CHECK(classify_recorded().second < 50);
#endif
  }
  // The embedding alone skips the head: a plan of its own.
  recorded = 0;
  recording = true;
  session.run_all(input.data(), shape, {"embedding"});
  recording = false;
#ifndef RAVLT_SANITIZED
  CHECK(classify_recorded().second > 500);
#endif
}

TEST_CASE("a session keeps a bounded number of plans, the least recently used going first") {
  TempDir dir;
  const auto model = custom_model(dir);
  SessionOptions options;
  options.max_cached_plans = 2;
  Session session(model, options);
  Session reference(model);
  const std::vector<std::vector<int64_t>> shapes = {
      {1, 3, 33, 47}, {1, 3, 40, 40}, {1, 3, 33, 47}, {2, 3, 32, 36}, {1, 3, 40, 40}};
  for (size_t i = 0; i < shapes.size(); ++i) {
    const auto input =
        random_vector(static_cast<size_t>(shapes[i][0] * 3 * shapes[i][2] * shapes[i][3]),
                      static_cast<uint32_t>(i));
    const auto want = reference.run(input.data(), shapes[i]);
    const std::vector<float> expected(want.begin(), want.end());
    const auto got = session.run(input.data(), shapes[i]);  // (40, 40) is re-planned at the end
    CHECK(std::equal(got.begin(), got.end(), expected.begin(), expected.end()));
  }
  SessionOptions none;
  none.max_cached_plans = 0;
  CHECK_THROWS_WITH_AS(Session(model, none), doctest::Contains("max_cached_plans"), Error);
  SessionOptions int64;
  int64.precision = DType::kInt64;  // an element type, but no arithmetic
  CHECK_THROWS_WITH_AS(Session(model, int64), doctest::Contains("precision int64"), Error);
}

TEST_CASE("batch items are independent: a batch equals its items run alone") {
  TempDir dir;
  const auto model = custom_model(dir);
  Session session(model);
  const int64_t per = 3 * 37 * 45;
  const auto input = random_vector(static_cast<size_t>(2 * per), 3);
  const auto both = session.run(input.data(), std::vector<int64_t>{2, 3, 37, 45});
  const std::vector<float> batch(both.begin(), both.end());
  for (int i = 0; i < 2; ++i) {
    const auto one = session.run(input.data() + i * per, std::vector<int64_t>{1, 3, 37, 45});
    for (int j = 0; j < 11; ++j)
      CHECK(one[static_cast<size_t>(j)] ==
            doctest::Approx(batch[static_cast<size_t>(i * 11 + j)]).epsilon(1e-5));
  }
}

TEST_CASE("capture returns node outputs of the same run, feature maps NCHW") {
  TempDir dir;
  const auto model = custom_model(dir);
  const std::vector<std::string> names = model->node_names();
  REQUIRE(names.size() > 10);
  CHECK(names.front() == "input.channels_last");
  CHECK(names.back() == "head");
  Session session(model);
  Tensor input{{2, 3, 37, 45}, random_vector(2 * 3 * 37 * 45, 5)};
  const Tensor logits = session.run(input);
  const std::vector<Tensor> got = session.capture(input, {"input.channels_last", "head"});
  REQUIRE(got.size() == 2);
  // The channels-last copy of the input comes back as the input itself.
  CHECK(got[0].shape == input.shape);
  CHECK(got[0].data == input.data);
  CHECK(got[1].shape == logits.shape);
  CHECK(got[1].data == logits.data);
  // The patch embedding's output: (N, C, ceil(ceil(H/2)/2), ...).
  const Tensor embed = session.capture(input, {"patch_embed.proj.9"})[0];
  CHECK(embed.shape == std::vector<int64_t>{2, 48, 10, 12});
  CHECK_THROWS_WITH_AS(session.capture(input, {"layers.9.nothing"}),
                       doctest::Contains("no node named 'layers.9.nothing'"), Error);
  // A normal run afterwards is unchanged.
  CHECK(session.run(input).data == logits.data);
}

TEST_CASE("named outputs: a classifier's logits and embedding; a backbone's stages") {
  TempDir dir;
  const auto model = custom_model(dir);
  CHECK(model->kind() == ModelKind::kClassifier);
  CHECK(model->output_names() == std::vector<std::string>{"logits", "embedding"});
  CHECK(model->dataset_classes().empty());
  Session session(model);
  const std::vector<int64_t> shape = {2, 3, 37, 45};
  const auto input = random_vector(2 * 3 * 37 * 45, 6);
  const std::span<const float> first_run = session.run(input.data(), shape);
  const std::vector<float> logits(first_run.begin(), first_run.end());
  const std::vector<Output> all = session.run_all(input.data(), shape);
  REQUIRE(all.size() == 2);
  CHECK(all[0].name == "logits");
  CHECK(all[0].shape == std::vector<int64_t>{2, 11});
  CHECK(std::equal(all[0].data.begin(), all[0].data.end(), logits.begin(), logits.end()));
  CHECK(all[1].name == "embedding");
  CHECK(all[1].shape == std::vector<int64_t>{2, 96});  // the projection width
  const std::vector<float> embedding(all[1].data.begin(), all[1].data.end());
  // The embedding alone (the head never runs) is the same values.
  const std::vector<Output> alone = session.run_all(input.data(), shape, {"embedding"});
  REQUIRE(alone.size() == 1);
  CHECK(std::equal(alone[0].data.begin(), alone[0].data.end(), embedding.begin(), embedding.end()));
  // The embedding is what the pooling node computed in a captured run.
  const Tensor pooled = session.capture(Tensor{shape, input}, {"pool"})[0];
  CHECK(pooled.data == embedding);
  // plan() prepares what run_all() runs by default: both outputs (it
  // once planned the logits alone, and the first run_all() planned again).
  CHECK(session.plan(shape).output_bytes >= (2 * 11 + 2 * 96) * sizeof(float));
  // Shapes without running, in the order asked.
  const std::vector<OutputShape> shapes =
      session.output_shapes(std::vector<int64_t>{4, 3, 64, 80}, {"embedding", "logits"});
  REQUIRE(shapes.size() == 2);
  CHECK(shapes[0].name == "embedding");
  CHECK(shapes[0].shape == std::vector<int64_t>{4, 96});
  CHECK(shapes[1].shape == std::vector<int64_t>{4, 11});
  CHECK_THROWS_WITH_AS(session.run_all(input.data(), shape, {"stage1"}),
                       "the model has no output 'stage1' (its outputs: logits, embedding)", Error);
  CHECK_THROWS_WITH_AS(session.run_all(input.data(), shape, {"logits", "logits"}),
                       "output 'logits' is selected twice", Error);

  // A backbone: its stages, NCHW; run() gives the first.
  const std::string path = dir.file("backbone.rvlt");
  ConvertOptions options;
  options.out_indices = {0, 2};
  convert_checkpoint(testdata("custom_mmdet.pth"), path, options);
  const auto backbone = Model::load(path);
  CHECK(backbone->kind() == ModelKind::kBackbone);
  CHECK(backbone->output_names() == std::vector<std::string>{"stage1", "stage3"});
  CHECK(backbone->num_classes() == 0);
  CHECK(backbone->labels().empty());
  CHECK(backbone->dataset_classes().size() == 8);
  CHECK(backbone->preprocessing().resize == 0);
  CHECK(backbone->preprocessing().crop_height == 0);
  Session dense(backbone);
  const std::vector<Output> maps = dense.run_all(input.data(), shape);
  REQUIRE(maps.size() == 2);
  CHECK(maps[0].shape == std::vector<int64_t>{2, 48, 10, 12});
  CHECK(maps[1].shape == std::vector<int64_t>{2, 72, 3, 3});
  const std::vector<float> stage1(maps[0].data.begin(), maps[0].data.end());
  const std::span<const float> first = dense.run(input.data(), shape);
  CHECK(std::equal(first.begin(), first.end(), stage1.begin(), stage1.end()));
  const PlanMemory memory = dense.plan(shape);
  CHECK(memory.output_bytes >= (stage1.size() + maps[1].data.size()) * sizeof(float));
}

TEST_CASE("shapes the model cannot take are errors that say why") {
  TempDir dir;
  const auto model = custom_model(dir);
  Session session(model);
  const auto input = random_vector(4 * 40 * 40, 4);
  CHECK_THROWS_WITH_AS(session.run(input.data(), std::vector<int64_t>{1, 4, 40, 40}),
                       doctest::Contains("does not fit the model's input"), Error);
  CHECK_THROWS_WITH_AS(session.run(input.data(), std::vector<int64_t>{1, 3, 40}),
                       doctest::Contains("does not fit"), Error);
  CHECK_THROWS_WITH_AS(session.run(input.data(), std::vector<int64_t>{0, 3, 40, 40}),
                       doctest::Contains("does not fit"), Error);
  Tensor bad{{1, 3, 8, 8}, std::vector<float>(10)};
  CHECK_THROWS_WITH_AS(session.run(bad), doctest::Contains("holds 10 values"), Error);
  CHECK_THROWS_AS(Session(nullptr), Error);
  CHECK_THROWS_AS(Model::load(testdata("custom_bare.pth")), Error);
}

TEST_CASE("fp16 is refused on the CPU; bf16 runs where the CPU has it and is refused elsewhere") {
  TempDir dir;
  const auto model = custom_model(dir);
  SessionOptions options;
  options.precision = Precision::kFloat16;
  CHECK_FALSE(precision_available(Device::kCpu, Precision::kFloat16));
  CHECK_THROWS_WITH_AS(Session(model, options),
                       doctest::Contains("precision fp16 runs on the CUDA device only"), Error);
  CHECK(precision_available(Device::kCpu, Precision::kFloat32));
  options.precision = Precision::kBFloat16;
  std::string why;
  if (!precision_available(Device::kCpu, Precision::kBFloat16, &why)) {
    MESSAGE("this CPU has no bf16: " << why);
    CHECK(why.find("neither AVX512_BF16 nor AMX-BF16") != std::string::npos);
    CHECK_THROWS_WITH_AS(Session(model, options),
                         doctest::Contains("neither AVX512_BF16 nor AMX-BF16"), Error);
    return;
  }
  // bf16: the outputs stay float32 and near float32's; the activations
  // between layers take less memory.
  Session bf16(model, options);
  Session fp32(model);
  const std::vector<int64_t> shape{2, 3, 45, 37};
  std::vector<float> input(2 * 3 * 45 * 37);
  for (size_t i = 0; i < input.size(); ++i)
    input[i] = static_cast<float>((i * 7919) % 211) / 50.0f - 2.0f;
  const std::span<const float> logits = fp32.run(input.data(), shape);
  const std::vector<float> want(logits.begin(), logits.end());
  const std::span<const float> got = bf16.run(input.data(), shape);
  REQUIRE(got.size() == want.size());
  CHECK(test::rel_l2(got.data(), want.data(), want.size()) < 2e-2);
  CHECK(test::rel_l2(got.data(), want.data(), want.size()) > 0.0);  // not float32 after all
  CHECK(bf16.plan(shape).activation_bytes < fp32.plan(shape).activation_bytes);
}

TEST_CASE("a weight packed for oneDNN is resident once: its mapped pages are given back") {
  TempDir dir;
  const std::string path = dir.file("t.rvlt");
  convert_checkpoint(testdata("T_bare.pth"), path);
  // Out of the page cache, so that loading reads it back as a model file
  // is usually read: where the kernel caches files in large folios (2 MB),
  // touching one bias could map a whole folio of released weights again.
  const int fd = ::open(path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
  if (!std::filesystem::exists("/proc/self/smaps")) {
    MESSAGE("skipped: this system does not report a mapping's resident memory");
    return;
  }
  // Verifying the checksum reads every page and keeps them mapped for the
  // packing that follows; the plan gives each weight's pages back once it
  // is packed, so the file is not resident beside the packed copies.
  const auto model = Model::load(path);
  const size_t file_bytes = std::filesystem::file_size(path);
  CHECK(model->mapped_resident_bytes() > file_bytes * 9 / 10);
  const std::vector<int64_t> shape{1, 3, 64, 64};
  const auto input = random_vector(3 * 64 * 64, 3);
  SessionOptions at_plan{1};
  at_plan.defer_packing = false;
  Session first(model, at_plan);
  const std::span<const float> logits = first.run(input.data(), shape);
  const std::vector<float> want(logits.begin(), logits.end());
  // Every GEMM and convolution weight was packed; what stays mapped is the
  // biases, norms, tables and header: a few percent of the file.
  CHECK(model->copied_weight_bytes() > file_bytes * 9 / 10);
  CHECK(model->mapped_resident_bytes() < file_bytes / 20);
  // The packing's time is counted (the plan's only time a cache file saves).
  const double packing = model->weight_packing_seconds();
  CHECK(packing > 0);
  // A session that packs again (another thread count: the same packed
  // layouts, from the cache) or reads the released pages gets the same weights.
  Session second(model, SessionOptions{2});
  const std::span<const float> again = second.run(input.data(), shape);
  CHECK(test::rel_l2(again.data(), want.data(), want.size()) < 1e-6);
  // Its packed weights came from the model's cache: no more packing time.
  CHECK(model->weight_packing_seconds() == packing);
  // Other shapes (batch, size) reuse them too: a GEMM's packed layout
  // depends on its weight, not on the rows it is applied to, and the
  // GEMMs hold most of this model's bytes (RAVLT-T: 52 of 59 MB). oneDNN
  // may block a convolution's weights by its output size: those (7 MB)
  // may be packed again per shape, though none was on the CPUs measured.
  const size_t copied = model->copied_weight_bytes();
  for (const std::vector<int64_t>& other :
       {std::vector<int64_t>{2, 3, 61, 45}, std::vector<int64_t>{1, 3, 96, 160}}) {
    CAPTURE(other[2]);
    first.plan(other);
    second.plan(other);
    CHECK(model->copied_weight_bytes() - copied < file_bytes / 3);
  }
}

namespace {

// Whether oneDNN reads a float32 weight where it is stored, (o, k) rows,
// with a brgemm matmul (AVX-512 and up; not as an AVX2 CPU), which is
// where pack_weights = false leaves GEMM weights unpacked.
bool brgemm_matmul_reads_stored_weights() {
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  using tag = dnnl::memory::format_tag;
  const auto f32 = dnnl::memory::data_type::f32;
  const dnnl::matmul::primitive_desc pd(
      dnnl::matmul::desc(dnnl::memory::desc({49, 512}, f32, tag::ab),
                         dnnl::memory::desc({512, 2048}, f32, tag::ba),
                         dnnl::memory::desc({49, 2048}, f32, tag::ab)),
      engine);
  return std::string(pd.impl_info_str()).starts_with("brg");
}

// The RAVLT-T test checkpoint converted into `dir`: GEMMs large enough for
// every weight layout question. Returns the model file's path.
std::string converted_t(const TempDir& dir) {
  const std::string path = dir.file("t.rvlt");
  convert_checkpoint(testdata("T_bare.pth"), path);
  return path;
}

// A batch of two at an odd size, and its input.
const std::vector<int64_t> kOddBatch{2, 3, 61, 45};
std::vector<float> odd_batch_input() {
  return random_vector(2 * 3 * 61 * 45, 5);
}

}  // namespace

TEST_CASE("pack_weights = false: GEMMs read the file's weights, with the packed run's outputs") {
  TempDir dir;
  const std::string path = converted_t(dir);
  const size_t file_bytes = std::filesystem::file_size(path);
  const std::vector<int64_t>& shape = kOddBatch;
  const auto input = odd_batch_input();
  SessionOptions unpacked_options;
  unpacked_options.pack_weights = false;
  // Unpacked first, so that nothing packed by another session is counted.
  const auto model = Model::load(path);
  Session unpacked(model, unpacked_options);
  const std::span<const float> got_span = unpacked.run(input.data(), shape);
  const std::vector<float> got(got_span.begin(), got_span.end());
  // Only the convolutions' weights were copied, except on a CPU whose
  // matmul would repack a weight every run (below AVX-512), where all are.
  const size_t unpacked_copies = model->copied_weight_bytes();
  MESSAGE("copied without packing: ", unpacked_copies, " of ", file_bytes, " bytes");
  const bool brgemm = brgemm_matmul_reads_stored_weights();
  if (brgemm) {
    CHECK(unpacked_copies < file_bytes / 4);
  } else {
    MESSAGE("oneDNN has no brgemm matmul here: every weight is packed");
    CHECK(unpacked_copies > file_bytes * 9 / 10);
  }
  SessionOptions at_plan;
  at_plan.defer_packing = false;
  Session packed(model, at_plan);
  const std::span<const float> want = packed.run(input.data(), shape);
  REQUIRE(want.size() == got.size());
  CHECK(test::rel_l2(got.data(), want.data(), want.size()) < 1e-5);
  // The packed session packs the GEMM weights the unpacked one read in
  // place (and finds the rest packed already).
  if (brgemm) CHECK(model->copied_weight_bytes() > unpacked_copies);
  if (!brgemm) CHECK(model->copied_weight_bytes() == unpacked_copies);
  // The packing gave the mapped pages back; read again from the file, the
  // unpacked session's weights are the same.
  const std::span<const float> again = unpacked.run(input.data(), shape);
  CHECK(std::equal(again.begin(), again.end(), got.begin()));
  // Weights held as stored exist for float32 on the CPU only.
  unpacked_options.precision = Precision::kBFloat16;
  CHECK_THROWS_WITH_AS(
      Session(model, unpacked_options),
      doctest::Contains("pack_weights = false applies to precision fp32, not bf16"), Error);
  unpacked_options.precision = Precision::kFloat32;
  unpacked_options.device = Device::kCuda;
  CHECK_THROWS_WITH_AS(
      Session(model, unpacked_options),
      doctest::Contains("pack_weights = false applies to the cpu device, not cuda"), Error);
}

TEST_CASE("defer_packing: the first run reads the weights in place, later runs the packed copies") {
  TempDir dir;
  const std::string path = converted_t(dir);
  const size_t file_bytes = std::filesystem::file_size(path);
  const std::vector<int64_t>& shape = kOddBatch;
  const auto input = odd_batch_input();
  const bool brgemm = brgemm_matmul_reads_stored_weights();
  SessionOptions at_plan;
  at_plan.defer_packing = false;
  Session reference(Model::load(path), at_plan);
  const std::span<const float> want_span = reference.run(input.data(), shape);
  const std::vector<float> want(want_span.begin(), want_span.end());

  const auto model = Model::load(path);
  SessionOptions deferring;
  deferring.defer_packing = true;
  Session session(model, deferring);
  const std::span<const float> first_span = session.run(input.data(), shape);
  const std::vector<float> first(first_span.begin(), first_span.end());
  CHECK_FALSE(session.deferred_packing().done);  // nothing has waited for it
  // The next call waits for the packing and swaps the packed plan in.
  const PlanMemory memory = session.plan(shape);
  CHECK(memory.arena_bytes > 0);
  const DeferredPacking deferred = session.deferred_packing();
  CHECK(deferred.done == brgemm);  // below AVX-512 the plan packed every weight
  CHECK(deferred.error.empty());
  if (brgemm) {
    CHECK(deferred.seconds > 0);
    CHECK(deferred.waited_seconds > 0);
  } else {
    MESSAGE("oneDNN has no brgemm matmul here: nothing to defer");
  }
  CHECK(model->copied_weight_bytes() > file_bytes * 9 / 10);  // packed now either way
  const std::span<const float> second_span = session.run(input.data(), shape);
  const std::vector<float> second(second_span.begin(), second_span.end());
  // Both layouts within 1e-5 of the plan packed at once (equal bit for bit
  // on the CPUs measured; oneDNN does not promise it).
  CHECK(test::rel_l2(first.data(), want.data(), want.size()) < 1e-5);
  CHECK(test::rel_l2(second.data(), want.data(), want.size()) < 1e-5);
  // The plan swapped in is whole: a run of it allocates nothing.
  recorded = 0;
  recording = true;
  const std::span<const float> third = session.run(input.data(), shape);
  recording = false;
  CHECK(classify_recorded().second == 0);
  CHECK(std::equal(third.begin(), third.end(), second.begin(), second.end()));
  // Once packed, a new shape's plan packs (finding the copies made) and
  // defers nothing again.
  const auto small = random_vector(3 * 33 * 47, 6);
  CHECK(session.run(small.data(), std::vector<int64_t>{1, 3, 33, 47}).size() == 1000);
  session.run(small.data(), std::vector<int64_t>{1, 3, 33, 47});
  CHECK(session.deferred_packing().seconds == deferred.seconds);
  // Nothing is deferred where nothing would be packed, nor by default.
  Session packed_at_plan(model);
  packed_at_plan.run(input.data(), shape);
  packed_at_plan.run(input.data(), shape);
  CHECK_FALSE(packed_at_plan.deferred_packing().done);
  SessionOptions in_place = deferring;
  in_place.pack_weights = false;
  Session unpacked(model, in_place);
  unpacked.run(input.data(), shape);
  unpacked.run(input.data(), shape);
  CHECK_FALSE(unpacked.deferred_packing().done);
}

TEST_CASE("a session destroyed while packing after its first run stops the packing and ends") {
  TempDir dir;
  const std::string path = converted_t(dir);
  const std::vector<int64_t> shape{1, 3, 64, 64};
  const auto input = random_vector(3 * 64 * 64, 8);
  const auto model = Model::load(path);
  SessionOptions at_plan;
  at_plan.defer_packing = false;
  std::vector<float> want;
  {
    // A reference on a model of its own, so that the one below packs anew.
    Session reference(Model::load(path), at_plan);
    const std::span<const float> out = reference.run(input.data(), shape);
    want.assign(out.begin(), out.end());
  }
  // Each goes out of scope while its packing thread runs (or has just
  // ended): the thread stops between two kernels and is waited for.
  for (int i = 0; i < 3; ++i) {
    SessionOptions deferring{i + 1};
    deferring.defer_packing = true;
    Session session(model, deferring);
    const std::span<const float> out = session.run(input.data(), shape);
    CHECK(test::rel_l2(out.data(), want.data(), want.size()) < 1e-5);
  }
  // What they packed (whole weights: a copy is finished or never begun)
  // serves the next session.
  Session last(model, at_plan);
  const std::span<const float> out = last.run(input.data(), shape);
  CHECK(test::rel_l2(out.data(), want.data(), want.size()) < 1e-5);
}

TEST_CASE("node_macs: every node's multiply-adds, summing to inspect's count per image") {
  TempDir dir;
  const auto model = custom_model(dir);
  const std::vector<int64_t> shape{3, 3, 45, 37};
  const std::vector<NodeWork> work = model->node_macs(shape);
  REQUIRE(work.size() == model->node_names().size());
  double total = 0;
  std::map<std::string, double> by_op;
  for (size_t i = 0; i < work.size(); ++i) {
    CHECK(work[i].name == model->node_names()[i]);
    CHECK(work[i].macs >= 0);
    by_op[work[i].op] += work[i].macs;
    total += work[i].macs;
  }
  // Arithmetic in the convolutions, GEMMs and attention; none in the rest.
  for (const char* op : {"Conv2d", "Linear", "RalaAttention", "SoftmaxAttention"}) {
    CHECK(by_op[op] > 0);
  }
  CHECK(by_op["LayerNorm"] == 0);
  const ModelInfo info = describe_model(dir.file("custom.rvlt"), true, 45, 37);
  CHECK(total == doctest::Approx(3 * info.macs).epsilon(1e-12));
  // Four times the pixels: about four times the tokens at every stage (the
  // strided convolutions round up), softmax attention's work growing faster.
  double larger = 0;
  for (const NodeWork& n : model->node_macs(std::vector<int64_t>{3, 3, 90, 74})) larger += n.macs;
  CHECK(larger > 3 * total);
  CHECK_THROWS_WITH_AS(model->node_macs(std::vector<int64_t>{1, 4, 45, 37}),
                       doctest::Contains("does not fit the model's input"), Error);
}

TEST_CASE("a shape that needs more activation memory than the session allows is refused") {
  TempDir dir;
  const auto model = custom_model(dir);
  SessionOptions options;
  options.max_memory_bytes = 1 << 20;
  Session session(model, options);
  const auto small = random_vector(3 * 16 * 16, 5);
  CHECK(session.run(small.data(), std::vector<int64_t>{1, 3, 16, 16}).size() == 11);
  const auto large = random_vector(3 * 160 * 160, 6);
  CHECK_THROWS_WITH_AS(session.run(large.data(), std::vector<int64_t>{1, 3, 160, 160}),
                       doctest::Contains("input shape (1, 3, 160, 160) needs"), Error);
  CHECK_THROWS_WITH_AS(session.run(large.data(), std::vector<int64_t>{1, 3, 160, 160}),
                       doctest::Contains("more than the limit of 1 MB"), Error);
}

TEST_CASE("threads sharing one Model, each with its own Session, agree with a lone run") {
  TempDir dir;
  const auto model = custom_model(dir);
  const std::vector<int64_t> shapes[] = {{1, 3, 64, 64}, {2, 3, 33, 47}, {3, 3, 40, 52}};
  std::vector<std::vector<float>> inputs, expected;
  for (int i = 0; i < 3; ++i) {
    const auto& s = shapes[i];
    inputs.push_back(random_vector(static_cast<size_t>(s[0] * s[1] * s[2] * s[3]),
                                   10 + static_cast<uint32_t>(i)));
    Session alone(model, SessionOptions{1});
    const auto out = alone.run(inputs.back().data(), s);
    expected.emplace_back(out.begin(), out.end());
  }
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Session session(model, SessionOptions{1});
      for (int round = 0; round < 6; ++round) {
        const int i = (t + round) % 3;
        const auto out = session.run(inputs[static_cast<size_t>(i)].data(), shapes[i]);
        if (!std::equal(out.begin(), out.end(), expected[static_cast<size_t>(i)].begin()))
          ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(mismatches.load() == 0);
}
