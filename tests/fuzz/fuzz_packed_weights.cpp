// Fuzzes the packed-weight file reader (the checksum is skipped in a
// fuzzing build; the model and build identities are taken from the input's
// own header, so that mutations reach the entry checks). Every byte of
// every weight it accepts is read, so that AddressSanitizer sees any that
// lies outside the mapping.
#include "ravlt/error.h"
#include "runtime/cpu/packed_weight_file.h"
#include "tests/fuzz/fuzz_input_file.h"

namespace {

uint64_t header_u64(const uint8_t* data, size_t size, size_t at) {
  uint64_t v = 0;
  for (size_t b = 0; b < 8 && at + b < size; ++b) v |= uint64_t{data[at + b]} << (8 * b);
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ravlt::fuzz::InputFile file;
  try {
    const auto packed = ravlt::runtime::cpu::PackedWeightFile::open(
        file.write(data, size), header_u64(data, size, 16), header_u64(data, size, 24));
    volatile uint8_t sum = 0;
    for (const auto& w : packed.weights()) {
      for (uint8_t b : w.bytes) sum = static_cast<uint8_t>(sum + b);
    }
  } catch (const ravlt::Error&) {
  }
  return 0;
}
