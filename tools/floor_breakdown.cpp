#include "tools/floor_breakdown.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <utility>

namespace ravlt::tools {

std::string network_part(const std::string& node_name) {
  const size_t first = node_name.find('.');
  if (first == std::string::npos) return node_name;
  const size_t second = node_name.find('.', first + 1);
  const std::string index = node_name.substr(
      first + 1, (second == std::string::npos ? node_name.size() : second) - first - 1);
  const bool is_index = !index.empty() && std::all_of(index.begin(), index.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) != 0;
  });
  return node_name.substr(0, is_index ? first + 1 + index.size() : first);
}

std::vector<FloorGroup> floor_breakdown(const std::vector<NodeProfile>& profile,
                                        const std::map<std::string, double>& node_macs, int runs,
                                        double gemm_gflops) {
  std::map<std::pair<std::string, std::string>, FloorGroup> groups;
  for (const NodeProfile& n : profile) {
    const std::string part = network_part(n.name);
    FloorGroup& g = groups[{part, n.op}];
    g.part = part;
    g.op = n.op;
    ++g.nodes;
    g.ms += 1000.0 * n.seconds / runs;
    const auto macs = node_macs.find(n.name);
    if (macs != node_macs.end()) g.floor_ms += 2.0 * macs->second / (gemm_gflops * 1e6);
  }
  std::vector<FloorGroup> sorted;
  for (auto& [key, g] : groups) sorted.push_back(std::move(g));
  std::stable_sort(sorted.begin(), sorted.end(), [](const FloorGroup& x, const FloorGroup& y) {
    return x.above_ms() > y.above_ms();
  });
  return sorted;
}

}  // namespace ravlt::tools
