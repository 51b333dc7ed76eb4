// The order in which a plan prepares its kernels when it prepares several at
// once.
//
// A model repeats its blocks: a stage's layers ask the backend for the same
// kernels (the same ops, attributes and shapes) once a block. oneDNN creates
// a primitive once per process and hands later requests its cached copy,
// but a request made while another thread is still creating that primitive
// waits for it. Taken in node order, two threads reach a stage's repeated
// layers together and one of them waits through each creation (RAVLT-T:
// about 1.5 ms of one thread's time in a plan of 7 ms, DNNL_VERBOSE
// timestamps). So the first job of each kind goes in a first pass, and the
// repeats in a second one, when what they ask for exists.
#pragma once

#include <cstddef>
#include <vector>

#include "runtime/backend.h"
#include "runtime/graph.h"

namespace ravlt::runtime {

/// Jobs numbered as prepare_all() takes them: steps[0 .. n) first, then
/// fusions[0 .. m) as n + 0 .. n + m.
struct PreparationOrder {
  /// The first job of each kind: the fusions (the longest jobs, so that no
  /// thread starts one at the end of the pass) before the single nodes.
  std::vector<size_t> first;
  /// The jobs of a kind already in `first`, in job order.
  std::vector<size_t> repeats;
};

/// Two jobs are of one kind when their nodes have the same ops, attributes
/// and value shapes, in order. Only the time a plan takes depends on this
/// order: every job is prepared once either way.
PreparationOrder preparation_order(const Graph& graph, const std::vector<size_t>& steps,
                                   const std::vector<Fusion>& fusions,
                                   const std::vector<Shape>& shapes);

}  // namespace ravlt::runtime
