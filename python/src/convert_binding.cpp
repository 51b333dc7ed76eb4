// ravlt.convert: a PyTorch checkpoint to a .rvlt file, the summary as data.
#include <nanobind/stl/array.h>
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <optional>

#include "python/src/bindings.h"
#include "ravlt/convert.h"
#include "ravlt/error.h"
#include "report/model_report.h"

namespace ravlt::python {
namespace {

// "l,l,v,v" as the stage names Model.config uses.
nb::list attention_names(const std::string& per_stage) {
  nb::list out;
  size_t start = 0;
  while (start <= per_stage.size()) {
    const size_t end = std::min(per_stage.find(',', start), per_stage.size());
    const std::string k = per_stage.substr(start, end - start);
    out.append(k == "l" ? "rala" : k == "v" ? "softmax" : k);
    start = end + 1;
  }
  return out;
}

nb::dict summary_dict(const ConvertResult& r) {
  nb::dict config;
  config["dims"] = r.dims;
  config["depths"] = r.depths;
  config["heads"] = r.heads;
  config["attention"] = attention_names(r.attention);
  config["num_classes"] = r.num_classes;
  nb::dict left_out;
  for (const auto& [part, tensors] : r.left_out) left_out[part.c_str()] = tensors;
  nb::dict d;
  d["source_file"] = r.source_file;
  d["output"] = r.output;
  d["container"] = r.container;
  d["state_dict"] = r.state_dict_entry;
  d["framework"] = r.framework;
  d["variant"] = r.variant;
  d["kind"] = r.kind;
  d["config"] = config;
  d["outputs"] = r.outputs;
  d["weight_dtype"] = std::string(dtype_name(r.weight_type));
  d["parameters"] = r.source_parameters;
  d["stored_parameters"] = r.stored_parameters;
  d["file_bytes"] = r.file_bytes;
  d["left_out"] = left_out;
  d["dataset_classes"] = r.dataset_classes;
  d["summary"] = report::conversion_summary(r);
  return d;
}

}  // namespace

void bind_convert(nb::module_& m) {
  m.def(
      "convert",
      [](const std::filesystem::path& src, const std::filesystem::path& dst,
         std::optional<std::string> state_dict, std::optional<std::string> attention,
         const std::string& dtype, nb::object labels, std::optional<int> resize,
         std::optional<int> crop, std::optional<std::array<float, 3>> mean,
         std::optional<std::array<float, 3>> std, std::optional<std::vector<int>> out_indices) {
        ConvertOptions o;
        if (state_dict) o.state_dict_entry = *state_dict;
        if (attention) o.attention = *attention;
        o.weight_type = parse_weight_type(dtype);
        if (!labels.is_none()) {
          if (nb::isinstance<nb::str>(labels)) {
            throw Error(
                "labels: pass a list of class names (for a labels file: "
                "open(path).read().splitlines())");
          }
          o.labels = nb::cast<std::vector<std::string>>(labels);
        }
        o.resize = resize;
        o.crop = crop;
        if (mean) o.mean = *mean;
        if (std) o.std = *std;
        if (out_indices) o.out_indices = *out_indices;
        ConvertResult r;
        {
          nb::gil_scoped_release unlocked;
          r = convert_checkpoint(src.string(), dst.string(), o);
        }
        return summary_dict(r);
      },
      nb::arg("src"), nb::arg("dst"), nb::kw_only(), nb::arg("state_dict") = nb::none(),
      nb::arg("attention") = nb::none(), nb::arg("dtype") = "fp32", nb::arg("labels") = nb::none(),
      nb::arg("resize") = nb::none(), nb::arg("crop") = nb::none(), nb::arg("mean") = nb::none(),
      nb::arg("std") = nb::none(), nb::arg("out_indices") = nb::none(),
      nb::sig(
          "def convert(src: str | os.PathLike, dst: str | os.PathLike, *, state_dict: str | None = "
          "None, attention: str | None = None, dtype: str = 'fp32', labels: "
          "collections.abc.Sequence[str] | None = None, resize: int | None = None, crop: int | "
          "None = None, mean: collections.abc.Sequence[float] | None = None, std: "
          "collections.abc.Sequence[float] | None = None, out_indices: "
          "collections.abc.Sequence[int] | None = None) -> dict[str, typing.Any]"),
      "Converts a RAVLT checkpoint (torch.save: an ImageNet classifier, or an mmdetection / "
      "mmsegmentation checkpoint, of which the backbone is kept) into the model file dst, as "
      "`ravlt convert` does, and returns its summary: variant, kind, config, parameters, "
      "file_bytes, left_out ({part: tensors} of a detector left out), outputs, summary (the "
      "line the CLI prints) and more. state_dict: the checkpoint's entry holding the weights "
      "(\"model\", \"model_ema\"); attention: per stage, e.g. \"l,l,v,v\"; dtype: weights "
      "stored as \"fp32\", \"fp16\" or \"bf16\"; labels: class names; resize, crop, mean, "
      "std: the preprocessing recorded; out_indices: a backbone's output stages (0-based). "
      "Raises ravlt.Error naming the file or key at fault.");
}

}  // namespace ravlt::python
