// A model's named outputs: which graph values they are, by model kind.
//
// A backbone's outputs are its graph's outputs, named by their tensors
// ("stage1" ...). A classifier's file declares one output, the logits; its
// "embedding" is the output of the graph's GlobalAvgPool (the pooled
// features the head reads), in files of every format version (1.0 files
// name that tensor "pool:0").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ravlt/model.h"
#include "runtime/graph.h"

namespace ravlt::engine {

struct NamedOutputs {
  std::vector<std::string> names;  // the default first
  std::vector<uint32_t> values;    // graph values, as names
  // upstream[i][j]: output j is computed on the way to output i (a
  // classifier's embedding on the way to its logits), so that a plan for
  // output i computes output j too.
  std::vector<std::vector<bool>> upstream;
};

NamedOutputs named_outputs(ModelKind kind, const runtime::Graph& graph);

}  // namespace ravlt::engine
