// Fuzzes the restricted unpickler alone, persistent ids resolved to inert
// storages: any input is either refused with ravlt::Error or parsed.
#include "formats/torch/pickle.h"
#include "ravlt/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ravlt::torch::ValueArena arena;
  try {
    ravlt::torch::Unpickler unpickler(
        std::span<const uint8_t>(data, size), arena,
        [&](const ravlt::torch::Value&) -> ravlt::torch::Value* {
          throw ravlt::Error("persistent ids are not resolved here");
        },
        "fuzz");
    while (unpickler.position() < size) unpickler.load();
  } catch (const ravlt::Error&) {
  }
  return 0;
}
