// Shared pieces of the Python bindings: the registration functions of each
// file, the Model handle every binding holds, the one-call-at-a-time guard,
// and the parsing of the option strings Python callers pass.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>  // every file: one std::string caster (ODR)

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "ravlt/model.h"
#include "ravlt/model_info.h"

namespace ravlt::python {

namespace nb = nanobind;

void bind_model(nb::module_& m);
void bind_session(nb::module_& m);
void bind_classifier(nb::module_& m);
void bind_convert(nb::module_& m);
void bind_image(nb::module_& m);

/// The Python `ravlt.Model`: a loaded model and its description (read once
/// at load, so that every property is a plain read of immutable data).
struct ModelHandle {
  std::shared_ptr<const Model> model;
  ModelInfo info;
};

/// A `ravlt.Error` carrying `message` (an instance, not raised: per-item
/// results hold one).
nb::object make_error(const std::string& message);

/// str(x) (an attribute read, a type name) as text for messages.
inline std::string text_of(const nb::object& x) {
  return nb::cast<std::string>(nb::str(nb::handle(x)));
}

/// Parses "cpu" / "cuda" and "fp32" / "bf16" / "fp16" (also "float32",
/// "bfloat16", "float16"). Throws ravlt::Error naming what is accepted.
Device parse_device(const std::string& text);
Precision parse_precision(const std::string& text);

/// SessionOptions from the keyword arguments Session and Classifier share.
SessionOptions session_options(int threads, const std::string& device, const std::string& precision,
                               size_t max_memory_bytes, bool pack_weights, bool defer_packing);

/// The docstring of the pack_weights argument Session and Classifier share
/// (a macro, so that each docstring stays one string literal).
#define RAVLT_PACK_WEIGHTS_DOC                                                               \
  "pack_weights: False runs the float32 GEMMs on the weights where the model file stores "   \
  "them instead of packed copies (the first run ready sooner, each run about 3-7% "          \
  "slower; for a process that runs a model a few times; cpu and fp32 only). "                \
  "defer_packing: True (with pack_weights): the first run reads the weights in place and a " \
  "thread of the session packs them as it returns, so that the first result comes sooner "   \
  "(the next call waits for that if needed: see deferred_packing()); for a server or a "     \
  "single run, not for runs in a tight loop. False (the default) packs before the first run. "

/// A list of dicts, one per item, each filled by `fill(dict, item)`: how the
/// engine's per-node and per-op records reach Python.
template <class T, class Fill>
nb::list dict_list(const std::vector<T>& items, Fill fill) {
  nb::list out;
  for (const T& item : items) {
    nb::dict d;
    fill(d, item);
    out.append(d);
  }
  return out;
}

/// Marks an object that runs one call at a time (a Session, a Classifier)
/// as in use for a scope; a second caller at the same time gets a
/// ravlt::Error instead of a data race.
class InUse {
 public:
  InUse(std::atomic<bool>& busy, const char* what);
  ~InUse() { busy_.store(false, std::memory_order_release); }
  InUse(const InUse&) = delete;
  InUse& operator=(const InUse&) = delete;

 private:
  std::atomic<bool>& busy_;
};

}  // namespace ravlt::python
