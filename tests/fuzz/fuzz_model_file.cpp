// Fuzzes the .rvlt loader: framing, FlatBuffers verifier, semantic checks,
// graph loading; an accepted model is then run on a tiny input (every
// output), which must finish or fail with ravlt::Error. (With RAVLT_FUZZING the checksum is not
// verified, so mutations reach the parsers behind it.)
#include <atomic>
#include <cstdio>

#include "ravlt/error.h"
#include "ravlt/model.h"
#include "tests/fuzz/fuzz_input_file.h"

static std::atomic<uint64_t> accepted{0}, executions{0};

static void report() {
  std::fprintf(stderr, "fuzz_model_file: %llu of %llu inputs passed every check and ran\n",
               static_cast<unsigned long long>(accepted.load()),
               static_cast<unsigned long long>(executions.load()));
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ravlt::fuzz::InputFile file;
  static const bool registered = (std::atexit(report), true);
  (void)registered;
  ++executions;
  try {
    ravlt::LoadOptions load;
    load.verify_checksum = false;
    const auto model = ravlt::Model::load(file.write(data, size), load);
    ravlt::Session session(model, ravlt::SessionOptions{1});
    ravlt::Tensor x{{1, 3, 9, 7}, std::vector<float>(3 * 9 * 7, 0.5f)};
    const std::vector<ravlt::Output> outputs = session.run_all(x.data.data(), x.shape);
    if (outputs.size() != model->output_names().size()) __builtin_trap();
    for (const ravlt::Output& o : outputs) {
      size_t count = 1;
      for (int64_t d : o.shape) count *= static_cast<size_t>(d);
      if (o.data.size() != count) __builtin_trap();
    }
    if (model->kind() == ravlt::ModelKind::kClassifier &&
        outputs[0].data.size() != static_cast<size_t>(model->num_classes())) {
      __builtin_trap();
    }
    ++accepted;
  } catch (const ravlt::Error&) {
  }
  return 0;
}
