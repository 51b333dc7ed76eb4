#include "runtime/cpu/isa.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "ravlt/error.h"

namespace ravlt::runtime::cpu {
namespace {

std::atomic<int> forced{-1};

Isa cpu_isa() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq")) {
    return Isa::kAvx512;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::kAvx2;
  return Isa::kScalar;
}

// RAVLT_MAX_CPU_ISA, as oneDNN's DNNL_MAX_CPU_ISA: run this CPU as an older
// one (benchmarks of the narrower paths). Read once; a value not among the
// names is an error rather than silently ignored.
Isa isa_cap() {
  const char* value = std::getenv("RAVLT_MAX_CPU_ISA");
  if (value == nullptr || *value == '\0') return Isa::kAvx512;
  const std::string v(value);
  if (v == "scalar" || v == "SCALAR") return Isa::kScalar;
  if (v == "avx2" || v == "AVX2") return Isa::kAvx2;
  if (v == "avx512" || v == "AVX512") return Isa::kAvx512;
  throw Error("RAVLT_MAX_CPU_ISA is '" + v + "': use scalar, avx2 or avx512");
}

}  // namespace

Isa detected_isa() {
  static const Isa isa = [] {
    const Isa cpu = cpu_isa(), cap = isa_cap();
    return static_cast<int>(cap) < static_cast<int>(cpu) ? cap : cpu;
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

bool bf16_dot_outruns_fma() {
  __builtin_cpu_init();
  return __builtin_cpu_is("amd") && __builtin_cpu_supports("avx512bf16");
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
