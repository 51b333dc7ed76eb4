// What a Model holds, visible to the engine's own sources only.
#pragma once

#include <memory>

#include "ravlt/model.h"
#include "runtime/cpu/cpu_context.h"
#include "runtime/graph.h"

namespace ravlt {

class Model::Impl {
 public:
  std::shared_ptr<const runtime::Graph> graph;
  std::shared_ptr<runtime::cpu::WeightCache> weights;  // shared by all sessions
  std::vector<std::string> labels;
  Preprocessing preprocessing;
};

}  // namespace ravlt
