// Fuzzes the .npy reader.
#include "ravlt/error.h"
#include "ravlt/tensor_io.h"
#include "tests/fuzz/fuzz_input_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ravlt::fuzz::InputFile file;
  try {
    const ravlt::Tensor t = ravlt::load_npy(file.write(data, size));
    size_t n = 1;
    for (int64_t d : t.shape) n *= static_cast<size_t>(d);
    if (n != t.data.size()) __builtin_trap();
  } catch (const ravlt::Error&) {
  }
  return 0;
}
