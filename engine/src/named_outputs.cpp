#include "engine/src/named_outputs.h"

namespace ravlt::engine {

namespace {

// Every value `value` is computed from (itself included).
std::vector<bool> ancestors(const runtime::Graph& graph, uint32_t value) {
  std::vector<int64_t> producer(graph.values().size(), -1);
  for (size_t k = 0; k < graph.nodes().size(); ++k) {
    producer[graph.nodes()[k].output] = static_cast<int64_t>(k);
  }
  std::vector<bool> seen(graph.values().size(), false);
  std::vector<uint32_t> pending = {value};
  seen[value] = true;
  while (!pending.empty()) {
    const uint32_t v = pending.back();
    pending.pop_back();
    if (producer[v] < 0) continue;  // the input or a constant
    for (uint32_t in : graph.nodes()[static_cast<size_t>(producer[v])].inputs) {
      if (!seen[in]) {
        seen[in] = true;
        pending.push_back(in);
      }
    }
  }
  return seen;
}

}  // namespace

NamedOutputs named_outputs(ModelKind kind, const runtime::Graph& graph) {
  NamedOutputs out;
  for (uint32_t v : graph.outputs()) {
    out.names.push_back(graph.values()[v].name);
    out.values.push_back(v);
  }
  if (kind == ModelKind::kClassifier) {
    out.names[0] = "logits";  // the one output (checked when the file was opened)
    for (const runtime::Node& n : graph.nodes()) {
      if (n.op == runtime::Op::kGlobalAvgPool) {
        out.names.push_back("embedding");
        out.values.push_back(n.output);
        break;
      }
    }
  }
  for (uint32_t v : out.values) {
    const std::vector<bool> from = ancestors(graph, v);
    std::vector<bool>& row = out.upstream.emplace_back();
    for (uint32_t w : out.values) row.push_back(w != v && from[w]);
  }
  return out;
}

}  // namespace ravlt::engine
