#include "python/src/image_items.h"
#include "python/src/bindings.h"

#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstring>

#include "ravlt/error.h"

namespace ravlt::python {
namespace {

std::string type_of(nb::handle x) {
  return text_of(nb::type_name(x.type()));
}

bool is_path(nb::handle x) {
  return nb::isinstance<nb::str>(x) || nb::hasattr(x, "__fspath__");
}

}  // namespace

Image image_from_array(nb::handle array) {
  nb::ndarray<nb::ro> a;
  if (!nb::try_cast(nb::borrow(array), a, false)) {
    throw Error("expected a uint8 array (H, W, 3), got " + type_of(array));
  }
  if (a.dtype() != nb::dtype<uint8_t>() || a.ndim() != 3 || a.shape(2) != 3 ||
      a.device_type() != nb::device::cpu::value) {
    std::string shape;
    for (size_t i = 0; i < a.ndim(); ++i) shape += (i ? ", " : "") + std::to_string(a.shape(i));
    const std::string dtype =
        nb::hasattr(array, "dtype") ? text_of(array.attr("dtype")) : std::string("?");
    throw Error("expected a uint8 RGB array (H, W, 3), got " + dtype + " (" + shape + ")");
  }
  Image im;
  im.height = static_cast<int>(a.shape(0));
  im.width = static_cast<int>(a.shape(1));
  im.rgb.resize(a.shape(0) * a.shape(1) * 3);
  const auto* base = static_cast<const uint8_t*>(a.data());
  size_t k = 0;
  for (size_t y = 0; y < a.shape(0); ++y) {
    for (size_t x = 0; x < a.shape(1); ++x) {
      for (size_t c = 0; c < 3; ++c) {
        im.rgb[k++] =
            base[static_cast<int64_t>(y) * a.stride(0) + static_cast<int64_t>(x) * a.stride(1) +
                 static_cast<int64_t>(c) * a.stride(2)];
      }
    }
  }
  return im;
}

ImageItems image_items(nb::handle items, nb::handle names) {
  if (is_path(items) || nb::isinstance<nb::bytes>(items) || nb::hasattr(items, "__array__")) {
    throw Error(
        "expected a list of images (paths, encoded bytes or uint8 (H, W, 3) arrays), got one " +
        type_of(items) + ": pass [item]");
  }
  if (!nb::hasattr(items, "__iter__")) {
    throw Error("expected a list of images (paths, encoded bytes or uint8 (H, W, 3) arrays), got " +
                type_of(items));
  }
  std::vector<std::string> given;
  if (!names.is_none()) {
    if (!nb::try_cast(names, given) || nb::isinstance<nb::str>(names)) {
      throw Error("names: expected a list of str, one per item, got " + type_of(names));
    }
  }
  ImageItems out;
  nb::object os = nb::module_::import_("os");
  size_t index = 0;
  for (nb::handle item : items) {
    const std::string name = index < given.size() ? given[index] : "item " + std::to_string(index);
    out.errors.emplace_back();
    try {
      if (is_path(item)) {
        out.inputs.push_back(ImageInput::file(nb::cast<std::string>(os.attr("fspath")(item))));
      } else if (nb::isinstance<nb::bytes>(item)) {
        // bytes are immutable: read in place while the engine runs.
        nb::bytes b = nb::borrow<nb::bytes>(item);
        out.inputs.push_back(ImageInput::from_encoded(
            {reinterpret_cast<const uint8_t*>(b.c_str()), b.size()}, name));
        out.keep.push_back(std::move(b));
      } else if (nb::isinstance<nb::bytearray>(item) || nb::isinstance<nb::memoryview>(item)) {
        // Mutable buffers: copied, so that another thread cannot change
        // them under the decoder.
        nb::bytes b(nb::module_::import_("builtins").attr("bytes")(item));
        out.buffers.emplace_back(reinterpret_cast<const uint8_t*>(b.c_str()),
                                 reinterpret_cast<const uint8_t*>(b.c_str()) + b.size());
        out.inputs.push_back(ImageInput::from_encoded(out.buffers.back(), name));
      } else if (nb::hasattr(item, "__array__") || nb::hasattr(item, "__dlpack__")) {
        out.images.push_back(image_from_array(item));
        out.inputs.push_back(ImageInput::from_image(out.images.back(), name));
      } else {
        throw Error("expected a path, encoded bytes or a uint8 (H, W, 3) array, got " +
                    type_of(item));
      }
      out.owners.push_back(index);
    } catch (const Error& e) {
      out.errors.back() = name + ": " + e.what();
    }
    ++index;
  }
  if (!names.is_none() && given.size() != index) {
    throw Error("names: " + std::to_string(given.size()) + " names for " + std::to_string(index) +
                " items");
  }
  return out;
}

}  // namespace ravlt::python
