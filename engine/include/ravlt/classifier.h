// Image classification: decode, preprocess as the model's metadata says,
// run, and return the top-k classes with their probabilities.
//
// Thread safety: a Classifier owns a Session, so use each Classifier from
// one thread at a time; any number of Classifiers (one per thread) may
// share one Model.
//
//     auto model = ravlt::Model::load("ravlt_s.rvlt");
//     ravlt::Classifier classifier(model);
//     for (const ravlt::Prediction& p : classifier.classify_file("cat.jpg"))
//       std::printf("%.3f %s\n", p.probability, p.label.c_str());
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ravlt/image.h"
#include "ravlt/model.h"

#include "ravlt/export.h"

namespace ravlt {

struct ClassifierOptions {
  /// How the network runs: threads (also those decoding a batch; 0: all
  /// cores), device, precision, memory limit, profiling (see SessionOptions).
  SessionOptions session;
  /// Classes returned per image, most probable first (at most the model's
  /// class count).
  int top_k = 5;
  /// Limits applied while decoding (the decompression-bomb guard).
  DecodeOptions decode;
};

/// One class of an image's top-k.
struct Prediction {
  int index = 0;            ///< class index in the model's output
  std::string label;        ///< its name (Model::labels())
  float probability = 0.f;  ///< softmax of the logits
};

/// The outcome for one input of a batch: predictions, or why there are none.
struct ClassifyResult {
  std::vector<Prediction> top;  ///< empty if `error` is set
  std::string error;            ///< e.g. "cat.jpg: corrupt JPEG: ..."
  bool ok() const { return error.empty(); }
};

/// One image of a batch, in whichever form the caller holds it: a file, an
/// encoded image in memory (JPEG, PNG, BMP) or a decoded RGB image. Encoded
/// bytes and decoded images are referenced, not copied: they must outlive
/// the call that reads them.
struct ImageInput {
  enum class Kind { kFile, kEncoded, kDecoded };
  Kind kind = Kind::kFile;
  std::string path;                  ///< kFile: the file to read
  std::span<const uint8_t> encoded;  ///< kEncoded: the file's bytes
  const Image* image = nullptr;      ///< kDecoded: the image
  /// How errors name this input (kEncoded, kDecoded; a file is named by
  /// its path), e.g. "item 3".
  std::string name;

  static ImageInput file(std::string path) {
    return {Kind::kFile, std::move(path), {}, nullptr, {}};
  }
  static ImageInput from_encoded(std::span<const uint8_t> bytes, std::string name) {
    return {Kind::kEncoded, {}, bytes, nullptr, std::move(name)};
  }
  static ImageInput from_image(const Image& image, std::string name) {
    return {Kind::kDecoded, {}, {}, &image, std::move(name)};
  }
};

/// The embedding of one input of a batch, or why there is none.
struct EmbedResult {
  std::vector<float> embedding;  ///< the pooled features; empty if `error` is set
  std::string error;             ///< e.g. "cat.jpg: corrupt JPEG: ..."
  bool ok() const { return error.empty(); }
};

class RAVLT_API Classifier {
 public:
  /// Throws ravlt::Error on a null model, a backbone (which has no classes:
  /// run it with Session::run_all) or bad options.
  explicit Classifier(std::shared_ptr<const Model> model, const ClassifierOptions& options = {});
  ~Classifier();
  Classifier(const Classifier&) = delete;
  Classifier& operator=(const Classifier&) = delete;

  /// The top-k of an image file (JPEG, PNG or BMP). Throws ravlt::Error
  /// naming the file if it cannot be decoded.
  std::vector<Prediction> classify_file(const std::string& path);
  /// The top-k of an encoded image held in memory.
  std::vector<Prediction> classify_encoded(std::span<const uint8_t> encoded);
  /// The top-k of a decoded RGB image.
  std::vector<Prediction> classify(const Image& image);
  /// Several files in one batched run of the network, decoded in parallel.
  /// Never throws for a bad file: its result carries the error instead.
  std::vector<ClassifyResult> classify_files(std::span<const std::string> paths);
  /// Several decoded images in one batched run of the network.
  std::vector<std::vector<Prediction>> classify_batch(std::span<const Image> images);
  /// Several inputs of any kind in one batched run of the network, decoded
  /// and preprocessed in parallel. Never throws for a bad input (one that
  /// does not decode, an empty image): its result carries the error,
  /// naming it, instead.
  std::vector<ClassifyResult> classify_inputs(std::span<const ImageInput> inputs);

  /// The embedding of a decoded RGB image: the pooled features the head
  /// reads (the model's "embedding" output; Model::output_names()),
  /// preprocessed as for classification.
  std::vector<float> embed(const Image& image);
  /// The embedding of an image file. Throws ravlt::Error naming the file
  /// if it cannot be decoded.
  std::vector<float> embed_file(const std::string& path);
  /// Several files in one batched run, decoded in parallel. Never throws
  /// for a bad file: its result carries the error instead.
  std::vector<EmbedResult> embed_files(std::span<const std::string> paths);
  /// Several inputs of any kind in one batched run (see classify_inputs).
  std::vector<EmbedResult> embed_inputs(std::span<const ImageInput> inputs);

  const Model& model() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

/// The `k` largest of `logits` (one row) as probabilities (softmax), most
/// probable first; ties keep the lower index first.
RAVLT_API std::vector<Prediction> top_k(std::span<const float> logits, int k,
                                        const std::vector<std::string>& labels);

}  // namespace ravlt
