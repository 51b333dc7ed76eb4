#include "formats/npy.h"

#include <cstring>
#include <fstream>

#include "formats/mapped_file.h"
#include "ravlt/error.h"

namespace ravlt {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMaxHeader = 1 << 16;
constexpr int kMaxRank = 8;

// The value text after 'key': in the header dict, or throws.
std::string field(const std::string& header, const std::string& key, const std::string& path) {
  const size_t k = header.find("'" + key + "'");
  if (k == std::string::npos) throw Error(path + ": .npy header has no '" + key + "'");
  size_t p = header.find(':', k);
  if (p == std::string::npos) throw Error(path + ": malformed .npy header");
  ++p;
  while (p < header.size() && header[p] == ' ') ++p;
  if (p < header.size() && header[p] == '(') {
    const size_t end = header.find(')', p);
    if (end == std::string::npos) throw Error(path + ": malformed shape in .npy header");
    return header.substr(p, end - p + 1);
  }
  const size_t end = header.find_first_of(",}", p);
  return header.substr(p, end == std::string::npos ? std::string::npos : end - p);
}

}  // namespace

NpyArray read_npy(const std::string& path) {
  const MappedFile file(path);
  const uint8_t* b = file.data();
  const size_t size = file.size();
  if (size < 10 || std::memcmp(b, kMagic, 6) != 0) throw Error(path + ": not a .npy file");
  const int major = b[6];
  size_t header_len, offset;
  if (major == 1) {
    header_len = b[8] | size_t{b[9]} << 8;
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) throw Error(path + ": truncated .npy header");
    header_len = b[8] | size_t{b[9]} << 8 | size_t{b[10]} << 16 | size_t{b[11]} << 24;
    offset = 12;
  } else {
    throw Error(path + ": unsupported .npy version " + std::to_string(major));
  }
  if (header_len > kMaxHeader || header_len > size - offset)
    throw Error(path + ": truncated .npy header");
  const std::string header(reinterpret_cast<const char*>(b + offset), header_len);
  const std::string descr = field(header, "descr", path);
  if (descr != "'<f4'") {
    throw Error(path + ": array type " + descr +
                " is not float32 ('<f4'); convert with "
                "x.astype(numpy.float32)");
  }
  if (field(header, "fortran_order", path) != "False") {
    throw Error(path + ": Fortran-order arrays are not supported; save numpy.ascontiguousarray(x)");
  }
  const std::string shape_text = field(header, "shape", path);
  NpyArray array;
  uint64_t count = 1;
  for (size_t p = 1; p < shape_text.size();) {
    while (p < shape_text.size() && (shape_text[p] == ' ' || shape_text[p] == ',')) ++p;
    if (p >= shape_text.size() || shape_text[p] == ')') break;
    size_t used = 0;
    long long dim = 0;
    try {
      dim = std::stoll(shape_text.substr(p), &used);
    } catch (const std::exception&) {
      throw Error(path + ": malformed shape " + shape_text);
    }
    if (dim < 0 || dim > (int64_t{1} << 40) || array.shape.size() >= kMaxRank) {
      throw Error(path + ": unsupported shape " + shape_text);
    }
    array.shape.push_back(dim);
    if (dim != 0 && count > (uint64_t{1} << 40) / static_cast<uint64_t>(dim)) {
      throw Error(path + ": shape " + shape_text + " is too large");
    }
    count *= static_cast<uint64_t>(dim);
    p += used;
  }
  const size_t data_offset = offset + header_len;
  if (size - data_offset != count * sizeof(float)) {
    throw Error(path + ": holds " + std::to_string(size - data_offset) + " bytes of data, shape " +
                shape_text + " needs " + std::to_string(count * sizeof(float)));
  }
  array.data.resize(count);
  // (An empty array has no buffer: memcpy must not see its null pointer.)
  if (count > 0) std::memcpy(array.data.data(), b + data_offset, count * sizeof(float));
  return array;
}

std::string npy_header(const std::vector<int64_t>& shape) {
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i) dims += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) dims += ",";  // Python's one-element tuple
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Pad with spaces so that the data starts at a multiple of 64, then '\n'.
  const size_t total = (10 + header.size() + 1 + 63) / 64 * 64;
  header.append(total - 10 - header.size() - 1, ' ');
  header += '\n';
  const uint16_t len = static_cast<uint16_t>(header.size());
  const char preamble[10] = {kMagic[0],
                             kMagic[1],
                             kMagic[2],
                             kMagic[3],
                             kMagic[4],
                             kMagic[5],
                             1,
                             0,
                             static_cast<char>(len & 0xff),
                             static_cast<char>(len >> 8)};
  return std::string(preamble, 10) + header;
}

void write_npy(const std::string& path, const std::vector<int64_t>& shape, const float* data) {
  uint64_t count = 1;
  for (int64_t d : shape) count *= static_cast<uint64_t>(d);
  const std::string header = npy_header(shape);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(path + ": cannot create");
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(reinterpret_cast<const char*>(data),
            static_cast<std::streamsize>(count * sizeof(float)));
  if (!out) throw Error(path + ": write failed");
}

}  // namespace ravlt
