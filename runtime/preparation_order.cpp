#include "runtime/preparation_order.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <set>
#include <span>

namespace ravlt::runtime {
namespace {

// What makes two jobs ask a backend for the same kernels: per node its op,
// attributes and the shapes of what it reads and writes. Weights are
// shapes here, not contents: repeats differ in weights only.
std::vector<int64_t> kind_of(const Graph& graph, std::span<const size_t> nodes,
                             const std::vector<Shape>& shapes) {
  std::vector<int64_t> key;
  auto add_shape = [&](uint32_t value) {
    const Shape& s = shapes[value];
    key.push_back(static_cast<int64_t>(s.size()));
    key.insert(key.end(), s.begin(), s.end());
  };
  for (size_t index : nodes) {
    const Node& n = graph.nodes()[index];
    const ConvAttrs& c = n.conv;
    key.insert(key.end(), {static_cast<int64_t>(n.op), static_cast<int64_t>(n.activation),
                           c.kernel_h, c.kernel_w, c.stride_h, c.stride_w, c.pad_h, c.pad_w,
                           c.groups, n.slice_begin, n.slice_end, n.heads, n.head_dim});
    key.push_back(std::bit_cast<int32_t>(n.epsilon));
    key.push_back(static_cast<int64_t>(n.inputs.size()));
    for (uint32_t v : n.inputs) add_shape(v);
    add_shape(n.output);
  }
  return key;
}

// What a job costs, roughly: the bytes of the weights its nodes read. Most
// of a plan's time goes to copying weights into packed layouts (the page
// faults of fresh memory above all); creating a primitive costs about as
// much as packing a few hundred KB.
size_t weight_bytes(const Graph& graph, std::span<const size_t> nodes,
                    const std::vector<Shape>& shapes) {
  size_t bytes = 0;
  for (size_t index : nodes) {
    for (uint32_t v : graph.nodes()[index].inputs) {
      if (graph.values()[v].constant) {
        bytes += static_cast<size_t>(element_count(shapes[v])) * sizeof(float);
      }
    }
  }
  return bytes;
}

}  // namespace

PreparationOrder preparation_order(const Graph& graph, const std::vector<size_t>& steps,
                                   const std::vector<Fusion>& fusions,
                                   const std::vector<Shape>& shapes) {
  PreparationOrder order;
  std::set<std::vector<int64_t>> seen;
  std::vector<size_t> first_nodes;
  for (size_t f = 0; f < fusions.size(); ++f) {
    const std::vector<size_t>& nodes = fusions[f].nodes;
    std::vector<int64_t> key = kind_of(graph, nodes, shapes);
    key.push_back(-1 - static_cast<int64_t>(nodes.size()));  // apart from single nodes
    const size_t job = steps.size() + f;
    (seen.insert(std::move(key)).second ? order.first : order.repeats).push_back(job);
  }
  std::vector<size_t> single_repeats;
  for (size_t s = 0; s < steps.size(); ++s) {
    const bool fresh = seen.insert(kind_of(graph, {&steps[s], 1}, shapes)).second;
    (fresh ? first_nodes : single_repeats).push_back(s);
  }
  order.first.insert(order.first.end(), first_nodes.begin(), first_nodes.end());
  // Job order among the repeats: steps before fusions.
  order.repeats.insert(order.repeats.begin(), single_repeats.begin(), single_repeats.end());
  // The costliest jobs of each pass first, so that no thread starts a long
  // one when the others are nearly done and then waits for it at the pass's
  // end (RAVLT-T: the 4 MB classifier packed last kept one thread busy 3 ms
  // after the other had finished the first pass).
  std::vector<size_t> cost(steps.size() + fusions.size());
  for (size_t s = 0; s < steps.size(); ++s) cost[s] = weight_bytes(graph, {&steps[s], 1}, shapes);
  for (size_t f = 0; f < fusions.size(); ++f) {
    cost[steps.size() + f] = weight_bytes(graph, fusions[f].nodes, shapes);
  }
  for (std::vector<size_t>* pass : {&order.first, &order.repeats}) {
    std::stable_sort(pass->begin(), pass->end(),
                     [&](size_t a, size_t b) { return cost[a] > cost[b]; });
  }
  return order;
}

}  // namespace ravlt::runtime
