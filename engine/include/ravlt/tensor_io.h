// Tensors to and from NumPy .npy files (float32, C order), and a run's
// named outputs to a .npz archive.
#pragma once

#include <string>
#include <vector>

#include "ravlt/model.h"

#include "ravlt/export.h"

namespace ravlt {

/// Reads a float32 .npy file. Throws ravlt::Error naming the file and the
/// problem (not .npy, another dtype, Fortran order, truncated).
RAVLT_API Tensor load_npy(const std::string& path);

/// Writes `tensor` as a float32 .npy file.
RAVLT_API void save_npy(const std::string& path, const Tensor& tensor);

/// Writes `outputs` (Session::run_all) as a .npz archive, one float32
/// array per output named by it, as numpy.savez does: numpy.load(path)
/// gives {"stage1": ..., "stage2": ...}. Written atomically.
RAVLT_API void save_npz(const std::string& path, const std::vector<Output>& outputs);

}  // namespace ravlt
