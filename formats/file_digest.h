// SHA-256 of a whole file, recorded in a model file to identify its source.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace ravlt {

/// Lower-case hex SHA-256 of the file at `path`. `progress` (optional) is
/// called with (bytes hashed, total). Throws ravlt::Error on I/O failure.
std::string sha256_file_hex(const std::string& path,
                            const std::function<void(uint64_t, uint64_t)>& progress = {});

}  // namespace ravlt
