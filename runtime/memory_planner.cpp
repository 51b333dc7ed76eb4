#include "runtime/memory_planner.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <numeric>

namespace ravlt::runtime {
namespace {

size_t aligned_to(size_t n, size_t alignment) {
  return (n + alignment - 1) / alignment * alignment;
}

struct Gap {
  size_t lo, hi;  // [lo, hi)
  bool tail;      // past the last live buffer, up to the arena so far
};

// Greedy by size (largest first). Each buffer goes into a gap between the
// placed buffers live with it: with `warm`, over the bytes of the placed
// buffer read most recently before it is written that some gap reaches,
// else (and among equally warm places) into the smallest gap (best fit).
std::vector<size_t> place(const std::vector<BufferRequest>& requests, size_t alignment, bool warm) {
  std::vector<size_t> offsets(requests.size(), 0);
  std::vector<size_t> order(requests.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return requests[a].bytes > requests[b].bytes; });
  auto end_of = [&](size_t j) { return offsets[j] + aligned_to(requests[j].bytes, alignment); };
  std::vector<size_t> placed;
  size_t arena = 0;
  for (size_t i : order) {
    const BufferRequest& r = requests[i];
    const size_t need = aligned_to(r.bytes, alignment);
    std::vector<std::pair<size_t, size_t>> busy;  // [begin, end) of live placed buffers
    std::vector<size_t> dead;                     // placed buffers last read before r is written
    for (size_t j : placed) {
      const BufferRequest& o = requests[j];
      if (o.first_step <= r.last_step && r.first_step <= o.last_step) {
        busy.emplace_back(offsets[j], end_of(j));
      } else if (warm && o.last_step < r.first_step) {
        dead.push_back(j);
      }
    }
    std::sort(busy.begin(), busy.end());
    std::vector<Gap> gaps;  // those that hold r, by address
    size_t cursor = 0;
    for (const auto& [begin, end] : busy) {
      if (begin > cursor && begin - cursor >= need) gaps.push_back({cursor, begin, false});
      cursor = std::max(cursor, end);
    }
    // Best fit: the smallest gap, else past the last live buffer.
    size_t best = cursor, best_gap = SIZE_MAX;
    for (const Gap& g : gaps) {
      if (g.hi - g.lo < best_gap) best = g.lo, best_gap = g.hi - g.lo;
    }
    if (warm && arena > cursor && arena - cursor >= need) gaps.push_back({cursor, arena, true});
    // Warmest first: the first dead buffer whose bytes some place in a gap
    // overlaps decides; among the places overlapping a buffer read as
    // recently, the smallest gap (the tail counts as the largest).
    std::stable_sort(dead.begin(), dead.end(), [&](size_t a, size_t b) {
      return requests[a].last_step > requests[b].last_step;
    });
    int found = -1;
    size_t warm_at = 0, warm_gap = SIZE_MAX;
    for (size_t j : dead) {
      if (found >= 0 && requests[j].last_step < found) break;
      const size_t b = offsets[j], e = end_of(j);
      // Gaps that may reach [b, e): those starting before e.
      auto first =
          std::partition_point(gaps.begin(), gaps.end(), [b](const Gap& g) { return g.hi <= b; });
      for (auto it = first; it != gaps.end() && it->lo < e; ++it) {
        const Gap& g = *it;
        // The place nearest b within the gap, and the one ending at e.
        const size_t top = g.hi - need;
        const size_t size = g.tail ? SIZE_MAX - 1 : g.hi - g.lo;
        for (size_t at :
             {std::clamp(b, g.lo, top), std::clamp(e >= need ? e - need : 0, g.lo, top)}) {
          if (at < e && at + need > b && (found < 0 || size < warm_gap)) {
            found = requests[j].last_step, warm_at = at, warm_gap = size;
          }
        }
      }
    }
    offsets[i] = found >= 0 ? warm_at : best;
    arena = std::max(arena, offsets[i] + need);
    placed.push_back(i);
  }
  return offsets;
}

size_t arena_of(const std::vector<BufferRequest>& requests, const std::vector<size_t>& offsets,
                size_t alignment) {
  size_t arena = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    arena = std::max(arena, offsets[i] + aligned_to(requests[i].bytes, alignment));
  }
  return arena;
}

}  // namespace

MemoryPlan plan_memory(const std::vector<BufferRequest>& requests, size_t alignment) {
  MemoryPlan plan;
  // Lower bound: the most bytes live at one step.
  std::map<int, size_t> live;  // step -> bytes
  for (const BufferRequest& r : requests) {
    for (int s = r.first_step; s <= r.last_step; ++s) live[s] += r.bytes;
  }
  for (const auto& [step, bytes] : live) plan.lower_bound = std::max(plan.lower_bound, bytes);

  plan.offsets = place(requests, alignment, true);
  plan.arena_bytes = arena_of(requests, plan.offsets, alignment);
  // Never more memory than best fit alone.
  std::vector<size_t> fit = place(requests, alignment, false);
  const size_t fit_bytes = arena_of(requests, fit, alignment);
  if (fit_bytes < plan.arena_bytes) {
    plan.offsets = std::move(fit);
    plan.arena_bytes = fit_bytes;
  }
  return plan;
}

}  // namespace ravlt::runtime
