// ravlt.Session: runs a Model on numpy arrays; one call at a time.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <optional>

#include "python/src/arrays.h"
#include "python/src/bindings.h"
#include "ravlt/error.h"

namespace ravlt::python {
namespace {

struct PySession {
  PySession(const ModelHandle& m, const SessionOptions& o)
      : model(m.model), options(o), session(m.model, o) {}
  std::shared_ptr<const Model> model;
  SessionOptions options;
  Session session;
  std::atomic<bool> busy{false};
  uintptr_t last_input_address = 0;
  int64_t runs = 0;  // calls of run / run_all, which the profile sums over
};

// The profile's accessors: an Error on a session made without profile=True
// (the C++ API's zeros would read as "took no time").
void require_profile(const PySession& s) {
  if (!s.options.profile) {
    throw Error("this Session does not time its ops: make it with Session(model, profile=True)");
  }
}

std::vector<std::string> select_list(const std::optional<std::vector<std::string>>& select) {
  return select ? *select : std::vector<std::string>{};
}

// Runs with the GIL released and copies the selected outputs out.
std::vector<std::pair<std::string, OutputBuffer>> run_outputs(
    PySession& s, nb::handle x, const std::vector<std::string>& select) {
  InUse in_use(s.busy, "Session");
  const InputArray in = input_array(x, 3);
  s.last_input_address = reinterpret_cast<uintptr_t>(in.data);
  std::vector<std::pair<std::string, OutputBuffer>> out;
  nb::gil_scoped_release unlocked;
  for (const Output& o : s.session.run_all(in.data, in.shape, select)) {
    out.emplace_back(o.name, OutputBuffer(o.data, o.shape));
  }
  ++s.runs;
  return out;
}

}  // namespace

void bind_session(nb::module_& m) {
  nb::class_<PySession>(
      m, "Session",
      "Runs a Model on NCHW float32 arrays. Holds the prepared kernels and memory of each "
      "input shape it has seen, so repeated runs of a shape allocate nothing. One call at a "
      "time: a Session used by two threads at once raises ravlt.Error (\"Session in use\"); "
      "make one Session per thread, sharing the Model. The GIL is released while it runs.")
      .def(
          "__init__",
          [](PySession* self, const ModelHandle& model, int threads, const std::string& device,
             const std::string& precision, size_t max_memory_bytes, bool pack_weights,
             bool defer_packing, bool profile) {
            SessionOptions o = session_options(threads, device, precision, max_memory_bytes,
                                               pack_weights, defer_packing);
            o.profile = profile;
            nb::gil_scoped_release unlocked;
            new (self) PySession(model, o);
          },
          nb::arg("model"), nb::kw_only(), nb::arg("threads") = 0, nb::arg("device") = "cpu",
          nb::arg("precision") = "fp32", nb::arg("max_memory_bytes") = 0,
          nb::arg("pack_weights") = true, nb::arg("defer_packing") = false,
          nb::arg("profile") = false,
          "threads: per run (0: all cores; on cuda, the host threads that stage the input and "
          "outputs). device: \"cpu\" or \"cuda\". precision: \"fp32\", "
          "\"bf16\" (CPUs with AVX512_BF16 or AMX; CUDA) or \"fp16\" (CUDA). "
          "max_memory_bytes: most activation memory one input shape may plan (0: the "
          "device's). " RAVLT_PACK_WEIGHTS_DOC
          "profile: time every op of every run (a clock read per op; see profile()). "
          "Raises ravlt.Error when the device or precision cannot run here, or for options that "
          "do not go together.")
      .def(
          "run",
          [](PySession& s, nb::handle x) {
            const std::vector<std::string> first = {s.model->output_names().front()};
            return run_outputs(s, x, first).front().second.to_numpy();
          },
          nb::arg("x").none(),
          nb::sig(
              "def run(self, x: numpy.typing.ArrayLike) -> numpy.typing.NDArray[numpy.float32]"),
          "Runs the network on x, a 4-D NCHW array (N, 3, H, W) of any batch and size, and "
          "returns the model's first output (a classifier's logits (N, classes), a backbone's "
          "stage1 map) as a new float32 array. A C-contiguous float32 array is read in place; "
          "float64, float16 and integer arrays are converted once; another dtype, rank or "
          "channel count raises ravlt.Error.")
      .def(
          "run_all",
          [](PySession& s, nb::handle x, const std::optional<std::vector<std::string>>& select) {
            nb::dict d;
            for (auto& [name, buffer] : run_outputs(s, x, select_list(select))) {
              d[name.c_str()] = buffer.to_numpy();
            }
            return d;
          },
          nb::arg("x").none(), nb::arg("select") = nb::none(),
          nb::sig("def run_all(self, x: numpy.typing.ArrayLike, select: "
                  "collections.abc.Sequence[str] | "
                  "None = None) -> dict[str, numpy.typing.NDArray[numpy.float32]]"),
          "Runs the network and returns {name: array} for every output (Model.outputs), or "
          "those named in select (only what they need is computed). Raises ravlt.Error naming "
          "an output the model lacks.")
      .def(
          "output_shapes",
          [](PySession& s, std::vector<int64_t> shape,
             const std::optional<std::vector<std::string>>& select) {
            nb::dict d;
            for (const OutputShape& o : s.session.output_shapes(shape, select_list(select))) {
              nb::list dims;
              for (int64_t v : o.shape) dims.append(v);
              d[o.name.c_str()] = nb::tuple(dims);
            }
            return d;
          },
          nb::arg("input_shape"), nb::arg("select") = nb::none(),
          nb::sig("def output_shapes(self, input_shape: collections.abc.Sequence[int], select: "
                  "collections.abc.Sequence[str] | None = None) -> dict[str, tuple[int, ...]]"),
          "The shapes run_all would return for an input of input_shape (N, 3, H, W), without "
          "running anything.")
      .def(
          "plan",
          [](PySession& s, std::vector<int64_t> shape) {
            InUse in_use(s.busy, "Session");
            PlanMemory p;
            {
              nb::gil_scoped_release unlocked;
              p = s.session.plan(shape);
            }
            nb::dict d;
            d["arena_bytes"] = p.arena_bytes;
            d["activation_bytes"] = p.activation_bytes;
            d["scratch_bytes"] = p.scratch_bytes;
            d["lower_bound"] = p.lower_bound;
            d["output_bytes"] = p.output_bytes;
            d["image_by_image_ops"] = p.image_by_image_ops;
            return d;
          },
          nb::arg("input_shape"),
          nb::sig("def plan(self, input_shape: collections.abc.Sequence[int]) -> dict[str, int]"),
          "Prepares the kernels and memory for input_shape ahead of the first run (run does it "
          "on first sight otherwise) and returns the plan's memory in bytes.")
      .def(
          "profile",
          [](const PySession& s) {
            require_profile(s);
            return dict_list(s.session.profile(), [](nb::dict& d, const OpProfile& p) {
              d["op"] = p.op;
              d["seconds"] = p.seconds;
              d["nodes"] = p.nodes;
            });
          },
          nb::sig("def profile(self) -> list[dict[str, typing.Any]]"),
          "With profile=True: the time per op kind summed over the runs so far (runs counts "
          "them), largest first: [{\"op\": \"Linear\", \"seconds\": ..., \"nodes\": 42}, ...]; "
          "a fused chain is a kind of its own (\"Linear+Conv2d+Linear\": a whole FFN as one "
          "kernel). What `ravlt bench --profile` prints. Raises ravlt.Error without "
          "profile=True.")
      .def(
          "node_profile",
          [](const PySession& s) {
            require_profile(s);
            return dict_list(s.session.node_profile(), [](nb::dict& d, const NodeProfile& p) {
              d["name"] = p.name;
              d["op"] = p.op;
              d["seconds"] = p.seconds;
            });
          },
          nb::sig("def node_profile(self) -> list[dict[str, typing.Any]]"),
          "With profile=True: the time per node summed over the runs so far, in graph order: "
          "[{\"name\": ..., \"op\": ..., \"seconds\": ...}, ...] (a fused chain's time counts at "
          "its last node; Model.node_macs gives each node's work). Raises ravlt.Error without "
          "profile=True.")
      .def(
          "copy_profile",
          [](const PySession& s) {
            require_profile(s);
            const CopyProfile c = s.session.copy_profile();
            nb::dict d;
            d["input_seconds"] = c.input_seconds;
            d["output_seconds"] = c.output_seconds;
            return d;
          },
          nb::sig("def copy_profile(self) -> dict[str, float]"),
          "With profile=True: the time the runs so far spent staging the input in and the "
          "outputs out, apart from the nodes' (zero where the kernels read the input and write "
          "the outputs in place: the CPU in float32). Raises ravlt.Error without profile=True.")
      .def_prop_ro(
          "profiling", [](const PySession& s) { return s.options.profile; },
          "Whether the session times its ops (profile=True).")
      .def_prop_ro(
          "runs", [](const PySession& s) { return s.runs; },
          "The runs (run and run_all calls that returned) so far: what profile() sums over.")
      .def_prop_ro(
          "outputs", [](const PySession& s) { return s.model->output_names(); },
          "The model's named outputs, run's first.")
      .def_prop_ro(
          "threads", [](const PySession& s) { return s.options.threads; },
          "Threads per run (0: all cores).")
      .def_prop_ro("device",
                   [](const PySession& s) { return std::string(to_string(s.options.device)); })
      .def_prop_ro("precision",
                   [](const PySession& s) { return std::string(to_string(s.options.precision)); })
      .def_prop_ro(
          "pack_weights", [](const PySession& s) { return s.options.pack_weights; },
          "Whether the GEMMs read packed copies of the weights (see __init__).")
      .def_prop_ro(
          "defer_packing", [](const PySession& s) { return s.options.defer_packing; },
          "Whether the weights are packed after the first run rather than before it.")
      .def(
          "deferred_packing",
          [](PySession& s) {
            InUse in_use(s.busy, "Session");
            const DeferredPacking d = s.session.deferred_packing();
            nb::dict out;
            out["done"] = d.done;
            out["seconds"] = d.seconds;
            out["waited_seconds"] = d.waited_seconds;
            out["error"] = d.error;
            return out;
          },
          "The packing done after the first run (defer_packing), once a later call has waited "
          "for it: {'done': bool (False: none was deferred, or nothing has waited for it yet), "
          "'seconds': its time on the session's packing thread, 'waited_seconds': how long the "
          "next call waited, 'error': why it failed, the runs then reading the weights in place "
          "('' if it did not)}.")
      .def_prop_ro(
          "last_input_address", [](const PySession& s) { return s.last_input_address; },
          "The address of the float32 buffer the last run read: the input array's own data "
          "(numpy's x.ctypes.data) when it was read in place.");
}

}  // namespace ravlt::python
