#include <doctest/doctest.h>
#include <unistd.h>
#include <xxhash.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>

#include "formats/checksummed_file_writer.h"
#include "formats/mapped_checksum.h"
#include "formats/mapped_file.h"
#include "formats/rvlt/model_file.h"
#include "ravlt/error.h"
#include "ravlt/model.h"
#include "tests/test_util.h"

using namespace ravlt;
using ravlt::rvlt::ModelFile;
using ravlt::rvlt::OpenOptions;
using ravlt::test::read_file;
using ravlt::test::TempDir;
using ravlt::test::write_file;

namespace {

std::unique_ptr<fb::TensorT> tensor(const std::string& name, std::vector<int64_t> shape,
                                    bool constant) {
  auto t = std::make_unique<fb::TensorT>();
  t->name = name;
  t->shape = std::move(shape);
  t->constant = constant;
  return t;
}

// input (N,3,H,W) -> ToChannelsLast -> GlobalAvgPool -> Linear(2x3) -> logits
fb::ModelT small_model(std::vector<std::vector<uint8_t>>& bytes) {
  fb::ModelT m;
  m.metadata = std::make_unique<fb::MetadataT>();
  m.metadata->producer = "test";
  m.metadata->arch = std::make_unique<fb::ArchConfigT>();
  auto stage = std::make_unique<fb::StageConfigT>();
  stage->dim = 3;
  m.metadata->arch->stages.push_back(std::move(stage));
  m.metadata->arch->num_classes = 2;
  m.metadata->labels = {"cat", "dog"};
  m.metadata->preprocess = std::make_unique<fb::PreprocessT>();
  m.metadata->preprocess->resize = 8;
  m.metadata->preprocess->crop_h = m.metadata->preprocess->crop_w = 4;
  m.metadata->preprocess->mean = {0.5f, 0.5f, 0.5f};
  m.metadata->preprocess->std = {0.25f, 0.25f, 0.25f};
  m.graph = std::make_unique<fb::GraphT>();
  auto& g = *m.graph;
  g.tensors.push_back(tensor("input", {-1, 3, -1, -1}, false));
  g.tensors.push_back(tensor("nhwc", {-1, -1, -1, 3}, false));
  g.tensors.push_back(tensor("pooled", {-1, 3}, false));
  g.tensors.push_back(tensor("w", {2, 3}, true));
  g.tensors.push_back(tensor("b", {2}, true));
  g.tensors.push_back(tensor("logits", {-1, 2}, false));
  const float w[6] = {1, 2, 3, 4, 5, 6};
  const float b[2] = {-1, 1};
  bytes.assign(6, {});
  bytes[3].resize(sizeof w);
  std::memcpy(bytes[3].data(), w, sizeof w);
  bytes[4].resize(sizeof b);
  std::memcpy(bytes[4].data(), b, sizeof b);
  auto node = [&](const std::string& name, fb::OpType op, std::vector<uint32_t> in, uint32_t out,
                  fb::OpAttrsUnion attrs) {
    auto n = std::make_unique<fb::NodeT>();
    n->name = name;
    n->op = op;
    n->inputs = std::move(in);
    n->outputs = {out};
    n->attrs = std::move(attrs);
    g.nodes.push_back(std::move(n));
  };
  node("to_nhwc", fb::OpType_ToChannelsLast, {0}, 1, {});
  node("pool", fb::OpType_GlobalAvgPool, {1}, 2, {});
  fb::OpAttrsUnion linear;
  linear.Set(fb::LinearAttrsT());
  node("fc", fb::OpType_Linear, {2, 3, 4}, 5, std::move(linear));
  g.inputs = {0};
  g.outputs = {5};
  return m;
}

std::string write_small(const TempDir& dir, const std::function<void(fb::ModelT&)>& edit = {}) {
  std::vector<std::vector<uint8_t>> bytes;
  fb::ModelT m = small_model(bytes);
  if (edit) edit(m);
  const std::string path = dir.file("small.rvlt");
  rvlt::write_model_file(path, m, bytes);
  return path;
}

// Rewrites the metadata of a written file (keeping its data section) and
// recomputes the checksum, so only the edit differs: for checks that come
// after the writer's own bookkeeping (version, offsets).
void rewrite_metadata(const std::string& path, const std::function<void(fb::ModelT&)>& edit) {
  std::vector<uint8_t> file = read_file(path);
  const auto* model = fb::GetSizePrefixedModel(file.data());
  uint32_t size;
  std::memcpy(&size, file.data(), 4);
  const uint64_t data_start = (4 + size + 63) / 64 * 64;
  const auto data_end = static_cast<long>(data_start + model->data_size());
  std::vector<uint8_t> data(file.begin() + static_cast<long>(data_start), file.begin() + data_end);
  fb::ModelT m;
  model->UnPackTo(&m);
  edit(m);
  flatbuffers::FlatBufferBuilder b;
  b.FinishSizePrefixed(fb::Model::Pack(b, &m), fb::ModelIdentifier());
  std::vector<uint8_t> out(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
  out.resize((out.size() + 63) / 64 * 64, 0);
  out.insert(out.end(), data.begin(), data.end());
  const uint64_t sum = rvlt::file_checksum(out, m.format_major);
  if (m.format_major >= 2) {  // the part table
    const std::vector<uint8_t> table = test::part_table(out.data(), out.size());
    out.insert(out.end(), table.begin(), table.end());
  }
  out.insert(out.end(), rvlt::kFooterMagic, rvlt::kFooterMagic + 8);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(sum >> (8 * i)));
  write_file(path, out);
}

std::string open_error(const std::string& path, bool checksum = true) {
  try {
    rvlt::OpenOptions o;
    o.verify_checksum = checksum;
    rvlt::ModelFile::open(path, o);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("a written model file opens, with weights in place in the mapping") {
  TempDir dir;
  const std::string path = write_small(dir);
  const auto file = rvlt::ModelFile::open(path);
  CHECK(file->model().format_major() == rvlt::kFormatMajor);
  CHECK(file->metadata().labels()->Get(1)->str() == "dog");
  CHECK(file->graph().nodes()->size() == 3);
  CHECK(file->data_section_offset() % 64 == 0);
  const auto w = file->constant_bytes(3);
  REQUIRE(w.size() == 24);
  float w0;
  std::memcpy(&w0, w.data(), 4);
  CHECK(w0 == 1.0f);
  // Zero copy: the bytes lie inside the file's mapping, 64-byte aligned.
  CHECK(w.data() >= file->mapping_begin());
  CHECK(w.data() + w.size() <= file->mapping_begin() + file->file_size());
  CHECK(reinterpret_cast<uintptr_t>(w.data()) % 64 == 0);
  CHECK(reinterpret_cast<uintptr_t>(file->constant_bytes(4).data()) % 64 == 0);
  CHECK_THROWS_AS(file->constant_bytes(0), Error);  // an activation has no bytes
}

TEST_CASE("truncated files are refused at every length") {
  TempDir dir;
  const std::string path = write_small(dir);
  const std::vector<uint8_t> full = read_file(path);
  const std::string cut = dir.file("cut.rvlt");
  for (size_t n = 1; n < full.size(); ++n) {
    write_file(cut, std::vector<uint8_t>(full.begin(), full.begin() + static_cast<long>(n)));
    const std::string e = open_error(cut);
    INFO("length " << n);
    REQUIRE(!e.empty());
    REQUIRE(e.find("cut.rvlt") != std::string::npos);
  }
}

TEST_CASE("every flipped byte is caught by the checksum") {
  TempDir dir;
  const std::string path = write_small(dir);
  const std::vector<uint8_t> full = read_file(path);
  const std::string bad = dir.file("bad.rvlt");
  for (size_t i = 0; i < full.size(); ++i) {
    std::vector<uint8_t> copy = full;
    copy[i] ^= 0x5a;
    write_file(bad, copy);
    INFO("byte " << i);
    REQUIRE(!open_error(bad).empty());
    // Without the checksum a flip is either refused by the structural checks
    // or yields a file that still passes them; never a crash.
    (void)open_error(bad, /*checksum=*/false);
  }
  std::vector<uint8_t> copy = full;
  copy[full.size() - 40] ^= 1;  // inside the data section
  write_file(bad, copy);
  CHECK(open_error(bad).find("checksum mismatch") != std::string::npos);
  CHECK(open_error(bad, false).empty());
}

TEST_CASE("a parts checksum checks every byte but the deferred constants', those when asked") {
  TempDir dir;
  const std::string path = write_small(dir);
  const std::vector<uint8_t> full = read_file(path);
  const std::vector<uint32_t> deferred = {3};  // the Linear's weight
  const auto whole = ModelFile::open(path);
  CHECK_FALSE(whole->deferred());
  CHECK_NOTHROW(whole->verify_deferred());  // nothing left to check
  CHECK(whole->parts_checksum(deferred) != whole->parts_checksum({}));
  const uint64_t recorded = whole->parts_checksum(deferred);
  OpenOptions parts, stale;
  parts.parts = rvlt::PartsChecksum{recorded, deferred};
  stale.parts = rvlt::PartsChecksum{recorded ^ 1, deferred};  // a record of another file
  {
    const auto file = ModelFile::open(path, parts);
    CHECK(file->deferred());
    CHECK_NOTHROW(file->verify_deferred());
    CHECK_FALSE(file->deferred());
  }
  // Where the bytes of each part lie.
  const auto offset_of = [&](uint32_t tensor) {
    return static_cast<size_t>(whole->constant_bytes(tensor).data() - whole->mapping_begin());
  };
  const size_t data = whole->data_section_offset(), w = offset_of(3), b = offset_of(4);
  const std::string bad = dir.file("bad.rvlt");
  size_t found_late = 0;
  for (size_t i = 0; i < full.size(); ++i) {
    INFO("byte " << i);
    std::vector<uint8_t> copy = full;
    copy[i] ^= 0x5a;
    write_file(bad, copy);
    std::shared_ptr<const ModelFile> file;
    try {
      file = ModelFile::open(bad, parts);
    } catch (const Error&) {
      // The metadata and the other constant are checked at open.
      continue;
    }
    const bool in_data = i >= data && i < full.size() - 16 && (i < b || i >= b + 8);
    REQUIRE((in_data || i >= full.size() - 8));  // or the footer's checksum
    // The rest (the deferred weight, padding, the footer's checksum) is
    // found when verify_deferred() reads the whole file, before anything
    // reads the weight.
    ++found_late;
    CHECK(file->deferred());
    CHECK_THROWS_WITH_AS(file->verify_deferred(), doctest::Contains("checksum mismatch"), Error);
    CHECK_THROWS_WITH_AS(file->verify_deferred(), doctest::Contains("checksum mismatch"), Error);
    if (i < w || i >= w + 24) continue;
    // Given a record of another file, the whole checksum decides at open.
    CHECK_THROWS_WITH_AS(ModelFile::open(bad, stale), doctest::Contains("checksum mismatch"),
                         Error);
  }
  CHECK(found_late >= 24 + 8);  // at least the weight's bytes and the checksum's
  const auto file = ModelFile::open(path, stale);
  CHECK_FALSE(file->deferred());  // verified whole
  CHECK(open_error(path).empty());
}

TEST_CASE("a newer major version is refused with a message saying so") {
  TempDir dir;
  const std::string path = write_small(dir);
  rewrite_metadata(path, [](fb::ModelT& m) { m.format_major = rvlt::kFormatMajor + 1; });
  CHECK(open_error(path).find("newer than this reader") != std::string::npos);
  rewrite_metadata(path, [](fb::ModelT& m) {
    m.format_major = rvlt::kFormatMajor;
    m.format_minor = 7;  // a newer minor version is readable
  });
  CHECK(open_error(path).empty());
}

TEST_CASE("semantic checks name what is wrong") {
  TempDir dir;
  struct Case {
    const char* expect;
    std::function<void(fb::ModelT&)> edit;
  };
  const Case cases[] = {
      {"lies outside the data section",
       [](fb::ModelT& m) { m.graph->tensors[4]->data_offset = 1 << 20; }},
      {"not 64-byte aligned", [](fb::ModelT& m) { m.graph->tensors[4]->data_offset = 8; }},
      {"holds 8 bytes, shape (3) needs 12",
       [](fb::ModelT& m) { m.graph->tensors[4]->shape = {3}; }},
      {"used before it is defined",
       [](fb::ModelT& m) { std::swap(m.graph->nodes[0], m.graph->nodes[1]); }},
      {"input index 99 out of range", [](fb::ModelT& m) { m.graph->nodes[1]->inputs = {99}; }},
      {"takes 3 to 4 inputs, has 2", [](fb::ModelT& m) { m.graph->nodes[2]->inputs.pop_back(); }},
      {"unknown op type",
       [](fb::ModelT& m) { m.graph->nodes[1]->op = static_cast<fb::OpType>(999); }},
      {"attributes do not match", [](fb::ModelT& m) { m.graph->nodes[2]->attrs.Reset(); }},
      {"must be a constant", [](fb::ModelT& m) { m.graph->nodes[2]->inputs[1] = 2; }},
      {"already defined", [](fb::ModelT& m) { m.graph->nodes[1]->outputs = {1}; }},
      {"duplicate name", [](fb::ModelT& m) { m.graph->tensors[2]->name = "input"; }},
      {"rank 9 exceeds 8", [](fb::ModelT& m) { m.graph->tensors[2]->shape.assign(9, 1); }},
      {"is too large",
       [](fb::ModelT& m) {
         m.graph->tensors[2]->shape = {int64_t{1} << 40, int64_t{1} << 40};
       }},
      {"expected (2)",
       [](fb::ModelT& m) {
         m.graph->tensors[4]->shape = {1, 2};
       }},
      {"2 labels for 3 classes", [](fb::ModelT& m) { m.metadata->arch->num_classes = 3; }},
      {"never computed",
       [](fb::ModelT& m) {
         m.graph->outputs = {5};
         m.graph->nodes.pop_back();
       }},
      {"graph output tensor 0 'input' is the input",
       [](fb::ModelT& m) {
         m.graph->outputs = {5, 0};
       }},
      {"graph output tensor 5 'logits' is listed twice",
       [](fb::ModelT& m) {
         m.graph->outputs = {5, 5};
       }},
      {"a classifier has one graph output (the logits), not 2",
       [](fb::ModelT& m) {
         m.graph->outputs = {5, 2};
       }},
      {"unknown model kind 7",
       [](fb::ModelT& m) { m.metadata->kind = static_cast<fb::ModelKind>(7); }},
      {"a backbone has no classes or labels",
       [](fb::ModelT& m) { m.metadata->kind = fb::ModelKind_Backbone; }},
      {"preprocessing sizes must be positive, or 0 for none",
       [](fb::ModelT& m) {
         m.metadata->kind = fb::ModelKind_Backbone;
         m.metadata->arch->num_classes = 0;
         m.metadata->labels.clear();
         m.metadata->preprocess->crop_w = 0;
       }},
      {"preprocessing sizes must be positive",
       [](fb::ModelT& m) { m.metadata->preprocess->resize = 0; }},
      {"is a constant, not computed", [](fb::ModelT& m) { m.graph->outputs = {3}; }},
      {"unknown dtype",
       [](fb::ModelT& m) { m.graph->tensors[3]->dtype = static_cast<fb::DType>(9); }},
  };
  for (const Case& c : cases) {
    const std::string path = write_small(dir);
    rewrite_metadata(path, c.edit);
    const std::string e = open_error(path);
    INFO(c.expect << " -> " << e);
    CHECK(e.find(c.expect) != std::string::npos);
  }
}

TEST_CASE("format 1.1: a 1.0 file reads as a classifier; a backbone needs no labels or sizes") {
  TempDir dir;
  const std::string old_path = write_small(dir);
  rewrite_metadata(old_path, [](fb::ModelT& m) { m.format_minor = 0; });
  const auto old_file = rvlt::ModelFile::open(old_path);
  CHECK(old_file->model().format_minor() == 0);
  CHECK(old_file->metadata().kind() == fb::ModelKind_Classifier);
  CHECK(old_file->metadata().dataset_classes() == nullptr);
  // The engine finds a 1.0 classifier's embedding (the pooled value, here
  // named "pooled") beside its logits.
  const auto old_model = Model::load(old_path);
  CHECK(old_model->output_names() == std::vector<std::string>{"logits", "embedding"});
  Session session(old_model);
  const std::vector<float> pixels = {1, 3, 5, 7, 0, 0, 4, 4, -2, 2, -2, 2};  // 1 x 3 x 2 x 2
  const std::vector<Output> out = session.run_all(pixels.data(), std::vector<int64_t>{1, 3, 2, 2});
  REQUIRE(out.size() == 2);
  CHECK(out[1].name == "embedding");
  CHECK(std::vector<float>(out[1].data.begin(), out[1].data.end()) ==
        std::vector<float>{4, 2, 0});                           // the channel means
  CHECK(out[0].data[0] == doctest::Approx(1 * 4 + 2 * 2 - 1));  // w (1, 2, 3) . mean + b
  CHECK(out[0].data[1] == doctest::Approx(4 * 4 + 5 * 2 + 1));

  const std::string path = write_small(dir, [](fb::ModelT& m) {
    m.metadata->kind = fb::ModelKind_Backbone;
    m.metadata->arch->num_classes = 0;
    m.metadata->labels.clear();
    m.metadata->dataset_classes = {"person", "bicycle"};
    m.metadata->preprocess->resize = 0;
    m.metadata->preprocess->crop_h = m.metadata->preprocess->crop_w = 0;
    m.graph->outputs = {5, 2};  // several outputs
  });
  const auto file = rvlt::ModelFile::open(path);
  CHECK(file->model().format_minor() == rvlt::kFormatMinor);
  CHECK(file->metadata().kind() == fb::ModelKind_Backbone);
  REQUIRE(file->metadata().dataset_classes() != nullptr);
  CHECK(file->metadata().dataset_classes()->Get(1)->str() == "bicycle");
  CHECK(file->graph().outputs()->size() == 2);
}

TEST_CASE("a graph whose output is not (N, classes) is refused when run") {
  TempDir dir;
  const std::string path = write_small(dir);
  // The pooled features (N, 3) as the output, for a model of 2 classes.
  rewrite_metadata(path, [](fb::ModelT& m) {
    m.graph->outputs = {2};
    m.graph->nodes.pop_back();
  });
  Session session(Model::load(path));
  const std::vector<float> input(2 * 3 * 4 * 4, 0.5f);
  const std::vector<int64_t> shape{2, 3, 4, 4};
  CHECK_THROWS_WITH(session.run(input.data(), shape),
                    doctest::Contains("computes an output of shape (2, 3), not (2, 2)"));
}

TEST_CASE("files that are not model files") {
  TempDir dir;
  const std::string path = dir.file("text.rvlt");
  write_file(path, std::vector<uint8_t>(100, 'a'));
  CHECK(open_error(path).find("identifier 'RVLT' missing") != std::string::npos);
  write_file(path, {});
  CHECK(open_error(path).find("empty") != std::string::npos);
  CHECK(open_error(dir.file("missing.rvlt")).find("cannot open") != std::string::npos);
}

TEST_CASE("inputs the fuzzer found stay handled (tests/fuzz/regressions/)") {
  // A convolution padded by 50331649 rows: every later map (and the plan's
  // memory) would have grown without bound.
  const std::string padded =
      std::string(RAVLT_SOURCE_DIR) + "/tests/fuzz/regressions/conv_padding_grows_maps.rvlt";
  OpenOptions no_checksum;
  no_checksum.verify_checksum = false;
  CHECK_THROWS_WITH_AS(ModelFile::open(padded, no_checksum),
                       doctest::Contains("is not smaller than the kernel"), Error);
  // Weights holding NaN: the model runs and its logits are NaN (exp of a
  // NaN used to be converted to an integer, undefined behaviour).
  LoadOptions load;
  load.verify_checksum = false;
  const auto model =
      Model::load(std::string(RAVLT_SOURCE_DIR) + "/tests/fuzz/regressions/nan_weights.rvlt", load);
  Session session(model, SessionOptions{1});
  const Tensor y = session.run(Tensor{{1, 3, 9, 7}, std::vector<float>(3 * 9 * 7, 0.5f)});
  REQUIRE(y.data.size() == 3);
  CHECK(std::isnan(y.data[0]));
  // A shape vector of 8-byte integers 4 bytes off alignment (the FlatBuffers
  // verifier checks only its length field): reading it was a misaligned load.
  CHECK_THROWS_WITH_AS(
      ModelFile::open(std::string(RAVLT_SOURCE_DIR) +
                          "/tests/fuzz/regressions/model_file_misaligned_shape.rvlt",
                      no_checksum),
      doctest::Contains("shape is misaligned in the file"), Error);
}

TEST_CASE("a file of many parts is checked whole, its pages mapped on two threads") {
  // Past the size from which a second thread maps the file's parts ahead of
  // the hash (model_file_reader.cpp): a flip in the first, a middle and
  // the last (short) part is caught, and a good file opens with its pages
  // mapped.
  TempDir dir;
  const std::string path = dir.file("large.rvlt");
  std::vector<std::vector<uint8_t>> bytes;
  fb::ModelT m = small_model(bytes);
  m.graph->tensors.push_back(tensor("spare", {int64_t{6} << 20 | 5}, true));
  bytes.emplace_back(((size_t{6} << 20) | 5) * 4);
  for (size_t i = 0; i < bytes.back().size(); ++i) bytes.back()[i] = static_cast<uint8_t>(i * 7);
  rvlt::write_model_file(path, m, bytes);
  const std::vector<uint8_t> full = read_file(path);
  REQUIRE(full.size() > (size_t{24} << 20));
  const auto file = ModelFile::open(path);
  CHECK(file->resident_bytes() > full.size() * 9 / 10);
  const std::string bad = dir.file("bad.rvlt");
  for (const size_t at : {size_t{4096 + 11}, full.size() / 2 + 3, full.size() - 20}) {
    std::vector<uint8_t> copy = full;
    copy[at] ^= 0x10;
    write_file(bad, copy);
    INFO("byte " << at);
    CHECK(open_error(bad).find("checksum mismatch") != std::string::npos);
  }
}

TEST_CASE("populating a mapped range maps its pages, and only inside the mapping") {
  TempDir dir;
  const std::string path = dir.file("pages.bin");
  write_file(path, std::vector<uint8_t>(size_t{16} << 20, 7));
  const MappedFile mapped(path);
  const size_t before = mapped.resident_bytes();
  // A range straddling both ends of the mapping: clamped, no fault.
  mapped.populate(mapped.data() - 4096, size_t{2} << 20);
  mapped.populate(mapped.data() + mapped.size() - 4096, size_t{1} << 20);
  mapped.populate(mapped.data() + (size_t{4} << 20), 0);
  const size_t after = mapped.resident_bytes();
  CHECK(after >= before + (size_t{2} << 20) - 8192);
  // (The kernel may map the whole large folio a page lies in: up to 2 MB.)
  CHECK(after < mapped.size() / 2);
  mapped.populate(mapped.data(), mapped.size());
  CHECK(mapped.resident_bytes() >= mapped.size() * 9 / 10);
  CHECK(mapped.data()[mapped.size() - 1] == 7);
}

TEST_CASE("a mapped file knows whether it was written since it was opened, wherever its path") {
  TempDir dir;
  const std::string path = dir.file("weights.bin"), other = dir.file("other.bin");
  write_file(path, std::vector<uint8_t>(8192, 1));
  MappedFile mapped(path);
  CHECK(mapped.unchanged());
  CHECK_NOTHROW(mapped.check_unchanged());
  // Timestamps move by the filesystem's tick: past it before each write.
  const auto after_a_tick = [] { usleep(50 * 1000); };
  // Another file renamed over the path is another file: this one is as it was.
  after_a_tick();
  write_file(other, std::vector<uint8_t>(100, 2));
  REQUIRE(std::rename(other.c_str(), path.c_str()) == 0);
  CHECK(mapped.unchanged());
  CHECK(mapped.data()[0] == 1);
  // Written in place (the same size), or shortened: changed, and the error
  // says what and what to do. A moved mapping keeps what it watches.
  MappedFile moved(std::move(mapped));
  MappedFile second(path);
  after_a_tick();
  write_file(path, std::vector<uint8_t>(100, 3));
  CHECK(moved.unchanged());  // (its file is no longer at the path)
  CHECK_FALSE(second.unchanged());
  CHECK_THROWS_WITH_AS(second.check_unchanged(),
                       doctest::Contains("written after it was opened (same size"), Error);
  MappedFile third(path);
  after_a_tick();
  REQUIRE(::truncate(path.c_str(), 10) == 0);
  CHECK_FALSE(third.unchanged());
  CHECK_THROWS_WITH_AS(third.check_unchanged(), doctest::Contains("10 bytes now, 100 when opened"),
                       Error);
}

TEST_CASE(
    "a mapped file's checksum is its bytes', by either scheme, at every length and either way") {
  // Around the 4 MB parts and past the size from which a second thread maps
  // parts ahead (mapped_checksum.cpp), keeping the pages or releasing them;
  // by parts on several threads where the machine has them.
  TempDir dir;
  const std::string path = dir.file("bytes.bin");
  std::vector<uint8_t> bytes((size_t{25} << 20) + 3);
  std::mt19937 rng(5);
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
  write_file(path, bytes);
  const MappedFile mapped(path);
  const size_t part = size_t{4} << 20;
  for (const size_t end : {size_t{0}, size_t{1}, part - 1, part, part + 1, size_t{16} << 20,
                           bytes.size() - 1, bytes.size()}) {
    CAPTURE(end);
    const std::span<const uint8_t> head(bytes.data(), end);
    const uint64_t whole = XXH3_64bits(bytes.data(), end),
                   parts = test::xxh3_of_part_digests(head.data(), head.size());
    CHECK(checksum_of(head, ChecksumScheme::kWhole) == whole);
    CHECK(checksum_of(head, ChecksumScheme::kParts) == parts);
    CHECK(rvlt::file_checksum(head, 1) == whole);
    CHECK(rvlt::file_checksum(head) == parts);  // this writer's version
    for (const AfterHashing after : {AfterHashing::kKeepPages, AfterHashing::kReleasePages}) {
      CHECK(mapped_checksum(mapped, end, after, ChecksumScheme::kWhole) == whole);
      CHECK(mapped_checksum(mapped, end, after, ChecksumScheme::kParts) == parts);
    }
  }
  CHECK(checksum_of(bytes, ChecksumScheme::kParts) != checksum_of(bytes, ChecksumScheme::kWhole));
  // Past the end: the whole file.
  CHECK(mapped_checksum(mapped, bytes.size() + 100, AfterHashing::kKeepPages,
                        ChecksumScheme::kParts) ==
        test::xxh3_of_part_digests(bytes.data(), bytes.size()));
  // A byte changed in any part, the last included, changes the checksum.
  for (const size_t at : {size_t{0}, part * 3 + 17, bytes.size() - 1}) {
    CAPTURE(at);
    std::vector<uint8_t> changed = bytes;
    changed[at] ^= 0x01;
    CHECK(checksum_of(changed, ChecksumScheme::kParts) !=
          test::xxh3_of_part_digests(bytes.data(), bytes.size()));
  }
}

TEST_CASE("a file written a piece at a time has the checksum of its bytes, by either scheme") {
  // Pieces of odd sizes across the parts' edges, and padding.
  TempDir dir;
  std::vector<uint8_t> bytes((size_t{9} << 20) + 5);
  std::mt19937 rng(7);
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
  for (const ChecksumScheme scheme : {ChecksumScheme::kWhole, ChecksumScheme::kParts}) {
    const std::string path = dir.file("pieces.bin");
    {
      ChecksummedFileWriter out(path, scheme);
      size_t at = 0;
      for (size_t piece = 1; at < bytes.size() - 100; piece = piece * 3 + 1) {
        const size_t n = std::min(piece % 3000001, bytes.size() - 100 - at);
        out.write(bytes.data() + at, n);
        at += n;
      }
      out.pad_to(out.position() + 100);
      const char magic[8] = {'T', 'E', 'S', 'T', 'S', 'U', 'M', '1'};
      out.commit(magic);
    }
    std::fill(bytes.end() - 100, bytes.end(), uint8_t{0});
    const std::vector<uint8_t> file = read_file(path);
    // By parts, the part table between the bytes and the footer.
    const std::vector<uint8_t> table = scheme == ChecksumScheme::kParts
                                           ? test::part_table(bytes.data(), bytes.size())
                                           : std::vector<uint8_t>();
    CHECK(table.size() == part_table_bytes(bytes.size(), scheme));
    REQUIRE(file.size() == bytes.size() + table.size() + 16);
    CHECK(std::equal(bytes.begin(), bytes.end(), file.begin()));
    CHECK(std::equal(table.begin(), table.end(), file.begin() + static_cast<long>(bytes.size())));
    uint64_t footer = 0;
    for (int i = 7; i >= 0; --i)
      footer = footer << 8 | file[file.size() - 8 + static_cast<size_t>(i)];
    CHECK(footer == checksum_of(bytes, scheme));
  }
}

TEST_CASE("a format 1 file, checksummed whole, still opens; its scheme follows its version") {
  TempDir dir;
  const std::string path = write_small(dir);
  CHECK(ModelFile::open(path)->model().format_major() == 2);
  rewrite_metadata(path, [](fb::ModelT& m) {
    m.format_major = 1;
    m.format_minor = 1;
  });
  const auto file = ModelFile::open(path);
  CHECK(file->model().format_major() == 1);
  CHECK(file->checksum() == XXH3_64bits(read_file(path).data(), read_file(path).size() - 16));
  // A flipped weight byte is still caught, and a 2.0 file whose footer
  // holds the whole-file checksum is refused: the version decides.
  std::vector<uint8_t> copy = read_file(path);
  copy[copy.size() - 40] ^= 1;
  const std::string bad = dir.file("bad.rvlt");
  write_file(bad, copy);
  CHECK(open_error(bad).find("checksum mismatch") != std::string::npos);
  rewrite_metadata(path, [](fb::ModelT& m) { m.format_major = 2; });
  std::vector<uint8_t> v2 = read_file(path);
  CHECK(open_error(path).empty());
  const uint64_t whole = XXH3_64bits(v2.data(), v2.size() - 16);
  for (int i = 0; i < 8; ++i) {
    v2[v2.size() - 8 + static_cast<size_t>(i)] = static_cast<uint8_t>(whole >> (8 * i));
  }
  write_file(bad, v2);
  CHECK(open_error(bad).find("checksum mismatch") != std::string::npos);
  // A 2.0 file without its part table (the footer right after the data):
  // refused before any hash, naming the sizes.
  std::vector<uint8_t> no_table = read_file(path);
  no_table.erase(no_table.end() - 16 - 8, no_table.end() - 16);
  write_file(bad, no_table);
  CHECK(open_error(bad).find("part checksums 8)") != std::string::npos);
  CHECK(open_error(bad, false).find("part checksums 8)") != std::string::npos);
  // Before 1.0: refused.
  rewrite_metadata(path, [](fb::ModelT& m) { m.format_major = 0; });
  CHECK(open_error(path).find("format version 0 is not supported") != std::string::npos);
}
