// Writer of .rvlt files: see rvlt.fbs for the layout.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "formats/checksummed_file_writer.h"
#include "formats/rvlt/model_file.h"
#include "ravlt/error.h"

namespace ravlt::rvlt {
namespace {

uint64_t align_up(uint64_t n) {
  return (n + kDataAlignment - 1) / kDataAlignment * kDataAlignment;
}

}  // namespace

uint64_t file_checksum(std::span<const uint8_t> bytes, uint16_t major) {
  return checksum_of(bytes, checksum_scheme(major));
}

void write_model_file(const std::string& path, fb::ModelT& model,
                      const std::vector<std::vector<uint8_t>>& constant_bytes,
                      const ProgressFn& progress) {
  if (!model.graph) throw Error("write_model_file: model has no graph");
  auto& tensors = model.graph->tensors;
  if (constant_bytes.size() != tensors.size()) {
    throw Error("write_model_file: constant_bytes has " + std::to_string(constant_bytes.size()) +
                " entries for " + std::to_string(tensors.size()) + " tensors");
  }
  // Place every constant at the next aligned offset of the data section.
  uint64_t data_size = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    auto& t = *tensors[i];
    if (t.constant) {
      data_size = align_up(data_size);
      t.data_offset = data_size;
      t.data_length = constant_bytes[i].size();
      data_size += t.data_length;
    } else {
      t.data_offset = 0;
      t.data_length = 0;
    }
  }
  data_size = align_up(data_size);
  model.data_size = data_size;
  model.format_major = kFormatMajor;
  model.format_minor = kFormatMinor;

  flatbuffers::FlatBufferBuilder builder(1 << 16);
  builder.FinishSizePrefixed(fb::Model::Pack(builder, &model), fb::ModelIdentifier());

  ChecksummedFileWriter out(path, checksum_scheme(kFormatMajor));
  out.write(builder.GetBufferPointer(), builder.GetSize());
  const uint64_t data_start = align_up(out.position());
  out.pad_to(data_start);
  const uint64_t total = data_start + data_size;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!tensors[i]->constant) continue;
    out.pad_to(data_start + tensors[i]->data_offset);
    out.write(constant_bytes[i].data(), constant_bytes[i].size());
    if (progress) progress(out.position(), total);
  }
  out.pad_to(total);
  out.commit(kFooterMagic);
}

}  // namespace ravlt::rvlt
