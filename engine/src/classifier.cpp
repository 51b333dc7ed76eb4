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

  // Preprocessed images stacked into one batch and run; returns `output`
  // ("logits" or "embedding"), one row per image.
  std::span<const float> run(const std::vector<const Tensor*>& inputs, const std::string& output) {
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
    if (output == "logits") return session.run(batch.data(), shape);
    return session.run_all(batch.data(), shape, {output})[0].data;
  }

  std::vector<std::vector<Prediction>> classify(const std::vector<const Tensor*>& inputs) {
    const std::span<const float> logits = run(inputs, "logits");
    const auto classes = static_cast<size_t>(model->num_classes());
    std::vector<std::vector<Prediction>> out;
    for (size_t i = 0; i < inputs.size(); ++i) {
      out.push_back(top_k(logits.subspan(i * classes, classes), options.top_k, model->labels()));
    }
    return out;
  }

  std::vector<std::vector<float>> embed(const std::vector<const Tensor*>& inputs) {
    const std::span<const float> rows = run(inputs, "embedding");
    const size_t width = inputs.empty() ? 0 : rows.size() / inputs.size();
    std::vector<std::vector<float>> out;
    for (size_t i = 0; i < inputs.size(); ++i) {
      out.emplace_back(rows.begin() + static_cast<std::ptrdiff_t>(i * width),
                       rows.begin() + static_cast<std::ptrdiff_t>((i + 1) * width));
    }
    return out;
  }

  // Decodes and preprocesses `inputs` in parallel; an input that fails
  // keeps its error in `errors` and gets no tensor.
  std::vector<Tensor> load(std::span<const ImageInput> inputs, std::vector<std::string>& errors) {
    const auto n = static_cast<int64_t>(inputs.size());
    std::vector<Tensor> tensors(inputs.size());
    errors.assign(inputs.size(), "");
    const Preprocessing& p = model->preprocessing();
    const DecodeOptions decode = options.decode;
    const int threads = options.session.threads > 0 ? options.session.threads : omp_get_num_procs();
    // Decoding is independent per input; errors stay with their input.
#pragma omp parallel for schedule(dynamic) num_threads(threads)
    for (int64_t i = 0; i < n; ++i) {
      const auto k = static_cast<size_t>(i);
      const ImageInput& in = inputs[k];
      const std::string& name = in.kind == ImageInput::Kind::kFile ? in.path : in.name;
      try {
        switch (in.kind) {
          case ImageInput::Kind::kFile:
            tensors[k] = preprocess(load_image(in.path, decode), p);  // errors name the file
            break;
          case ImageInput::Kind::kEncoded:
            tensors[k] = preprocess(decode_image(in.encoded, decode), p);
            break;
          case ImageInput::Kind::kDecoded:
            if (in.image == nullptr) throw Error("no image");
            tensors[k] = preprocess(*in.image, p);
            break;
        }
      } catch (const Error& e) {
        // load_image's errors name the file already.
        const bool named = in.kind == ImageInput::Kind::kFile || name.empty();
        errors[k] = named ? std::string(e.what()) : name + ": " + e.what();
      } catch (const std::exception& e) {
        errors[k] = name.empty() ? std::string(e.what()) : name + ": " + e.what();
      }
    }
    return tensors;
  }

  // Decodes `inputs`, runs `run_batch` once on those that decoded and hands
  // each its row through `store`; an input that failed keeps its error.
  template <typename Result, typename Batch, typename Store>
  std::vector<Result> for_inputs(std::span<const ImageInput> in, Batch run_batch, Store store) {
    std::vector<std::string> errors;
    const std::vector<Tensor> tensors = load(in, errors);
    std::vector<Result> results(in.size());
    std::vector<const Tensor*> inputs;
    std::vector<size_t> owners;
    for (size_t k = 0; k < in.size(); ++k) {
      results[k].error = errors[k];
      if (errors[k].empty()) {
        inputs.push_back(&tensors[k]);
        owners.push_back(k);
      }
    }
    auto rows = run_batch(inputs);
    for (size_t j = 0; j < owners.size(); ++j) store(results[owners[j]], std::move(rows[j]));
    return results;
  }

  std::vector<ClassifyResult> classify_inputs(std::span<const ImageInput> in) {
    return for_inputs<ClassifyResult>(
        in, [this](const std::vector<const Tensor*>& t) { return classify(t); },
        [](ClassifyResult& r, std::vector<Prediction>&& top) { r.top = std::move(top); });
  }

  std::vector<EmbedResult> embed_inputs(std::span<const ImageInput> in) {
    return for_inputs<EmbedResult>(
        in, [this](const std::vector<const Tensor*>& t) { return embed(t); },
        [](EmbedResult& r, std::vector<float>&& row) { r.embedding = std::move(row); });
  }

  std::shared_ptr<const Model> model;
  ClassifierOptions options;
  Session session;
  std::vector<float> batch;
};

Classifier::Classifier(std::shared_ptr<const Model> model, const ClassifierOptions& options) {
  if (!model) throw Error("Classifier: no model");
  if (model->kind() != ModelKind::kClassifier) {
    throw Error(
        "Classifier: the model is a backbone (feature maps, no classes); run it with "
        "Session::run_all");
  }
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
  return impl_->classify({&x})[0];
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
  return impl_->classify(inputs);
}

std::vector<float> Classifier::embed(const Image& image) {
  const Tensor x = preprocess(image, impl_->model->preprocessing());
  return impl_->embed({&x})[0];
}

std::vector<float> Classifier::embed_file(const std::string& path) {
  return embed(load_image(path, impl_->options.decode));
}

namespace {

std::vector<ImageInput> file_inputs(std::span<const std::string> paths) {
  std::vector<ImageInput> inputs;
  inputs.reserve(paths.size());
  for (const std::string& p : paths) inputs.push_back(ImageInput::file(p));
  return inputs;
}

}  // namespace

std::vector<EmbedResult> Classifier::embed_files(std::span<const std::string> paths) {
  return impl_->embed_inputs(file_inputs(paths));
}

std::vector<ClassifyResult> Classifier::classify_files(std::span<const std::string> paths) {
  return impl_->classify_inputs(file_inputs(paths));
}

std::vector<EmbedResult> Classifier::embed_inputs(std::span<const ImageInput> inputs) {
  return impl_->embed_inputs(inputs);
}

std::vector<ClassifyResult> Classifier::classify_inputs(std::span<const ImageInput> inputs) {
  return impl_->classify_inputs(inputs);
}

}  // namespace ravlt
