// ravlt.Model: a loaded .rvlt file, immutable, shared by threads.
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "python/src/arrays.h"
#include "python/src/bindings.h"
#include "python/src/image_items.h"
#include "ravlt/error.h"
#include "ravlt/image.h"
#include "report/model_report.h"

namespace ravlt::python {
namespace {

nb::dict config_dict(const ModelInfo& info) {
  nb::dict d;
  d["variant"] = info.variant;
  d["kind"] = info.kind;
  nb::list dims, depths, heads, head_dims, ffn, attention, layer_scale;
  for (const StageInfo& s : info.stages) {
    dims.append(s.dim);
    depths.append(s.depth);
    heads.append(s.heads);
    head_dims.append(s.head_dim);
    ffn.append(s.ffn_hidden);
    attention.append(s.attention);
    layer_scale.append(s.layer_scale);
  }
  d["dims"] = dims;
  d["depths"] = depths;
  d["heads"] = heads;
  d["head_dims"] = head_dims;
  d["ffn_hidden"] = ffn;
  d["attention"] = attention;
  d["layer_scale"] = layer_scale;
  d["in_channels"] = info.in_channels;
  d["stem_hidden"] = info.stem_hidden;
  d["projection"] = info.projection;
  d["num_classes"] = info.num_classes;
  d["weight_dtype"] = info.weight_dtype;
  return d;
}

nb::dict preprocessing_dict(const Preprocessing& p) {
  nb::dict d;
  d["resize"] = p.resize > 0 ? nb::cast(p.resize) : nb::none();
  d["crop"] =
      p.crop_height > 0 ? nb::object(nb::make_tuple(p.crop_height, p.crop_width)) : nb::none();
  d["interpolation"] = p.bilinear ? "bilinear" : "bicubic";
  d["mean"] = nb::make_tuple(p.mean[0], p.mean[1], p.mean[2]);
  d["std"] = nb::make_tuple(p.std[0], p.std[1], p.std[2]);
  return d;
}

// What `ravlt inspect --json` prints, as Python data.
nb::object info_dict(const ModelInfo& info) {
  return nb::module_::import_("json").attr("loads")(report::model_info_json(info));
}

}  // namespace

void bind_model(nb::module_& m) {
  nb::class_<ModelHandle>(m, "Model",
                          "A verified .rvlt model file, memory-mapped, with its graph. Immutable: "
                          "any number of threads and Sessions may share one. Open one with "
                          "Model.load(path). Not picklable (it maps its file): give other "
                          "processes the path.")
      .def_static(
          "load",
          [](const std::filesystem::path& path, bool verify_checksum,
             const std::optional<std::filesystem::path>& cache_dir) {
            ModelHandle h;
            nb::gil_scoped_release unlocked;
            LoadOptions options;
            options.verify_checksum = verify_checksum;
            if (cache_dir) options.cache_dir = cache_dir->string();
            h.model = Model::load(path.string(), options);
            h.info = describe_model(path.string(), /*verify_checksum=*/false);
            return h;
          },
          nb::arg("path"), nb::kw_only(), nb::arg("verify_checksum") = true,
          nb::arg("cache_dir") = nb::none(),
          "Opens and verifies a .rvlt file (its structure always, its checksum unless "
          "verify_checksum=False). Raises ravlt.Error naming the file and the problem. "
          "cache_dir: a directory (created if missing) where the first plan writes the "
          "weights packed for the CPU kernels and later loads of the same model read them, "
          "so that they are ready sooner (see weight_cache); the model file's weights that "
          "file holds packed copies of are then verified only if a plan reads them.")
      .def_prop_ro(
          "weight_cache",
          [](const ModelHandle& h) {
            nb::dict d;
            d["path"] = h.model->weight_cache_path();
            d["status"] = h.model->weight_cache_status();
            d["bytes_used"] = h.model->weight_cache_bytes_used();
            return d;
          },
          "The packed-weight file of cache_dir: {\"path\": \"\" without one, \"status\": "
          "\"read\", \"written (...)\", \"not written yet\" or why it was not used or "
          "written, \"bytes_used\": packed weights used from it so far}.")
      .def_prop_ro(
          "copied_weight_bytes",
          [](const ModelHandle& h) { return h.model->copied_weight_bytes(); },
          "Bytes of weights copied out of the mapped file so far: packed for the CPU kernels by "
          "the sessions' plans (fewer with pack_weights=False), or widened from 16 bits at load.")
      .def_prop_ro(
          "weight_packing_seconds",
          [](const ModelHandle& h) { return h.model->weight_packing_seconds(); },
          "Thread time the plans spent packing weights so far (page faults included): what "
          "cache_dir saves the next process.")
      .def_prop_ro(
          "mapped_resident_bytes",
          [](const ModelHandle& h) { return h.model->mapped_resident_bytes(); },
          "Bytes of the mapped model file in memory now: a packed weight's pages are given "
          "back, so that it is resident once (0 where the system does not say).")
      .def_prop_ro(
          "kind", [](const ModelHandle& h) { return std::string(to_string(h.model->kind())); },
          "\"classifier\" or \"backbone\".")
      .def_prop_ro(
          "outputs", [](const ModelHandle& h) { return h.model->output_names(); },
          "The named outputs, the default (Session.run's) first: [\"logits\", \"embedding\"] "
          "for a classifier, [\"stage1\", ...] for a backbone.")
      .def_prop_ro(
          "labels", [](const ModelHandle& h) { return h.model->labels(); },
          "Class names, one per logit (empty for a backbone).")
      .def_prop_ro(
          "dataset_classes", [](const ModelHandle& h) { return h.model->dataset_classes(); },
          "Class names the training framework recorded (mmdetection's CLASSES), if any.")
      .def_prop_ro(
          "num_classes", [](const ModelHandle& h) { return h.model->num_classes(); },
          "Logits per image (0 for a backbone).")
      .def_prop_ro(
          "path", [](const ModelHandle& h) { return h.info.path; }, "The file as opened.")
      .def_prop_ro(
          "config", [](const ModelHandle& h) { return config_dict(h.info); },
          nb::sig("def config(self) -> dict[str, typing.Any]"),
          "The architecture: variant, kind, per-stage dims, depths, heads, head_dims, "
          "ffn_hidden, attention (\"rala\"/\"softmax\"), layer_scale; in_channels, stem_hidden, "
          "projection, num_classes, weight_dtype.")
      .def_prop_ro(
          "preprocessing",
          [](const ModelHandle& h) { return preprocessing_dict(h.model->preprocessing()); },
          nb::sig("def preprocessing(self) -> dict[str, typing.Any]"),
          "How an image becomes the input, as recorded at conversion: resize (shorter side, or "
          "None), crop ((height, width) or None), interpolation, mean, std.")
      .def(
          "info",
          [](const ModelHandle& h, nb::object size) {
            if (size.is_none()) return info_dict(h.info);
            std::pair<int, int> hw;
            if (!nb::try_cast(size, hw)) {
              throw Error("size: expected (height, width), got " + text_of(size));
            }
            const auto [height, width] = hw;
            if (height < 1 || width < 1) {
              throw Error("size: height and width must be positive, got (" +
                          std::to_string(height) + ", " + std::to_string(width) + ")");
            }
            ModelInfo info;
            {
              nb::gil_scoped_release unlocked;
              info = describe_model(h.info.path, false, height, width);
            }
            return info_dict(info);
          },
          nb::arg("size") = nb::none(),
          nb::sig("def info(self, size: tuple[int, int] | None = None) -> dict[str, typing.Any]"),
          "Everything `ravlt inspect --json` prints, as a dict; outputs shaped for one image of "
          "size=(height, width) (default: the recorded crop, else 224 x 224).")
      .def(
          "node_macs",
          [](const ModelHandle& h, std::vector<int64_t> shape) {
            std::vector<NodeWork> work;
            {
              nb::gil_scoped_release unlocked;
              work = h.model->node_macs(shape);
            }
            return dict_list(work, [](nb::dict& d, const NodeWork& w) {
              d["name"] = w.name;
              d["op"] = w.op;
              d["macs"] = w.macs;
            });
          },
          nb::arg("input_shape"),
          nb::sig("def node_macs(self, input_shape: collections.abc.Sequence[int]) -> "
                  "list[dict[str, typing.Any]]"),
          "Every node's multiply-adds for an input of input_shape (N, 3, H, W), the whole "
          "batch, in graph order: [{\"name\": ..., \"op\": ..., \"macs\": ...}, ...] "
          "(convolutions, GEMMs, attention's products; 0 for ops that only move data). Beside "
          "Session.node_profile() it gives each node's GFLOP/s (2 x macs x runs / seconds). "
          "Raises ravlt.Error on a shape the model cannot take.")
      .def(
          "preprocess",
          [](const ModelHandle& h, nb::handle item) {
            Image image;
            if (nb::isinstance<nb::bytes>(item)) {
              nb::bytes b = nb::borrow<nb::bytes>(item);
              image = decode_image({reinterpret_cast<const uint8_t*>(b.c_str()), b.size()});
            } else if (nb::isinstance<nb::str>(item) || nb::hasattr(item, "__fspath__")) {
              const auto path =
                  nb::cast<std::string>(nb::module_::import_("os").attr("fspath")(item));
              nb::gil_scoped_release unlocked;
              image = load_image(path);
            } else {
              image = image_from_array(item);
            }
            std::unique_ptr<OutputBuffer> out;
            {
              nb::gil_scoped_release unlocked;
              const Tensor t = preprocess(image, h.model->preprocessing());
              out = std::make_unique<OutputBuffer>(t.data, t.shape);
            }
            return out->to_numpy();
          },
          nb::arg("image"),
          nb::sig("def preprocess(self, image: str | os.PathLike | bytes | "
                  "numpy.typing.NDArray[numpy.uint8]) "
                  "-> numpy.typing.NDArray[numpy.float32]"),
          "The network's input for one image (a path, encoded bytes or a uint8 (H, W, 3) "
          "array), preprocessed as the model records: float32 (1, 3, H, W), the array "
          "Classifier runs.")
      .def("__repr__",
           [](const ModelHandle& h) {
             return "<ravlt.Model " + h.info.variant + " " + h.info.kind + ", outputs " +
                    std::to_string(h.model->output_names().size()) + ": " + h.info.path + ">";
           })
      .def("__reduce__", [](const ModelHandle&) -> nb::object {
        throw nb::type_error(
            "a ravlt.Model maps its file and cannot be pickled: pass the model's path and "
            "load it where it runs (ravlt.ray does)");
      });
}

}  // namespace ravlt::python
