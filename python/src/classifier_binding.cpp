// ravlt.Classifier and ravlt.Prediction: images in, top-k classes or
// embeddings out, an error per item that failed.
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cmath>
#include <limits>

#include "python/src/arrays.h"
#include "python/src/bindings.h"
#include "python/src/image_items.h"
#include "ravlt/classifier.h"
#include "ravlt/error.h"

namespace ravlt::python {
namespace {

struct PyClassifier {
  PyClassifier(const ModelHandle& m, const ClassifierOptions& o, int batch)
      : model(m.model), classifier(m.model, o), batch_size(batch), projection(m.info.projection) {}
  std::shared_ptr<const Model> model;
  Classifier classifier;
  int batch_size;
  int projection;  ///< embedding width
  std::atomic<bool> busy{false};
};

// Runs `run` (classify_inputs or embed_inputs) over the items in batches of
// the classifier's batch size, with the GIL released; one result per item,
// in order (an item that could not be read keeps its error).
template <typename Result, typename Run>
std::vector<Result> run_items(PyClassifier& c, const ImageItems& items, Run run) {
  std::vector<Result> results(items.errors.size());
  for (size_t i = 0; i < items.errors.size(); ++i) results[i].error = items.errors[i];
  nb::gil_scoped_release unlocked;
  const auto batch = static_cast<size_t>(c.batch_size);
  for (size_t start = 0; start < items.inputs.size(); start += batch) {
    const size_t n = std::min(batch, items.inputs.size() - start);
    std::vector<Result> part = run(std::span<const ImageInput>(items.inputs.data() + start, n));
    for (size_t j = 0; j < n; ++j) results[items.owners[start + j]] = std::move(part[j]);
  }
  return results;
}

}  // namespace

void bind_classifier(nb::module_& m) {
  nb::class_<Prediction>(m, "Prediction", "One class of an image's top-k.")
      .def_ro("index", &Prediction::index, "Class index in the model's logits.")
      .def_ro("label", &Prediction::label, "The class name (Model.labels[index]).")
      .def_ro("probability", &Prediction::probability, "Softmax of the logits.")
      .def("__repr__", [](const Prediction& p) {
        char prob[32];
        std::snprintf(prob, sizeof prob, "%.6g", static_cast<double>(p.probability));
        return "Prediction(index=" + std::to_string(p.index) +
               ", label=" + nb::cast<std::string>(nb::repr(nb::str(p.label.c_str()))) +
               ", probability=" + prob + ")";
      });

  nb::class_<PyClassifier>(
      m, "Classifier",
      "Decodes images, preprocesses them as the model records, runs them in batches and "
      "returns the top-k classes (classify) or the pooled features (embed). Items are paths "
      "(str or os.PathLike), encoded bytes (JPEG, PNG, BMP) or decoded uint8 (H, W, 3) RGB "
      "arrays. One call at a time, like a Session; the GIL is released while it runs.")
      .def(
          "__init__",
          [](PyClassifier* self, const ModelHandle& model, int top_k, int threads,
             const std::string& device, const std::string& precision, int batch_size,
             bool pack_weights, bool defer_packing) {
            if (batch_size < 1) throw Error("batch_size must be at least 1");
            if (model.model->kind() != ModelKind::kClassifier) {
              throw Error("Classifier: " + model.info.path +
                          " is a backbone (feature maps, no classes): run it with "
                          "ravlt.Session(model).run_all(x)");
            }
            ClassifierOptions o;
            o.session = session_options(threads, device, precision, 0, pack_weights, defer_packing);
            o.top_k = top_k;
            nb::gil_scoped_release unlocked;
            new (self) PyClassifier(model, o, batch_size);
          },
          nb::arg("model"), nb::kw_only(), nb::arg("top_k") = 5, nb::arg("threads") = 0,
          nb::arg("device") = "cpu", nb::arg("precision") = "fp32", nb::arg("batch_size") = 32,
          nb::arg("pack_weights") = true, nb::arg("defer_packing") = false,
          "top_k: classes per image (at most the model's). threads: per run and for decoding "
          "(0: all cores). batch_size: images per run of the network. " RAVLT_PACK_WEIGHTS_DOC
          "Raises ravlt.Error for a backbone (no classes: use Session.run_all) or bad options.")
      .def(
          "classify",
          [](PyClassifier& c, nb::handle items, nb::handle names) {
            InUse in_use(c.busy, "Classifier");
            const ImageItems read = image_items(items, names);
            const auto results = run_items<ClassifyResult>(
                c, read,
                [&](std::span<const ImageInput> in) { return c.classifier.classify_inputs(in); });
            nb::list out;
            for (const ClassifyResult& r : results) {
              if (!r.ok()) {
                out.append(make_error(r.error));
                continue;
              }
              nb::list top;
              for (const Prediction& p : r.top) top.append(nb::cast(p));
              out.append(top);
            }
            return out;
          },
          nb::arg("items").none(), nb::kw_only(), nb::arg("names").none() = nb::none(),
          nb::sig("def classify(self, items: collections.abc.Iterable[str | os.PathLike | bytes | "
                  "numpy.typing.NDArray[numpy.uint8]], *, names: collections.abc.Sequence[str] | "
                  "None = "
                  "None) -> list[list[Prediction] | Error]"),
          "The top-k of each item: a list with, per item and in order, a list of Prediction "
          "(most probable first) or, for an item that could not be read or decoded, the "
          "ravlt.Error saying why (returned, not raised). names: optional, one per item, to "
          "name bytes and arrays in those errors (default \"item K\"; a path names itself).")
      .def(
          "embed",
          [](PyClassifier& c, nb::handle items, nb::handle names) {
            InUse in_use(c.busy, "Classifier");
            const ImageItems read = image_items(items, names);
            const auto results = run_items<EmbedResult>(
                c, read,
                [&](std::span<const ImageInput> in) { return c.classifier.embed_inputs(in); });
            const auto width = static_cast<size_t>(c.projection);
            std::vector<float> rows(results.size() * width,
                                    std::numeric_limits<float>::quiet_NaN());
            nb::list errors;
            for (size_t i = 0; i < results.size(); ++i) {
              errors.append(results[i].ok() ? nb::none() : make_error(results[i].error));
              if (results[i].embedding.size() != width) continue;  // failed: a row of NaN
              std::copy(results[i].embedding.begin(), results[i].embedding.end(),
                        rows.begin() + static_cast<std::ptrdiff_t>(i * width));
            }
            OutputBuffer array(rows,
                               {static_cast<int64_t>(results.size()), static_cast<int64_t>(width)});
            return nb::make_tuple(array.to_numpy(), errors);
          },
          nb::arg("items").none(), nb::kw_only(), nb::arg("names").none() = nb::none(),
          nb::sig("def embed(self, items: collections.abc.Iterable[str | os.PathLike | bytes | "
                  "numpy.typing.NDArray[numpy.uint8]], *, names: collections.abc.Sequence[str] | "
                  "None = "
                  "None) -> tuple[numpy.typing.NDArray[numpy.float32], list[Error | None]]"),
          "The embeddings of the items (the pooled features the head reads, the model's "
          "\"embedding\" output): (array (N, projection) float32, errors), one row and one "
          "entry of errors per item; an item that failed has a row of NaN and its "
          "ravlt.Error in errors (None for the others).")
      .def_prop_ro(
          "labels", [](const PyClassifier& c) { return c.model->labels(); },
          "The model's class names.");
}

}  // namespace ravlt::python
