// Places every intermediate buffer of a plan at an offset in one arena.
//
// Each buffer is live over an inclusive range of steps; two buffers may
// share bytes only if their ranges do not overlap. Placement is greedy by
// size (TFLite's arena planner): largest first, each into a gap between
// the placed buffers live with it. Of the places that hold it, one over
// the bytes of the buffer read most recently before it is written wins,
// then the smallest gap (best fit): a kernel writing over bytes its
// neighbours just used finds them in the caches (RAVLT-T at 224, stage 1's
// norm2 LayerNorms 0.052 -> 0.019 ms each; bench/RESULTS.md has the whole
// runs). The arena is never larger than best fit's alone: where it would
// be, best fit's placement is kept. The lower bound is the largest total
// of bytes live at any one step.
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
