#include "ravlt/classifier.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "ravlt/error.h"

namespace ravlt {

std::vector<Prediction> top_k(std::span<const float> logits, int k,
                              const std::vector<std::string>& labels) {
  const int n = static_cast<int>(logits.size());
  k = std::clamp(k, 0, n);
  // Softmax in double: exp of the logit minus the maximum, over their sum.
  const float max = n > 0 ? *std::max_element(logits.begin(), logits.end()) : 0.0f;
  double sum = 0.0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - max);
  std::vector<int> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int a, int b) {
    return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)] ||
           (logits[static_cast<size_t>(a)] == logits[static_cast<size_t>(b)] && a < b);
  });
  std::vector<Prediction> out;
  for (int i = 0; i < k; ++i) {
    const auto c = static_cast<size_t>(order[static_cast<size_t>(i)]);
    out.push_back({order[static_cast<size_t>(i)], c < labels.size() ? labels[c] : "",
                   static_cast<float>(std::exp(static_cast<double>(logits[c]) - max) / sum)});
  }
  return out;
}

class Classifier::Impl {
 public:
  Impl(std::shared_ptr<const Model> m, const ClassifierOptions& o)
      : model(std::move(m)), options(o), session(model, o.session) {}

  // Preprocessed images stacked into one batch, run, and split into top-k.
  std::vector<std::vector<Prediction>> run(const std::vector<const Tensor*>& inputs) {
    if (inputs.empty()) return {};
    const Preprocessing& p = model->preprocessing();
    const size_t per = static_cast<size_t>(3) * p.crop_height * p.crop_width;
    batch.assign(per * inputs.size(), 0.0f);
    for (size_t i = 0; i < inputs.size(); ++i) {
      std::copy(inputs[i]->data.begin(), inputs[i]->data.end(),
                batch.begin() + static_cast<std::ptrdiff_t>(i * per));
    }
    const std::vector<int64_t> shape = {static_cast<int64_t>(inputs.size()), 3, p.crop_height,
                                        p.crop_width};
    const std::span<const float> logits = session.run(batch.data(), shape);
    const auto classes = static_cast<size_t>(model->num_classes());
    std::vector<std::vector<Prediction>> out;
    for (size_t i = 0; i < inputs.size(); ++i) {
      out.push_back(top_k(logits.subspan(i * classes, classes), options.top_k, model->labels()));
    }
    return out;
  }

  std::shared_ptr<const Model> model;
  ClassifierOptions options;
  Session session;
  std::vector<float> batch;
};

Classifier::Classifier(std::shared_ptr<const Model> model, const ClassifierOptions& options) {
  if (!model) throw Error("Classifier: no model");
  if (options.session.threads < 0) throw Error("Classifier: thread count must not be negative");
  if (options.top_k < 1) throw Error("Classifier: top_k must be at least 1");
  impl_ = std::make_unique<Impl>(std::move(model), options);
}

Classifier::~Classifier() = default;

const Model& Classifier::model() const {
  return *impl_->model;
}

std::vector<Prediction> Classifier::classify(const Image& image) {
  const Tensor x = preprocess(image, impl_->model->preprocessing());
  return impl_->run({&x})[0];
}

std::vector<Prediction> Classifier::classify_encoded(std::span<const uint8_t> encoded) {
  return classify(decode_image(encoded, impl_->options.decode));
}

std::vector<Prediction> Classifier::classify_file(const std::string& path) {
  return classify(load_image(path, impl_->options.decode));
}

std::vector<std::vector<Prediction>> Classifier::classify_batch(std::span<const Image> images) {
  std::vector<Tensor> tensors(images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    tensors[i] = preprocess(images[i], impl_->model->preprocessing());
  }
  std::vector<const Tensor*> inputs;
  for (const Tensor& t : tensors) inputs.push_back(&t);
  return impl_->run(inputs);
}

std::vector<ClassifyResult> Classifier::classify_files(std::span<const std::string> paths) {
  const auto n = static_cast<int64_t>(paths.size());
  std::vector<Tensor> tensors(paths.size());
  std::vector<ClassifyResult> results(paths.size());
  const Preprocessing& p = impl_->model->preprocessing();
  const DecodeOptions decode = impl_->options.decode;
  const int threads =
      impl_->options.session.threads > 0 ? impl_->options.session.threads : omp_get_num_procs();
  // Decoding is independent per file; errors stay with their file.
#pragma omp parallel for schedule(dynamic) num_threads(threads)
  for (int64_t i = 0; i < n; ++i) {
    const auto k = static_cast<size_t>(i);
    try {
      tensors[k] = preprocess(load_image(paths[k], decode), p);
    } catch (const Error& e) {
      results[k].error = e.what();  // names the file already
    } catch (const std::exception& e) {
      results[k].error = paths[k] + ": " + e.what();
    }
  }
  std::vector<const Tensor*> inputs;
  std::vector<size_t> owners;
  for (size_t k = 0; k < paths.size(); ++k) {
    if (results[k].ok()) {
      inputs.push_back(&tensors[k]);
      owners.push_back(k);
    }
  }
  std::vector<std::vector<Prediction>> top = impl_->run(inputs);
  for (size_t j = 0; j < owners.size(); ++j) results[owners[j]].top = std::move(top[j]);
  return results;
}

}  // namespace ravlt
