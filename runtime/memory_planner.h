// Places every intermediate buffer of a plan at an offset in one arena.
//
// Each buffer is live over an inclusive range of steps; two buffers may
// share bytes only if their ranges do not overlap. Placement is greedy by
// size with best fit (TFLite's arena planner): largest first, each into the
// smallest gap between already placed, time-overlapping buffers that holds
// it. The lower bound is the largest total of bytes live at any one step.
#pragma once

#include <cstddef>
#include <vector>

namespace ravlt::runtime {

struct BufferRequest {
  size_t bytes = 0;
  int first_step = 0;  // written at this step
  int last_step = 0;   // last read at this step
};

struct MemoryPlan {
  std::vector<size_t> offsets;  // per request, multiples of `alignment`
  size_t arena_bytes = 0;
  size_t lower_bound = 0;
};

MemoryPlan plan_memory(const std::vector<BufferRequest>& requests, size_t alignment = 64);

}  // namespace ravlt::runtime
