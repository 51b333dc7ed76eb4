// Classifier: top-k, the ways in (decoded, encoded, files, batches), errors
// kept per file, and several threads sharing one Model.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

#include "ravlt/classifier.h"
#include "ravlt/convert.h"
#include "ravlt/error.h"
#include "tests/test_util.h"

using namespace ravlt;
using ravlt::test::TempDir;
using ravlt::test::testdata;

namespace {

Image random_image(int width, int height, uint32_t seed) {
  Image im{width, height, std::vector<uint8_t>(static_cast<size_t>(width) * height * 3)};
  std::mt19937 rng(seed);
  for (uint8_t& v : im.rgb) v = static_cast<uint8_t>(rng() & 0xFF);
  return im;
}

// A 24-bit bottom-up BMP of `im`, written by hand.
std::vector<uint8_t> encode_bmp(const Image& im) {
  const uint32_t stride = (static_cast<uint32_t>(im.width) * 3 + 3) / 4 * 4;
  const uint32_t size = 54 + stride * static_cast<uint32_t>(im.height);
  std::vector<uint8_t> b(size, 0);
  auto put = [&](size_t at, uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i)
      b[at + static_cast<size_t>(i)] = static_cast<uint8_t>(v >> (8 * i));
  };
  b[0] = 'B';
  b[1] = 'M';
  put(2, size, 4);
  put(10, 54, 4);
  put(14, 40, 4);
  put(18, static_cast<uint32_t>(im.width), 4);
  put(22, static_cast<uint32_t>(im.height), 4);
  put(26, 1, 2);
  put(28, 24, 2);
  for (int y = 0; y < im.height; ++y) {
    uint8_t* row = b.data() + 54 + static_cast<size_t>(im.height - 1 - y) * stride;
    for (int x = 0; x < im.width; ++x) {
      const uint8_t* p = im.rgb.data() + (static_cast<size_t>(y) * im.width + x) * 3;
      row[3 * x] = p[2];  // BGR
      row[3 * x + 1] = p[1];
      row[3 * x + 2] = p[0];
    }
  }
  return b;
}

std::shared_ptr<const Model> small_model(const TempDir& dir) {
  ConvertOptions options;
  options.resize = 40;
  options.crop = 32;
  const std::string path = dir.file("custom.rvlt");
  convert_checkpoint(testdata("custom_bare.pth"), path, options);
  return Model::load(path);
}

}  // namespace

TEST_CASE("top_k: softmax probabilities, largest first, ties by lower index") {
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, 3.0f};
  const std::vector<std::string> labels = {"a", "b", "c", "d"};
  const auto top = top_k(logits, 3, labels);
  REQUIRE(top.size() == 3);
  CHECK(top[0].index == 1);
  CHECK(top[1].index == 3);
  CHECK(top[2].index == 2);
  CHECK(top[0].label == "b");
  const double sum = std::exp(1.0) + 2 * std::exp(3.0) + std::exp(2.0);
  CHECK(top[0].probability == doctest::Approx(std::exp(3.0) / sum).epsilon(1e-6));
  CHECK(top[2].probability == doctest::Approx(std::exp(2.0) / sum).epsilon(1e-6));
  CHECK(top_k(logits, 10, labels).size() == 4);
  // Large logits do not overflow.
  const auto big = top_k(std::vector<float>{1000.0f, 999.0f}, 1, labels);
  CHECK(big[0].probability == doctest::Approx(1.0 / (1.0 + std::exp(-1.0))).epsilon(1e-6));
}

TEST_CASE("a classifier gives the network's top-k of the preprocessed image, however fed") {
  TempDir dir;
  const auto model = small_model(dir);
  CHECK(model->preprocessing().resize == 40);
  CHECK(model->preprocessing().crop_height == 32);
  ClassifierOptions options;
  options.top_k = 3;
  Classifier classifier(model, options);
  const Image im = random_image(57, 45, 1);

  Session session(model);
  const Tensor logits = session.run(preprocess(im, model->preprocessing()));
  const auto want = top_k(logits.data, 3, model->labels());
  const auto got = classifier.classify(im);
  REQUIRE(got.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(got[i].index == want[i].index);
    CHECK(got[i].probability == want[i].probability);
  }
  // The same image encoded as a BMP, in memory and in a file.
  const std::vector<uint8_t> bmp = encode_bmp(im);
  const auto from_memory = classifier.classify_encoded(bmp);
  CHECK(from_memory[0].index == want[0].index);
  CHECK(from_memory[0].probability == want[0].probability);
  const std::string path = dir.file("im.bmp");
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bmp.data()), static_cast<std::streamsize>(bmp.size()));
  CHECK(classifier.classify_file(path)[0].index == want[0].index);

  // A batch gives each image what it gets alone (to float rounding: the
  // batch may take other kernel paths).
  const std::vector<Image> images = {im, random_image(33, 70, 2), random_image(90, 31, 3)};
  const auto batch = classifier.classify_batch(images);
  REQUIRE(batch.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    const auto alone = classifier.classify(images[i]);
    CHECK(batch[i][0].index == alone[0].index);
    CHECK(batch[i][0].probability == doctest::Approx(alone[0].probability).epsilon(1e-5));
  }
}

