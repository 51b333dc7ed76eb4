// Tensors to and from NumPy .npy files (float32, C order).
#pragma once

#include <string>

#include "ravlt/model.h"

#include "ravlt/export.h"

namespace ravlt {

/// Reads a float32 .npy file. Throws ravlt::Error naming the file and the
/// problem (not .npy, another dtype, Fortran order, truncated).
RAVLT_API Tensor load_npy(const std::string& path);

/// Writes `tensor` as a float32 .npy file.
RAVLT_API void save_npy(const std::string& path, const Tensor& tensor);

}  // namespace ravlt
