// Fuzzes the torch.save reader (zip and legacy containers, the unpickler,
// the state-dict extraction, mmcv's meta) and the converter's checks behind it: any
// input is either refused with ravlt::Error or yields a state dict whose
// tensors all read back.
#include "formats/torch/checkpoint.h"
#include "formats/torch/state_dict.h"
#include "ravlt/error.h"
#include "tests/fuzz/fuzz_input_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ravlt::fuzz::InputFile file;
  const std::string& path = file.write(data, size);
  try {
    const auto checkpoint = ravlt::torch::Checkpoint::open(path);
    const ravlt::torch::MmcvMeta meta = ravlt::torch::read_mmcv_meta(*checkpoint);
    for (const std::string& name : meta.classes) {
      if (name.size() > size) __builtin_trap();  // a name comes from the input's bytes
    }
    const ravlt::torch::StateDict sd = ravlt::torch::extract_state_dict(*checkpoint);
    for (const ravlt::torch::NamedTensor& t : sd.tensors) {
      const std::vector<float> values = checkpoint->to_float32(*t.tensor);
      if (values.size() != t.tensor->numel()) __builtin_trap();
    }
  } catch (const ravlt::Error&) {
  }
  return 0;
}
