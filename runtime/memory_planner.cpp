#include "runtime/memory_planner.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <numeric>

namespace ravlt::runtime {

MemoryPlan plan_memory(const std::vector<BufferRequest>& requests, size_t alignment) {
  MemoryPlan plan;
  plan.offsets.assign(requests.size(), 0);
  auto aligned = [alignment](size_t n) { return (n + alignment - 1) / alignment * alignment; };

  // Lower bound: the most bytes live at one step.
  std::map<int, size_t> live;  // step -> bytes
  for (const BufferRequest& r : requests) {
    for (int s = r.first_step; s <= r.last_step; ++s) live[s] += r.bytes;
  }
  for (const auto& [step, bytes] : live) plan.lower_bound = std::max(plan.lower_bound, bytes);

  std::vector<size_t> order(requests.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return requests[a].bytes > requests[b].bytes; });
  std::vector<size_t> placed;
  for (size_t i : order) {
    const BufferRequest& r = requests[i];
    const size_t need = aligned(r.bytes);
    // Buffers already placed whose lifetimes overlap this one, by offset.
    std::vector<std::pair<size_t, size_t>> busy;  // [begin, end)
    for (size_t j : placed) {
      const BufferRequest& o = requests[j];
      if (o.first_step <= r.last_step && r.first_step <= o.last_step) {
        busy.emplace_back(plan.offsets[j], plan.offsets[j] + aligned(o.bytes));
      }
    }
    std::sort(busy.begin(), busy.end());
    size_t best = SIZE_MAX, best_gap = SIZE_MAX, cursor = 0;
    for (const auto& [begin, end] : busy) {
      if (begin > cursor && begin - cursor >= need && begin - cursor < best_gap) {
        best = cursor;
        best_gap = begin - cursor;
      }
      cursor = std::max(cursor, end);
    }
    plan.offsets[i] = best != SIZE_MAX ? best : cursor;
    plan.arena_bytes = std::max(plan.arena_bytes, plan.offsets[i] + need);
    placed.push_back(i);
  }
  return plan;
}

}  // namespace ravlt::runtime
