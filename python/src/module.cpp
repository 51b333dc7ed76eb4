// The extension module ravlt._ravlt: the error type, version, devices, and
// the registration of each binding file. python/ravlt/__init__.py re-exports
// it as the package `ravlt`.
#include <nanobind/stl/string.h>

#include "python/src/bindings.h"
#include "ravlt/error.h"

namespace ravlt::python {
namespace {

// ravlt.Error, held by the module (a borrowed handle: no reference is
// dropped after the interpreter has shut down).
nb::handle& error_type() {
  static nb::handle type;
  return type;
}

}  // namespace

nb::object make_error(const std::string& message) {
  return error_type()(message);
}

Device parse_device(const std::string& text) {
  if (text == "cpu") return Device::kCpu;
  if (text == "cuda") return Device::kCuda;
  throw Error("device \"" + text + "\": expected \"cpu\" or \"cuda\"");
}

Precision parse_precision(const std::string& text) {
  if (text == "fp32" || text == "float32") return Precision::kFloat32;
  if (text == "bf16" || text == "bfloat16") return Precision::kBFloat16;
  if (text == "fp16" || text == "float16") return Precision::kFloat16;
  throw Error("precision \"" + text + "\": expected \"fp32\", \"bf16\" or \"fp16\"");
}

SessionOptions session_options(int threads, const std::string& device, const std::string& precision,
                               size_t max_memory_bytes, bool pack_weights, bool defer_packing) {
  if (threads < 0) throw Error("threads must not be negative (0: all cores)");
  SessionOptions o;
  o.threads = threads;
  o.device = parse_device(device);
  o.precision = parse_precision(precision);
  o.max_memory_bytes = max_memory_bytes;
  o.pack_weights = pack_weights;
  o.defer_packing = defer_packing;
  return o;
}

InUse::InUse(std::atomic<bool>& busy, const char* what) : busy_(busy) {
  if (busy_.exchange(true, std::memory_order_acquire)) {
    throw Error(std::string(what) +
                " in use by another thread: it runs one call at a time; make one per thread "
                "(they may share one Model)");
  }
}

}  // namespace ravlt::python

NB_MODULE(_ravlt, m) {
  namespace nb = nanobind;
  using namespace ravlt::python;
  m.doc() = "RAVLT inference engine: load .rvlt models, run them on numpy arrays, classify images.";
  m.attr("__version__") = RAVLT_VERSION;
  // ravlt.Error: every failure the engine reports; str(e) is the one-line
  // message the command line prints.
  error_type() = nb::exception<ravlt::Error>(m, "Error", PyExc_RuntimeError);
  m.attr("Error").attr("__doc__") =
      "Raised for every failure the engine reports (bad files, shapes, options); str(e) is "
      "the one-line message the ravlt command line prints.";

  m.def(
      "device_available",
      [](const std::string& device) { return ravlt::device_available(parse_device(device)); },
      nb::arg("device"), "Whether `device` (\"cpu\" or \"cuda\") can run here.");
  m.def(
      "precision_available",
      [](const std::string& device, const std::string& precision) {
        return ravlt::precision_available(parse_device(device), parse_precision(precision));
      },
      nb::arg("device"), nb::arg("precision"),
      "Whether a Session on `device` can compute in `precision` (\"fp32\", \"bf16\", "
      "\"fp16\") here: the CPU runs fp32 always and bf16 with AVX512_BF16 or AMX-BF16.");
  m.def(
      "device_description",
      [](const std::string& device) { return ravlt::device_description(parse_device(device)); },
      nb::arg("device") = "cpu", "A line describing the device, e.g. \"cpu (2 cores)\".");

  bind_model(m);
  bind_session(m);
  bind_classifier(m);
  bind_convert(m);
  bind_image(m);
}
