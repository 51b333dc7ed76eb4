#include <doctest/doctest.h>

#include "engine/src/ravlt_config.h"
#include "ravlt/error.h"

using namespace ravlt;
using namespace ravlt::engine;

namespace {

// A state dict (zeros) with every key of `arch`.
WeightMap weights_for(const ArchSpec& arch) {
  WeightMap w;
  for (const auto& [key, shape] : expected_keys(arch)) {
    HostTensor t;
    t.shape = shape;
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    t.data.assign(n, 0.0f);
    w.emplace(key, std::move(t));
  }
  return w;
}

ArchSpec small_arch() {
  ArchSpec a;
  a.stem_hidden = 8;
  a.stages = {{16, 1, 2, 8, 40, false, AttentionKind::kRala},
              {24, 2, 2, 12, 60, true, AttentionKind::kRala},
              {40, 1, 5, 8, 100, false, AttentionKind::kSoftmax}};
  a.projection = 32;
  a.num_classes = 5;
  return a;
}

std::string error_of(const WeightMap& w) {
  try {
    infer_arch(w);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("the config is read off the weights, whatever its sizes") {
  const ArchSpec want = small_arch();
  const ArchSpec got = infer_arch(weights_for(want));
  REQUIRE(got.stages.size() == 3);
  for (size_t s = 0; s < 3; ++s) {
    CHECK(got.stages[s].dim == want.stages[s].dim);
    CHECK(got.stages[s].depth == want.stages[s].depth);
    CHECK(got.stages[s].heads == want.stages[s].heads);
    CHECK(got.stages[s].head_dim == want.stages[s].head_dim);
    CHECK(got.stages[s].ffn_hidden == want.stages[s].ffn_hidden);
    CHECK(got.stages[s].layer_scale == want.stages[s].layer_scale);
  }
  CHECK(got.stages[2].attention == AttentionKind::kSoftmax);  // default rule: l,l,v
  CHECK(got.projection == 32);
  CHECK(got.num_classes == 5);
  CHECK(got.stem_hidden == 8);
  CHECK(got.variant == "custom");
  // Parameters: everything but BatchNorm statistics and RoPE angles.
  uint64_t params = 0;
  for (const auto& [key, shape] : expected_keys(want)) {
    if (key.ends_with("running_mean") || key.ends_with("running_var") ||
        key.ends_with("num_batches_tracked") || key.ends_with("RoPE.angle")) {
      continue;
    }
    uint64_t n = 1;
    for (int64_t d : shape) n *= static_cast<uint64_t>(d);
    params += n;
  }
  CHECK(got.parameter_count == params);
}

TEST_CASE("published variants are recognised and count their parameters") {
  ArchSpec t;
  t.stem_hidden = 32;
  for (int s = 0; s < 4; ++s) {
    const int dims[4] = {64, 128, 256, 512}, depths[4] = {2, 2, 6, 2};
    t.stages.push_back({dims[s], depths[s], dims[s] / 64, 64, static_cast<int>(3.5 * dims[s]), true,
                        AttentionKind::kRala});
  }
  t.projection = 1024;
  t.num_classes = 1000;
  const ArchSpec got = infer_arch(weights_for(t));
  CHECK(got.variant == "RAVLT-T");
  CHECK(got.parameter_count == 14897768);
  CHECK(expected_keys(t).size() == 302);
}

TEST_CASE("attention kinds: parsed, overridden, and checked") {
  const auto kinds = parse_attention_kinds("v,l,v");
  CHECK(kinds == std::vector<AttentionKind>{AttentionKind::kSoftmax, AttentionKind::kRala,
                                            AttentionKind::kSoftmax});
  CHECK_THROWS_WITH_AS(parse_attention_kinds("l,x"), doctest::Contains("'x' is not"), Error);
  CHECK_THROWS_AS(parse_attention_kinds(""), Error);
  const WeightMap w = weights_for(small_arch());
  CHECK(infer_arch(w, kinds).stages[0].attention == AttentionKind::kSoftmax);
  CHECK_THROWS_WITH_AS(infer_arch(w, parse_attention_kinds("l,l,v,v")),
                       doctest::Contains("4 given for a model with 3 stages"), Error);
}

TEST_CASE("missing, extra and misshapen keys are named") {
  WeightMap w = weights_for(small_arch());
  w.erase("layers.1.blocks.1.gamma_2");
  CHECK(error_of(w) ==
        "state dict: missing key 'layers.1.blocks.1.gamma_2' (expected shape (1, 24, 1, 1))");

  w = weights_for(small_arch());
  w["layers.0.blocks.0.extra"] = HostTensor{{1}, {0.0f}};
  CHECK(error_of(w) == "state dict: unexpected key 'layers.0.blocks.0.extra'");

  w = weights_for(small_arch());
  w["layers.2.blocks.0.attn.lepe.weight"].shape = {40, 1, 3, 3};
  CHECK(error_of(w) ==
        "state dict: key 'layers.2.blocks.0.attn.lepe.weight' has shape (40, 1, 3, 3), expected "
        "(40, 1, 5, 5)");

  w = weights_for(small_arch());
  w["layers.1.RoPE.angle"].shape = {7};  // head dim 14 does not divide 24
  CHECK(error_of(w).find("does not divide the stage width 24") != std::string::npos);

  w = weights_for(small_arch());
  w.erase("head.weight");
  CHECK(error_of(w) == "state dict: missing key 'head.weight'");

  w = weights_for(small_arch());
  w.erase("layers.0.downsample.norm.num_batches_tracked");  // optional statistic
  CHECK(error_of(w).empty());

  CHECK(error_of(WeightMap{}).find("missing key 'patch_embed.proj.0.weight'") != std::string::npos);
}
