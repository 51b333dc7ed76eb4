#include "engine/src/named_outputs.h"

namespace ravlt::engine {

NamedOutputs named_outputs(ModelKind kind, const runtime::Graph& graph) {
  NamedOutputs out;
  for (uint32_t v : graph.outputs()) {
    out.names.push_back(graph.values()[v].name);
    out.values.push_back(v);
  }
  if (kind != ModelKind::kClassifier) return out;
  out.names[0] = "logits";  // the one output (checked when the file was opened)
  for (const runtime::Node& n : graph.nodes()) {
    if (n.op == runtime::Op::kGlobalAvgPool) {
      out.names.push_back("embedding");
      out.values.push_back(n.output);
      break;
    }
  }
  return out;
}

}  // namespace ravlt::engine
