// The items Classifier.classify and .embed take (paths, encoded bytes,
// decoded uint8 arrays) as the engine's ImageInputs.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>  // every file: one std::string caster (ODR)

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "ravlt/classifier.h"

namespace ravlt::python {

namespace nb = nanobind;

/// ImageInputs for a list of Python items, with what they point into:
/// `bytes` objects are read in place (held in `keep`), other buffers and
/// arrays are copied. An item of another type becomes an error of its own
/// (in `errors`, that item's ImageInput left empty), not an exception.
struct ImageItems {
  std::vector<ImageInput> inputs;
  std::vector<std::string> errors;           ///< per item; empty: the item is in `inputs`
  std::vector<size_t> owners;                ///< the item index of each input
  std::deque<Image> images;                  ///< decoded arrays, copied
  std::deque<std::vector<uint8_t>> buffers;  ///< encoded buffers other than bytes
  std::vector<nb::object> keep;              ///< bytes objects read in place
};

/// Reads `items` (a list or other sequence, not a single str or bytes: that
/// is a ravlt::Error saying to pass a list). Errors name an item by its
/// path, else by `names` (one per item, when not None), else "item K".
/// Call with the GIL held.
ImageItems image_items(nb::handle items, nb::handle names);

/// One uint8 (H, W, 3) array as an Image; throws ravlt::Error naming its
/// shape or dtype otherwise.
Image image_from_array(nb::handle array);

}  // namespace ravlt::python