TEST_CASE("inputs of every kind in one batch: each result as its own call gives, errors named") {
  TempDir dir;
  const auto model = small_model(dir);
  Classifier classifier(model);
  const Image a = random_image(50, 40, 7), b = random_image(33, 61, 8);
  const std::vector<uint8_t> bmp = encode_bmp(b);
  const std::string file = dir.file("b.bmp");
  std::ofstream(file, std::ios::binary)
      .write(reinterpret_cast<const char*>(bmp.data()), static_cast<std::streamsize>(bmp.size()));
  const std::vector<uint8_t> junk = {'n', 'o', 't'};
  const Image empty;
  const std::vector<ImageInput> inputs = {ImageInput::from_image(a, "item 0"),
                                          ImageInput::from_encoded(bmp, "item 1"),
                                          ImageInput::file(file),
                                          ImageInput::from_encoded(junk, "item 3"),
                                          ImageInput::from_image(empty, "item 4"),
                                          ImageInput::file(dir.file("none.png"))};
  const auto results = classifier.classify_inputs(inputs);
  REQUIRE(results.size() == 6);
  const auto alone_a = classifier.classify(a), alone_b = classifier.classify(b);
  for (size_t i : {0, 1, 2}) {
    REQUIRE(results[i].ok());
    const auto& alone = i == 0 ? alone_a : alone_b;
    for (size_t k = 0; k < alone.size(); ++k) {
      CHECK(results[i].top[k].index == alone[k].index);
      CHECK(results[i].top[k].probability == doctest::Approx(alone[k].probability).epsilon(1e-5));
    }
  }
  CHECK(results[3].error.starts_with("item 3: not a JPEG, PNG or BMP"));
  CHECK(results[4].error.starts_with("item 4: "));
  CHECK(results[5].error.find("none.png: cannot open") != std::string::npos);
  const auto embedded = classifier.embed_inputs(inputs);
  REQUIRE(embedded.size() == 6);
  const std::vector<float> alone_embedding = classifier.embed(a);
  REQUIRE(embedded[0].embedding.size() == alone_embedding.size());
  for (size_t k = 0; k < alone_embedding.size(); ++k) {
    CHECK(embedded[0].embedding[k] == doctest::Approx(alone_embedding[k]).epsilon(1e-4));
  }
  CHECK(embedded[1].ok());
  CHECK(embedded[3].error == results[3].error);
  CHECK(embedded[4].embedding.empty());
}

TEST_CASE("files that cannot be classified carry their error; the others are classified") {
  TempDir dir;
  const auto model = small_model(dir);
  Classifier classifier(model);
  const std::vector<uint8_t> bmp = encode_bmp(random_image(50, 40, 4));
  const std::string good = dir.file("good.bmp"), cut = dir.file("cut.bmp"),
                    text = dir.file("text.png"), missing = dir.file("missing.jpg");
  std::ofstream(good, std::ios::binary)
      .write(reinterpret_cast<const char*>(bmp.data()), static_cast<std::streamsize>(bmp.size()));
  std::ofstream(cut, std::ios::binary).write(reinterpret_cast<const char*>(bmp.data()), 200);
  std::ofstream(text) << "not an image";
  const std::vector<std::string> paths = {good, cut, text, missing, good};
  const auto results = classifier.classify_files(paths);
  REQUIRE(results.size() == 5);
  CHECK(results[0].ok());
  CHECK(results[0].top.size() == 5);
  CHECK(results[4].ok());
  CHECK(results[4].top[0].index == results[0].top[0].index);
  CHECK(results[1].error.find("cut.bmp: corrupt BMP: file is truncated") != std::string::npos);
  CHECK(results[2].error.find("not a JPEG, PNG or BMP") != std::string::npos);
  CHECK(results[3].error.find("missing.jpg: cannot open") != std::string::npos);
  CHECK(results[1].top.empty());
  CHECK_THROWS_WITH_AS(classifier.classify_file(cut), doctest::Contains("cut.bmp"), Error);
  CHECK_THROWS_AS(Classifier(nullptr), Error);
  ClassifierOptions bad;
  bad.top_k = 0;
  CHECK_THROWS_AS(Classifier(model, bad), Error);
  ClassifierOptions negative;
  negative.session.threads = -1;
  CHECK_THROWS_AS(Classifier(model, negative), Error);
}

