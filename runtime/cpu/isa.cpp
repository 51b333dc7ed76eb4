#include "runtime/cpu/isa.h"

#include <atomic>
#include <string>

#include "ravlt/error.h"

namespace ravlt::runtime::cpu {
namespace {

std::atomic<int> forced{-1};

}  // namespace

Isa detected_isa() {
  static const Isa isa = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq")) {
      return Isa::kAvx512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::kAvx2;
    return Isa::kScalar;
  }();
  return isa;
}

Isa active_isa() {
  const int f = forced.load();
  return f < 0 ? detected_isa() : static_cast<Isa>(f);
}

void force_isa(Isa isa) {
  if (static_cast<int>(isa) > static_cast<int>(detected_isa())) {
    throw Error(std::string("this CPU does not support ") + isa_name(isa));
  }
  forced.store(static_cast<int>(isa));
}

void reset_isa() {
  forced.store(-1);
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "AVX2/FMA";
    case Isa::kAvx512:
      return "AVX-512";
  }
  return "unknown";
}

}  // namespace ravlt::runtime::cpu
