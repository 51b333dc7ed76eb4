// .npz writing through libzip (the library that reads torch.save's zips).
#include "formats/npz.h"

#include <zip.h>

#include <cstdio>
#include <cstring>
#include <memory>

#include "formats/npy.h"
#include "ravlt/error.h"

namespace ravlt {

void write_npz(const std::string& path, const std::vector<NpzMember>& members) {
  const std::string temp = path + ".partial";
  int code = 0;
  zip_t* archive = zip_open(temp.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code);
  if (archive == nullptr) {
    zip_error_t error;
    zip_error_init_with_code(&error, code);
    const std::string why = zip_error_strerror(&error);
    zip_error_fini(&error);
    throw Error(path + ": cannot create: " + why);
  }
  auto fail = [&](const std::string& what) -> Error {
    const std::string why = zip_strerror(archive);
    zip_discard(archive);
    std::remove(temp.c_str());
    return Error(path + ": " + what + ": " + why);
  };
  // libzip reads the members' bytes when the archive is closed: they live
  // here until then.
  std::vector<std::unique_ptr<std::vector<uint8_t>>> bytes;
  for (const NpzMember& m : members) {
    uint64_t count = 1;
    for (int64_t d : m.shape) count *= static_cast<uint64_t>(d);
    const std::string header = npy_header(m.shape);
    auto buffer = std::make_unique<std::vector<uint8_t>>(header.size() + count * sizeof(float));
    std::memcpy(buffer->data(), header.data(), header.size());
    if (count > 0) std::memcpy(buffer->data() + header.size(), m.data, count * sizeof(float));
    zip_source_t* source = zip_source_buffer(archive, buffer->data(), buffer->size(), 0);
    if (source == nullptr) throw fail("cannot add " + m.name);
    const zip_int64_t index =
        zip_file_add(archive, (m.name + ".npy").c_str(), source, ZIP_FL_ENC_UTF_8);
    if (index < 0) {
      zip_source_free(source);
      throw fail("cannot add " + m.name);
    }
    if (zip_set_file_compression(archive, static_cast<zip_uint64_t>(index), ZIP_CM_STORE, 0) != 0) {
      throw fail("cannot store " + m.name);
    }
    bytes.push_back(std::move(buffer));
  }
  if (zip_close(archive) != 0) throw fail("write failed");
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    std::remove(temp.c_str());
    throw Error(path + ": cannot move the written file into place");
  }
}

}  // namespace ravlt
