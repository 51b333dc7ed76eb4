#include <doctest/doctest.h>

#include <random>

#include "runtime/memory_planner.h"

using namespace ravlt::runtime;

TEST_CASE("a chain reuses memory: arena equals the lower bound") {
  // a -> b -> c -> d, each read only by the next step
  const std::vector<BufferRequest> chain = {{1000, 0, 1}, {2000, 1, 2}, {1000, 2, 3}, {2000, 3, 4}};
  const MemoryPlan plan = plan_memory(chain, 64);
  CHECK(plan.lower_bound == 3000);
  CHECK(plan.arena_bytes == 1024 + 2048);
}

TEST_CASE("a buffer goes where bytes were read most recently, in the same arena") {
  // a and b are live together; a is last read at step 1, b at step 2. c,
  // written at step 3, fits in either place: b's bytes are the warmer ones
  // (best fit alone would take a's, the first of two equal gaps).
  const std::vector<BufferRequest> requests = {{1000, 0, 1}, {1000, 0, 2}, {1000, 3, 4}};
  const MemoryPlan plan = plan_memory(requests, 64);
  CHECK(plan.arena_bytes == 2048);
  CHECK(plan.offsets[0] != plan.offsets[1]);
  CHECK(plan.offsets[2] == plan.offsets[1]);
  // A smaller buffer lands inside the warm bytes.
  const std::vector<BufferRequest> smaller = {{1000, 0, 1}, {1000, 0, 2}, {300, 3, 4}};
  const MemoryPlan p2 = plan_memory(smaller, 64);
  CHECK(p2.arena_bytes == 2048);
  const bool inside = p2.offsets[2] >= p2.offsets[1] && p2.offsets[2] + 320 <= p2.offsets[1] + 1024;
  CHECK(inside);
}

TEST_CASE("buffers alive at the same step never overlap; the arena is near the bound") {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<BufferRequest> requests;
    const int n = 5 + static_cast<int>(rng() % 60);
    for (int i = 0; i < n; ++i) {
      const int first = static_cast<int>(rng() % 40);
      requests.push_back({1 + rng() % 100000, first, first + static_cast<int>(rng() % 6)});
    }
    const MemoryPlan plan = plan_memory(requests, 64);
    CHECK(plan.arena_bytes >= plan.lower_bound);
    for (size_t i = 0; i < requests.size(); ++i) {
      CHECK(plan.offsets[i] % 64 == 0);
      CHECK(plan.offsets[i] + requests[i].bytes <= plan.arena_bytes);
      for (size_t j = i + 1; j < requests.size(); ++j) {
        const bool same_time = requests[i].first_step <= requests[j].last_step &&
                               requests[j].first_step <= requests[i].last_step;
        const bool same_bytes = plan.offsets[i] < plan.offsets[j] + requests[j].bytes &&
                                plan.offsets[j] < plan.offsets[i] + requests[i].bytes;
        REQUIRE_FALSE((same_time && same_bytes));
      }
    }
  }
}
