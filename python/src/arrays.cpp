#include "python/src/arrays.h"
#include "python/src/bindings.h"

#include <algorithm>
#include <string>

#include "ravlt/error.h"

namespace ravlt::python {
namespace {

std::string shape_text(const nb::ndarray<nb::ro>& a) {
  std::string s = "(";
  for (size_t i = 0; i < a.ndim(); ++i) {
    s += (i ? ", " : "") + std::to_string(a.shape(i));
  }
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// numpy's name of the dtype when it is a numpy array ("complex64"), else
// DLPack's code and bits.
std::string dtype_text(nb::handle x, const nb::ndarray<nb::ro>& a) {
  if (nb::hasattr(x, "dtype")) return text_of(x.attr("dtype"));
  return "code " + std::to_string(a.dtype().code) + " with " + std::to_string(a.dtype().bits) +
         " bits";
}

bool c_contiguous(const nb::ndarray<nb::ro>& a) {
  int64_t expected = 1;
  for (size_t i = a.ndim(); i-- > 0;) {
    if (a.shape(i) != 1 && a.stride(i) != expected) return false;
    expected *= static_cast<int64_t>(a.shape(i));
  }
  return true;
}

// The dtypes converted to float32: real floats and integers.
bool convertible(nb::dlpack::dtype t) {
  using Code = nb::dlpack::dtype_code;
  const auto code = static_cast<Code>(t.code);
  return t.lanes == 1 && (code == Code::Float || code == Code::Int || code == Code::UInt);
}

}  // namespace

InputArray input_array(nb::handle x, int channels) {
  nb::ndarray<nb::ro> a;
  nb::object source = nb::borrow(x);
  if (!nb::try_cast(source, a, false) && nb::hasattr(x, "dtype") && nb::hasattr(x, "shape")) {
    // An array DLPack cannot describe: numbers in a non-native byte order
    // are converted like any other dtype; strings, objects and the like are
    // named.
    const std::string kind = text_of(nb::getattr(x.attr("dtype"), "kind"));
    if (kind != "f" && kind != "i" && kind != "u") {
      throw Error("input: dtype " + text_of(x.attr("dtype")) +
                  " is not supported: pass float32 (float64, float16 and integer arrays are "
                  "converted to float32)");
    }
    nb::object np = nb::module_::import_("numpy");
    source = np.attr("ascontiguousarray")(x, nb::arg("dtype") = np.attr("float32"));
  }
  if (!a.is_valid() && !nb::try_cast(source, a, false)) {
    // Not an array (a list, a scalar): what numpy makes of it, if anything.
    nb::object np = nb::module_::import_("numpy");
    try {
      source = np.attr("asarray")(x);
    } catch (nb::python_error&) {
      source = nb::object();
    }
    if (!source.is_valid() || !nb::try_cast(source, a, false)) {
      throw Error("input: expected a numpy array (N, 3, H, W), got " +
                  text_of(nb::type_name(x.type())));
    }
  }
  if (a.device_type() != nb::device::cpu::value) {
    throw Error("input: the array is not in host memory (pass a CPU numpy array)");
  }
  if (a.ndim() != 4) {
    throw Error("input: expected a 4-D NCHW array (N, " + std::to_string(channels) +
                ", H, W), got " + std::to_string(a.ndim()) + "-D shape " + shape_text(a));
  }
  if (a.shape(1) != static_cast<size_t>(channels)) {
    throw Error("input: expected " + std::to_string(channels) + " channels (N, " +
                std::to_string(channels) + ", H, W), got shape " + shape_text(a));
  }
  const bool float32 = a.dtype() == nb::dtype<float>();
  if (!float32 && !convertible(a.dtype())) {
    throw Error("input: dtype " + dtype_text(source, a) +
                " is not supported: pass float32 (float64, float16 and integer arrays are "
                "converted to float32)");
  }
  if (!float32 || !c_contiguous(a)) {
    // One conversion, by numpy, into a C-ordered float32 array.
    nb::object np = nb::module_::import_("numpy");
    source = np.attr("ascontiguousarray")(source, nb::arg("dtype") = np.attr("float32"));
    if (!nb::try_cast(source, a, false)) throw Error("input: conversion to float32 failed");
  }
  InputArray in;
  in.data = static_cast<const float*>(a.data());
  for (size_t i = 0; i < 4; ++i) in.shape.push_back(static_cast<int64_t>(a.shape(i)));
  in.keep = std::move(source);
  return in;
}

OutputBuffer::OutputBuffer(std::span<const float> data, std::vector<int64_t> shape)
    : data_(new float[std::max<size_t>(data.size(), 1)]) {
  std::copy(data.begin(), data.end(), data_.get());
  for (int64_t d : shape) shape_.push_back(static_cast<size_t>(d));
}

nb::object OutputBuffer::to_numpy() {
  float* raw = data_.release();
  nb::capsule owner(raw, [](void* p) noexcept { delete[] static_cast<float*>(p); });
  return nb::cast(nb::ndarray<nb::numpy, float>(raw, shape_.size(), shape_.data(), owner));
}

}  // namespace ravlt::python
