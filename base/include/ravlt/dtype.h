// The element type: one enum for every layer, from the file format's
// tensors (formats/rvlt/rvlt.fbs's DType, checked against this by
// static_assert) to a session's precision (ravlt::Precision is this type).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ravlt {

/// Element types. The values are the on-disk ids of rvlt.fbs and never
/// change.
enum class DType : uint8_t { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2, kInt64 = 3 };
inline constexpr size_t kDTypeCount = 4;

/// Bytes per element (0 for a value outside the enum).
constexpr size_t dtype_size(DType t) {
  switch (t) {
    case DType::kFloat32:
      return 4;
    case DType::kFloat16:
    case DType::kBFloat16:
      return 2;
    case DType::kInt64:
      return 8;
  }
  return 0;
}

/// "float32", "float16", "bfloat16", "int64".
constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::kFloat32:
      return "float32";
    case DType::kFloat16:
      return "float16";
    case DType::kBFloat16:
      return "bfloat16";
    case DType::kInt64:
      return "int64";
  }
  return "unknown";
}

/// The short names of command lines and reports: "fp32", "fp16", "bf16",
/// "int64".
constexpr std::string_view dtype_short_name(DType t) {
  switch (t) {
    case DType::kFloat32:
      return "fp32";
    case DType::kFloat16:
      return "fp16";
    case DType::kBFloat16:
      return "bf16";
    case DType::kInt64:
      return "int64";
  }
  return "unknown";
}

}  // namespace ravlt
