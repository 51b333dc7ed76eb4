// numpy in and out: the network's input read in place when it is C-ordered
// float32 (converted once otherwise), outputs as new float32 arrays.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>  // every file: one std::string caster (ODR)

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace ravlt::python {

namespace nb = nanobind;

/// A float32 NCHW input as the engine reads it. `keep` holds whatever owns
/// `data` (the caller's array itself when it was read in place).
struct InputArray {
  const float* data = nullptr;
  std::vector<int64_t> shape;
  nb::object keep;
};

/// Checks `x` (rank 4, `channels` channels, a real or integer dtype, on the
/// CPU) and returns its data as float32: the array's own buffer when it is
/// C-contiguous float32, else a float32 copy made once. Throws ravlt::Error
/// naming the shape or dtype at fault.
InputArray input_array(nb::handle x, int channels);

/// A float32 buffer filled without the GIL, then handed to numpy.
class OutputBuffer {
 public:
  OutputBuffer(std::span<const float> data, std::vector<int64_t> shape);
  /// A numpy array owning the buffer (call with the GIL held, once).
  nb::object to_numpy();

 private:
  std::unique_ptr<float[]> data_;
  std::vector<size_t> shape_;
};

}  // namespace ravlt::python
