// Helpers shared by the CPU backend's tests.
#pragma once

#include <doctest/doctest.h>

#include <memory>
#include <vector>

#include "runtime/cpu/cpu_backend.h"
#include "runtime/cpu/isa.h"

namespace ravlt::test {

/// The instruction-set paths this CPU can run, narrowest first; says which
/// it skips.
inline std::vector<runtime::cpu::Isa> isas_present() {
  using runtime::cpu::Isa;
  std::vector<Isa> out;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (static_cast<int>(isa) <= static_cast<int>(runtime::cpu::detected_isa())) {
      out.push_back(isa);
    } else {
      MESSAGE("skipped: this CPU has no " << runtime::cpu::isa_name(isa) << " path");
    }
  }
  return out;
}

/// A CPU backend of its own weight cache, fusing chains or not.
inline std::unique_ptr<runtime::cpu::CpuBackend> cpu_backend(int threads, bool fusing) {
  auto b = std::make_unique<runtime::cpu::CpuBackend>(std::make_shared<runtime::cpu::WeightCache>(),
                                                      threads);
  b->set_fusing(fusing);
  return b;
}

}  // namespace ravlt::test
