#include <doctest/doctest.h>

#include <cstring>

#include "formats/rvlt/model_file.h"
#include "ravlt/convert.h"
#include "ravlt/error.h"
#include "ravlt/model_info.h"
#include "tests/test_util.h"

using namespace ravlt;
using ravlt::test::TempDir;
using ravlt::test::testdata;

namespace {

int count_ops(const rvlt::ModelFile& f, fb::OpType op) {
  int n = 0;
  for (const fb::Node* node : *f.graph().nodes()) n += node->op() == op;
  return n;
}

const fb::Tensor* find_tensor(const rvlt::ModelFile& f, const std::string& name, uint32_t* index) {
  const auto* tensors = f.graph().tensors();
  for (uint32_t i = 0; i < tensors->size(); ++i) {
    if (tensors->Get(i)->name()->str() == name) {
      *index = i;
      return tensors->Get(i);
    }
  }
  return nullptr;
}

}  // namespace

TEST_CASE("RAVLT-T converts from each layout and reports its config") {
  TempDir dir;
  for (const char* name :
       {"T_training.pth", "T_bare.pth", "T_module.pth", "T_legacy_training.pth"}) {
    INFO(name);
    const std::string out = dir.file("t.rvlt");
    const ConvertResult r = convert_checkpoint(testdata(name), out);
    CHECK(r.variant == "RAVLT-T");
    CHECK(r.source_parameters == 14897768);
    const ModelInfo info = describe_model(out);
    CHECK(info.variant == "RAVLT-T");
    REQUIRE(info.stages.size() == 4);
    CHECK(info.stages[2].dim == 256);
    CHECK(info.stages[2].depth == 6);
    CHECK(info.stages[2].heads == 4);
    CHECK(info.stages[3].ffn_hidden == 1792);
    CHECK(info.stages[0].attention == "rala");
    CHECK(info.stages[3].attention == "softmax");
    CHECK(info.num_classes == 1000);
    CHECK(info.labels.front() == "tench");
    CHECK(info.labels.size() == 1000);
    CHECK(info.source_sha256.size() == 64);
    CHECK(info.resize == 256);
    CHECK(info.crop_h == 224);
  }
}

TEST_CASE("state dict selection: model by default, model_ema on request") {
  TempDir dir;
  const std::string a = dir.file("a.rvlt"), b = dir.file("b.rvlt");
  CHECK(convert_checkpoint(testdata("custom_training.pth"), a).state_dict_entry == "model");
  ConvertOptions o;
  o.state_dict_entry = "model_ema";
  CHECK(convert_checkpoint(testdata("custom_training.pth"), b, o).state_dict_entry == "model_ema");
  const auto fa = rvlt::ModelFile::open(a), fb_ = rvlt::ModelFile::open(b);
  uint32_t ia = 0, ib = 0;
  REQUIRE(find_tensor(*fa, "head.weight", &ia));
  REQUIRE(find_tensor(*fb_, "head.weight", &ib));
  const auto wa = fa->constant_bytes(ia), wb = fb_->constant_bytes(ib);
  CHECK(std::memcmp(wa.data(), wb.data(), wa.size()) != 0);  // other weights
  CHECK(fb_->metadata().source_state_dict()->str() == "model_ema");
}

TEST_CASE("options: attention kinds, weight type, labels, preprocessing") {
  TempDir dir;
  const std::string out = dir.file("c.rvlt");
  ConvertOptions o;
  o.attention = "v,v,l,l";
  o.weight_type = DType::kFloat16;
  for (int i = 0; i < 11; ++i) o.labels.push_back("digit " + std::to_string(i));
  o.resize = 72;
  o.crop = 64;
  o.mean = {0.5f, 0.5f, 0.5f};
  const ConvertResult r = convert_checkpoint(testdata("custom_bare.pth"), out, o);
  CHECK(r.variant == "custom");
  const auto f = rvlt::ModelFile::open(out);
  CHECK(count_ops(*f, fb::OpType_SoftmaxAttention) == 1 + 2);  // stages 1-2: depths 1, 2
  CHECK(count_ops(*f, fb::OpType_RalaAttention) == 2 + 1);     // stages 3-4: depths 2, 1
  uint32_t i = 0;
  CHECK(find_tensor(*f, "head.weight", &i)->dtype() == fb::DType_Float16);
  CHECK(find_tensor(*f, "layers.0.RoPE.angle", &i)->dtype() == fb::DType_Float32);
  CHECK(f->metadata().labels()->Get(3)->str() == "digit 3");
  CHECK(f->metadata().preprocess()->resize() == 72);
  CHECK(f->metadata().preprocess()->crop_w() == 64);
  CHECK(f->metadata().preprocess()->mean()->Get(0) == 0.5f);
  CHECK(f->metadata().weight_dtype() == fb::DType_Float16);
  // Without labels: class_N for a head that is not ImageNet's.
  convert_checkpoint(testdata("custom_bare.pth"), out);
  CHECK(describe_model(out).labels.at(10) == "class_10");
}

TEST_CASE("conversion errors are one line naming the cause, and write nothing") {
  TempDir dir;
  const std::string out = dir.file("x.rvlt");
  ConvertOptions o;
  o.labels = {"a", "b"};
  CHECK_THROWS_WITH_AS(convert_checkpoint(testdata("custom_bare.pth"), out, o),
                       doctest::Contains("2 names given for a head with 11 classes"), Error);
  o = {};
  o.attention = "l,l";
  CHECK_THROWS_WITH_AS(convert_checkpoint(testdata("custom_bare.pth"), out, o),
                       doctest::Contains("2 given for a model with 4 stages"), Error);
  o = {};
  o.crop = 300;
  CHECK_THROWS_WITH_AS(convert_checkpoint(testdata("custom_bare.pth"), out, o),
                       doctest::Contains("larger than resize"), Error);
  CHECK_THROWS_WITH_AS(convert_checkpoint(testdata("missing_key.pth"), out),
                       doctest::Contains("missing_key.pth: state dict: missing key"), Error);
  CHECK_THROWS_WITH_AS(
      convert_checkpoint(testdata("custom_bare.pth"), dir.file("no/such/dir.rvlt")),
      doctest::Contains("cannot create"), Error);
  CHECK_THROWS_AS(parse_weight_type("fp64"), Error);
  CHECK(!std::filesystem::exists(out));
}