TEST_CASE("a classifier runs its session with every session option it was given") {
  TempDir dir;
  const auto model = small_model(dir);
  ClassifierOptions tight;
  tight.session.max_memory_bytes = 1024;  // far below one image's activations
  Classifier small(model, tight);
  CHECK_THROWS_WITH_AS(small.classify(random_image(40, 40, 3)),
                       doctest::Contains("more than the limit of"), Error);
  ClassifierOptions fp16;
  fp16.session.precision = Precision::kFloat16;  // the CPU runs float32 only
  CHECK_THROWS_WITH_AS(Classifier(model, fp16), doctest::Contains("fp16"), Error);
}

TEST_CASE("threads sharing one Model, each with its own Classifier, agree with a lone run") {
  TempDir dir;
  const auto model = small_model(dir);
  std::vector<Image> images;
  for (uint32_t i = 0; i < 4; ++i)
    images.push_back(random_image(40 + 7 * static_cast<int>(i), 50, i + 10));
  std::vector<std::vector<Prediction>> alone;
  {
    ClassifierOptions one;
    one.session.threads = 1;
    Classifier c(model, one);
    for (const Image& im : images) alone.push_back(c.classify(im));
  }
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      ClassifierOptions one;
      one.session.threads = 1;
      Classifier c(model, one);
      for (int round = 0; round < 3; ++round) {
        for (size_t i = 0; i < images.size(); ++i) {
          const size_t k = (i + static_cast<size_t>(t)) % images.size();
          const auto got = c.classify(images[k]);
          if (got[0].index != alone[k][0].index || got[0].probability != alone[k][0].probability) {
            ++mismatches[static_cast<size_t>(t)];
          }
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int m : mismatches) CHECK(m == 0);
}

TEST_CASE("embeddings: the pooled features of the classifier's preprocessed image") {
  TempDir dir;
  const std::string path = dir.file("custom.rvlt");
  ConvertOptions convert;
  convert.resize = 40;
  convert.crop = 32;
  convert_checkpoint(testdata("custom_bare.pth"), path, convert);
  const auto model = Model::load(path);
  Classifier classifier(model);
  const std::vector<uint8_t> bmp = encode_bmp(random_image(50, 40, 9));
  const std::string image = dir.file("image.bmp");
  std::ofstream(image, std::ios::binary)
      .write(reinterpret_cast<const char*>(bmp.data()), static_cast<std::streamsize>(bmp.size()));
  const std::vector<float> embedding = classifier.embed_file(image);
  REQUIRE(embedding.size() == 96);
  const Tensor x = preprocess(load_image(image), model->preprocessing());
  Session session(model);
  const std::vector<Output> out = session.run_all(x.data.data(), x.shape, {"embedding"});
  CHECK(std::vector<float>(out[0].data.begin(), out[0].data.end()) == embedding);
  const std::vector<std::string> files = {image, dir.file("missing.png"), image};
  const std::vector<EmbedResult> results = classifier.embed_files(files);
  REQUIRE(results.size() == 3);
  CHECK(results[0].embedding == embedding);
  CHECK_FALSE(results[1].ok());
  CHECK(results[1].embedding.empty());
  CHECK(results[1].error.find("missing.png") != std::string::npos);
  CHECK(results[2].embedding == embedding);

  // A backbone has no classes: refused, pointing at what runs it.
  const std::string backbone = dir.file("backbone.rvlt");
  convert_checkpoint(testdata("custom_mmdet.pth"), backbone);
  CHECK_THROWS_WITH_AS(Classifier(Model::load(backbone)), doctest::Contains("Session::run_all"),
                       Error);
}
