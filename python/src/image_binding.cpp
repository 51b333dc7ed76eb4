// ravlt.load_image: an image file or encoded bytes decoded as the engine
// decodes them (Pillow's RGB conversion), as a uint8 (H, W, 3) array.
#include <nanobind/ndarray.h>

#include <vector>

#include "python/src/bindings.h"
#include "ravlt/error.h"
#include "ravlt/image.h"

namespace ravlt::python {

void bind_image(nb::module_& m) {
  m.def(
      "load_image",
      [](nb::handle source) {
        auto* image = new Image;
        try {
          if (nb::isinstance<nb::bytes>(source)) {
            nb::bytes b = nb::borrow<nb::bytes>(source);
            const std::span<const uint8_t> encoded(reinterpret_cast<const uint8_t*>(b.c_str()),
                                                   b.size());
            nb::gil_scoped_release unlocked;
            *image = decode_image(encoded);
          } else if (nb::isinstance<nb::str>(source) || nb::hasattr(source, "__fspath__")) {
            const auto path =
                nb::cast<std::string>(nb::module_::import_("os").attr("fspath")(source));
            nb::gil_scoped_release unlocked;
            *image = load_image(path);
          } else {
            throw Error("load_image: expected a path or encoded bytes, got " +
                        text_of(nb::type_name(source.type())));
          }
        } catch (...) {
          delete image;
          throw;
        }
        nb::capsule owner(image, [](void* p) noexcept { delete static_cast<Image*>(p); });
        const size_t shape[3] = {static_cast<size_t>(image->height),
                                 static_cast<size_t>(image->width), 3};
        return nb::ndarray<nb::numpy, uint8_t>(image->rgb.data(), 3, shape, owner);
      },
      nb::arg("source"),
      nb::sig(
          "def load_image(source: str | os.PathLike | bytes) -> numpy.typing.NDArray[numpy.uint8]"),
      "Decodes an image file (a path) or encoded bytes (JPEG, PNG, BMP) to RGB as the "
      "engine does (Pillow's convert(\"RGB\")): a uint8 array (H, W, 3). Raises ravlt.Error "
      "naming the file and the problem.");
}

}  // namespace ravlt::python
