// Where a profiled run's time goes beyond its GEMM floor: `ravlt bench
// --profile --floor` groups the nodes by the part of the network they are
// in and their op kind, and sets each group's time against its own
// multiply-adds at the machine's GEMM rate.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ravlt/model.h"

namespace ravlt::tools {

/// The part of the network a node is in, from its name: the name up to its
/// first dot ("patch_embed", "head"), or to its second where the second
/// part is an index into a list ("layers.2" for "layers.2.blocks.0.ffn.fc1").
std::string network_part(const std::string& node_name);

struct FloorGroup {
  std::string part;  ///< network_part() of its nodes
  std::string op;    ///< their op kind as the profile names it (a fused chain's name)
  int nodes = 0;
  double ms = 0;        ///< profiled time per run
  double floor_ms = 0;  ///< its multiply-adds at the GEMM rate, per run
  double above_ms() const { return ms - floor_ms; }
};

/// The profile's nodes grouped by (part, op kind), the group furthest above
/// its floor first. `node_macs`: each node's own multiply-adds by name (the
/// whole batch); `runs`: the runs the profile's times are summed over;
/// `gemm_gflops`: the rate the floor is at (> 0). A fused chain's time is at
/// its last node and its multiply-adds at each of its nodes: all of them are
/// in one group, as the chain's nodes are in one part.
std::vector<FloorGroup> floor_breakdown(const std::vector<NodeProfile>& profile,
                                        const std::map<std::string, double>& node_macs, int runs,
                                        double gemm_gflops);

}  // namespace ravlt::tools
