// ravlt bench: what a model costs to get ready and to run, on this machine.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "ravlt/benchmark.h"
#include "ravlt/error.h"
#include "ravlt/model.h"
#include "report/json_writer.h"
#include "tools/commands.h"
#include "tools/device_options.h"
#include "tools/floor_breakdown.h"
#include "tools/number_checks.h"
#include "tools/size_argument.h"

namespace ravlt::tools {
namespace {

struct BenchArgs {
  std::string model;
  int batch = 1;
  std::string size = "224x224";
  int threads = 0;
  int iterations = 50;
  int warmup = 5;
  bool json = false;
  bool profile = false;
  int profile_nodes = 10;  // slowest nodes listed with --profile
  bool no_checksum = false;
  bool floor = false;  // report the GEMM floor of the model's own multiply-adds
  double macs = 0;     // per image, for the floor in place of the model's count; 0: not given
  DeviceArgs device;
};

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const double pos = p * static_cast<double>(v.size() - 1);
  const size_t i = static_cast<size_t>(pos);
  const double frac = pos - static_cast<double>(i);
  return i + 1 < v.size() ? v[i] * (1 - frac) + v[i + 1] * frac : v[i];
}

// The `count` slowest nodes of a profiled session, slowest first.
std::vector<NodeProfile> slowest_nodes(const Session& profiled, int count) {
  std::vector<NodeProfile> nodes = profiled.node_profile();
  std::sort(nodes.begin(), nodes.end(),
            [](const NodeProfile& x, const NodeProfile& y) { return x.seconds > y.seconds; });
  nodes.resize(std::min<size_t>(nodes.size(), static_cast<size_t>(std::max(count, 0))));
  return nodes;
}

// Each node's own multiply-adds, by its name.
std::map<std::string, double> macs_by_node(const std::vector<NodeWork>& work) {
  std::map<std::string, double> macs;
  for (const NodeWork& n : work) macs[n.name] = n.macs;
  return macs;
}

// Multiply-adds per op kind as a profile names them (a fused chain's
// nodes count under the chain's name).
std::map<std::string, double> macs_by_profile_op(const Session& profiled,
                                                 const std::vector<NodeWork>& work) {
  std::map<std::string, double> node_macs = macs_by_node(work), by_op;
  for (const NodeProfile& n : profiled.node_profile()) by_op[n.op] += node_macs[n.name];
  return by_op;
}

// The groups furthest above their floor, and the rest in one line.
void print_above_floor(const std::vector<FloorGroup>& groups, double gemm_gflops) {
  constexpr size_t kShown = 12;
  double ms = 0, floor_ms = 0;
  for (const FloorGroup& g : groups) {
    ms += g.ms;
    floor_ms += g.floor_ms;
  }
  std::printf(
      "\nabove the floor (per run, by part of the network and op kind; each group's own "
      "multiply-adds at %.1f GFLOP/s): %.3f ms of %.3f profiled\n",
      gemm_gflops, ms - floor_ms, ms);
  double rest = 0;
  for (size_t k = 0; k < groups.size(); ++k) {
    const FloorGroup& g = groups[k];
    if (k >= kShown) {
      rest += g.above_ms();
      continue;
    }
    std::printf("  %-14s %-22s %3d nodes %9.3f ms  (%.3f ms, its floor %.3f)\n", g.part.c_str(),
                g.op.c_str(), g.nodes, g.above_ms(), g.ms, g.floor_ms);
  }
  if (groups.size() > kShown) {
    std::printf("  and %zu more groups %9.3f ms together\n", groups.size() - kShown, rest);
  }
}

int run(const BenchArgs& a) {
  const auto [h, w] = parse_size(a.size, "--size");
  const int64_t height = h, width = w;
  const std::vector<int64_t> shape = {a.batch, 3, height, width};

  auto start = Clock::now();
  const auto model = Model::load(a.model, load_options(a.device, a.no_checksum));
  const double open_ms = ms_since(start);
  const std::vector<NodeWork> work = model->node_macs(shape);
  double counted_macs = 0;  // the whole batch
  for (const NodeWork& n : work) counted_macs += n.macs;
  const double floor_macs = a.macs > 0 ? a.macs : counted_macs / a.batch;  // per image
  SessionOptions options;
  options.threads = a.threads;
  apply_device_options(a.device, options);
  Session session(model, options);
  start = Clock::now();
  const PlanMemory memory = session.plan(shape);
  const double plan_ms = ms_since(start);

  std::vector<float> input(static_cast<size_t>(a.batch * 3 * height * width));
  std::mt19937 rng(0);
  std::normal_distribution<float> normal;
  for (float& v : input) v = normal(rng);
  start = Clock::now();
  session.run_all(input.data(), shape);
  const double first_ms = ms_since(start);
  for (int i = 0; i < a.warmup; ++i) session.run_all(input.data(), shape);

  // The profiled session is separate so that timing every op does not
  // slow the latency figures.
  std::unique_ptr<Session> profiled;
  if (a.profile) {
    options.profile = true;
    options.defer_packing = false;  // every profiled run on the packed weights
    profiled = std::make_unique<Session>(model, options);
    profiled->run_all(input.data(), shape);
  }
  // The floor: the time the network's multiply-adds take at this machine's
  // GEMM rate, timed (same threads) right after each run, so that a run and
  // its floor see the same moment of a host whose speed drifts. A bfloat16
  // run on the CPU is set against a bfloat16 GEMM (its GEMMs run on the
  // bfloat16 units, several times float32's rate on AMX); every other run
  // against float32's, the precision of the reference.
  const Precision floor_precision =
      options.device == Device::kCpu && options.precision == Precision::kBFloat16
          ? Precision::kBFloat16
          : Precision::kFloat32;
  std::unique_ptr<GemmProbe> probe;
  if (a.macs > 0 || a.floor) {
    probe = std::make_unique<GemmProbe>(a.threads, 1024, floor_precision);
  }
  const double floor_gflop = 2.0 * floor_macs * a.batch / 1e9;
  std::vector<double> latencies, rates, floor_ratios;
  for (int i = 0; i < a.iterations; ++i) {
    start = Clock::now();
    session.run_all(input.data(), shape);
    latencies.push_back(ms_since(start));
    if (profiled) profiled->run_all(input.data(), shape);
    if (probe) {
      rates.push_back(probe->gflops());
      floor_ratios.push_back(latencies.back() / (1000.0 * floor_gflop / rates.back()));
    }
  }
  // The packing of this session's plan (thread time), before its first
  // run or (SessionOptions::defer_packing) after it.
  const double packing_ms = 1000.0 * model->weight_packing_seconds();
  const DeferredPacking deferred = session.deferred_packing();
  double mean = 0;
  for (double l : latencies) mean += l;
  mean /= static_cast<double>(latencies.size());
  const double median = percentile(latencies, 0.5), p90 = percentile(latencies, 0.9),
               p99 = percentile(latencies, 0.99);
  const double throughput = 1000.0 * a.batch / mean;
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double peak_mb = static_cast<double>(usage.ru_maxrss) / 1024.0;
  const double ratio =
      static_cast<double>(memory.arena_bytes) / static_cast<double>(memory.lower_bound);
  const int threads = a.threads;
  const double gemm = probe ? percentile(rates, 0.5) : 0.0;
  const double floor_ms = probe ? 1000.0 * floor_gflop / gemm : 0.0;
  const double floor_ratio = probe ? percentile(floor_ratios, 0.5) : 0.0;
  const double achieved_gflops = 2.0 * counted_macs / (median * 1e6);
  std::map<std::string, double> profile_macs;
  if (profiled) profile_macs = macs_by_profile_op(*profiled, work);
  // GFLOP/s of an op kind's profiled time, 0 for one without arithmetic.
  const auto profile_gflops = [&](const OpProfile& p) {
    const double per_run = p.seconds / (a.iterations + 1);
    return per_run > 0 ? 2.0 * profile_macs[p.op] / (per_run * 1e9) : 0.0;
  };
  // With both: which parts of the network take the time above the floor.
  std::vector<FloorGroup> above_floor;
  if (profiled && probe && gemm > 0) {
    above_floor =
        floor_breakdown(profiled->node_profile(), macs_by_node(work), a.iterations + 1, gemm);
  }

  if (a.json) {
    std::printf(
        "{\"model\": %s, \"device\": %s, \"batch\": %d, \"height\": %lld, \"width\": %lld, "
        "\"threads\": %d, "
        "\"iterations\": %d, \"open_ms\": %.3f, \"plan_ms\": %.3f, \"first_run_ms\": %.3f, "
        "\"median_ms\": %.4f, \"p90_ms\": %.4f, \"p99_ms\": %.4f, \"mean_ms\": %.4f, "
        "\"images_per_s\": %.2f, \"arena_bytes\": %zu, \"activation_bytes\": %zu, "
        "\"scratch_bytes\": %zu, \"lower_bound_bytes\": %zu, \"output_bytes\": %zu, "
        "\"copied_weight_bytes\": %zu, \"weight_packing_ms\": %.3f, \"pack_weights\": %s, "
        "\"mapped_resident_bytes\": %zu, \"peak_rss_mb\": %.1f, "
        "\"weight_cache_path\": %s, \"weight_cache_status\": %s, "
        "\"weight_cache_bytes_used\": %zu, \"gemm_gflops\": %.1f, \"gemm_precision\": %s, "
        "\"floor_ms\": %.4f, \"floor_ratio\": %.4f, \"image_by_image_ops\": %zu, "
        "\"macs_per_image\": %.9g, \"gflops\": %.2f, \"deferred_packing_ms\": %.3f, "
        "\"deferred_packing_wait_ms\": %.3f, \"deferred_packing_error\": %s",
        report::json_quote(a.model).c_str(),
        report::json_quote(device_description(options.device)).c_str(), a.batch,
        static_cast<long long>(height), static_cast<long long>(width), threads, a.iterations,
        open_ms, plan_ms, first_ms, median, p90, p99, mean, throughput, memory.arena_bytes,
        memory.activation_bytes, memory.scratch_bytes, memory.lower_bound, memory.output_bytes,
        model->copied_weight_bytes(), packing_ms, options.pack_weights ? "true" : "false",
        model->mapped_resident_bytes(), peak_mb,
        report::json_quote(model->weight_cache_path()).c_str(),
        report::json_quote(model->weight_cache_status()).c_str(), model->weight_cache_bytes_used(),
        gemm, report::json_quote(probe ? to_string(floor_precision) : "").c_str(), floor_ms,
        floor_ratio, memory.image_by_image_ops, counted_macs / a.batch, achieved_gflops,
        1000.0 * deferred.seconds, 1000.0 * deferred.waited_seconds,
        report::json_quote(deferred.error).c_str());
    if (profiled) {
      std::printf(", \"profile_ms_per_run\": {");
      bool first = true;
      for (const OpProfile& p : profiled->profile()) {
        std::printf("%s\"%s\": %.4f", first ? "" : ", ", p.op.c_str(),
                    1000.0 * p.seconds / (a.iterations + 1));
        first = false;
      }
      const CopyProfile copies = profiled->copy_profile();
      std::printf("}, \"profile_gflops\": {");
      first = true;
      for (const OpProfile& p : profiled->profile()) {
        std::printf("%s\"%s\": %.2f", first ? "" : ", ", p.op.c_str(), profile_gflops(p));
        first = false;
      }
      std::printf("}, \"profile_copy_ms\": {\"input\": %.4f, \"output\": %.4f}",
                  1000.0 * copies.input_seconds / (a.iterations + 1),
                  1000.0 * copies.output_seconds / (a.iterations + 1));
      std::printf(", \"profile_nodes\": [");
      const std::vector<NodeProfile> nodes = slowest_nodes(*profiled, a.profile_nodes);
      std::map<std::string, double> node_macs = macs_by_node(work);
      for (size_t k = 0; k < nodes.size(); ++k) {
        // macs: the node's own (a fused chain's time is at its last node, its work at each)
        std::printf("%s{\"name\": %s, \"op\": %s, \"ms\": %.4f, \"macs\": %.0f}", k ? ", " : "",
                    report::json_quote(nodes[k].name).c_str(),
                    report::json_quote(nodes[k].op).c_str(),
                    1000.0 * nodes[k].seconds / (a.iterations + 1), node_macs[nodes[k].name]);
      }
      std::printf("]");
      if (probe) {
        std::printf(", \"profile_above_floor\": [");
        for (size_t k = 0; k < above_floor.size(); ++k) {
          const FloorGroup& g = above_floor[k];
          std::printf(
              "%s{\"part\": %s, \"op\": %s, \"nodes\": %d, \"ms\": %.4f, "
              "\"floor_ms\": %.4f}",
              k ? ", " : "", report::json_quote(g.part).c_str(), report::json_quote(g.op).c_str(),
              g.nodes, g.ms, g.floor_ms);
        }
        std::printf("]");
      }
    }
    std::printf("}\n");
    return 0;
  }
  std::printf("model        %s, batch %d, %lldx%lld, threads %s\n", a.model.c_str(), a.batch,
              static_cast<long long>(height), static_cast<long long>(width),
              threads == 0 ? "all cores" : std::to_string(threads).c_str());
  std::printf("device       %s\n", device_description(options.device).c_str());
  std::printf("ready        open + verify %.1f ms, plan %.1f ms, first run %.1f ms\n", open_ms,
              plan_ms, first_ms);
  if (deferred.done) {
    std::printf(
        "packing      after the first run (which read the weights in place): %.1f ms on the "
        "session's own thread, the next run waited %.1f ms for it%s%s\n",
        1000.0 * deferred.seconds, 1000.0 * deferred.waited_seconds,
        deferred.error.empty() ? "" : "; failed, the runs kept the weights in place: ",
        deferred.error.c_str());
  }
  std::printf("latency      median %.3f ms, p90 %.3f ms, p99 %.3f ms (%d runs after %d warm-up)\n",
              median, p90, p99, a.iterations, a.warmup);
  std::printf("throughput   %.1f images/s\n", throughput);
  std::printf(
      "work         %.3f GMAC an image (convolutions, GEMMs, attention products), %.1f GFLOP/s "
      "at the median\n",
      counted_macs / a.batch / 1e9, achieved_gflops);
  if (probe) {
    std::printf(
        "floor        %.3f ms at %.1f GFLOP/s (this machine's %s GEMM rate, timed after each "
        "run): a run takes %.2fx its floor (median of the per-run ratios)\n",
        floor_ms, gemm, std::string(dtype_name(floor_precision)).c_str(), floor_ratio);
  }
  std::printf(
      "arena        %.2f MB (activations alone %.2f MB, largest scratch %.2f MB), lower bound "
      "%.2f MB (%.3fx)\n",
      static_cast<double>(memory.arena_bytes) / 1e6,
      static_cast<double>(memory.activation_bytes) / 1e6,
      static_cast<double>(memory.scratch_bytes) / 1e6,
      static_cast<double>(memory.lower_bound) / 1e6, ratio);
  if (memory.image_by_image_ops > 0) {
    std::printf(
        "batch        the first %zu ops one image at a time (the batch's activations "
        "there outgrow the caches), the rest batched\n",
        memory.image_by_image_ops);
  }
  std::printf("outputs      %.2f MB, kept apart from the arena\n",
              static_cast<double>(memory.output_bytes) / 1e6);
  std::string packing;
  if (packing_ms > 0) {
    char text[160];
    std::snprintf(
        text, sizeof text, ": %.1f ms of thread time%s", packing_ms,
        model->weight_cache_path().empty() ? ", which --cache-dir saves the next start" : "");
    packing = text;
  }
  if (!options.pack_weights) packing += "; the GEMMs read the file's own: --no-packing";
  std::printf(
      "weights      %.2f MB copied out of the mapped file (packed for the kernels%s), %.2f MB "
      "of the file resident\n",
      static_cast<double>(model->copied_weight_bytes()) / 1e6, packing.c_str(),
      static_cast<double>(model->mapped_resident_bytes()) / 1e6);
  if (!model->weight_cache_path().empty()) {
    std::printf("weight cache %s: %s; %.2f MB of packed weights used from it\n",
                model->weight_cache_path().c_str(), model->weight_cache_status().c_str(),
                static_cast<double>(model->weight_cache_bytes_used()) / 1e6);
  }
  std::printf("peak memory  %.1f MB resident\n", peak_mb);
  if (profiled) {
    std::printf("\nprofile (per run, separate profiled session):\n");
    double total = 0;
    const auto ops = profiled->profile();
    for (const OpProfile& p : ops) total += p.seconds;
    for (const OpProfile& p : ops) {
      std::printf("  %-20s %3d nodes %9.3f ms  %5.1f%%", p.op.c_str(), p.nodes,
                  1000.0 * p.seconds / (a.iterations + 1), 100.0 * p.seconds / total);
      const double gflops = profile_gflops(p);
      if (gflops > 0) std::printf("  %7.1f GFLOP/s", gflops);
      std::printf("\n");
    }
    const CopyProfile copies = profiled->copy_profile();
    if (1000.0 * (copies.input_seconds + copies.output_seconds) / (a.iterations + 1) >= 0.01) {
      std::printf("  and apart from the nodes: input staged in %.3f ms, outputs out %.3f ms\n",
                  1000.0 * copies.input_seconds / (a.iterations + 1),
                  1000.0 * copies.output_seconds / (a.iterations + 1));
    }
    const std::vector<NodeProfile> nodes = slowest_nodes(*profiled, a.profile_nodes);
    const size_t shown = nodes.size();
    if (shown > 0) std::printf("\nslowest %zu nodes (per run):\n", shown);
    for (size_t k = 0; k < shown; ++k) {
      std::printf("  %-40s %-20s %9.3f ms  %5.1f%%\n", nodes[k].name.c_str(), nodes[k].op.c_str(),
                  1000.0 * nodes[k].seconds / (a.iterations + 1), 100.0 * nodes[k].seconds / total);
    }
    if (!above_floor.empty()) print_above_floor(above_floor, gemm);
  }
  return 0;
}

}  // namespace

Runner add_bench_command(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "Measure load, planning and run time of a model");
  cmd->add_option("-m,--model", args->model, "model file (.rvlt)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--batch", args->batch, "batch size")
      ->check(positive_integer())
      ->capture_default_str();
  cmd->add_option("--size", args->size, "input height x width")->capture_default_str();
  cmd->add_option("--threads", args->threads, "threads (0: all cores)")
      ->check(non_negative_integer())
      ->capture_default_str();
  cmd->add_option("--iterations", args->iterations, "timed runs")
      ->check(positive_integer())
      ->capture_default_str();
  cmd->add_option("--warmup", args->warmup, "untimed runs first")
      ->check(non_negative_integer())
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "print one JSON object");
  cmd->add_flag("--profile", args->profile,
                "also report time per op kind and the slowest nodes (with --floor: where the "
                "time above the floor goes, by part of the network and op kind)");
  cmd->add_option("--profile-nodes", args->profile_nodes, "slowest nodes listed by --profile")
      ->check(non_negative_integer())
      ->capture_default_str();
  cmd->add_flag("--no-checksum", args->no_checksum, "skip the model file checksum");
  add_device_options(cmd, &args->device, PackingDefault::kPacked);
  cmd->add_flag("--floor", args->floor,
                "also report the GEMM floor: the model's multiply-adds at this machine's GEMM "
                "rate (float32; bfloat16 for --precision bf16 on the CPU), timed after each run");
  cmd->add_option("--macs", args->macs,
                  "multiply-adds per image for the floor in place of the model's own count "
                  "(implies --floor)")
      ->check(non_negative_number());
  return [args] { return run(*args); };
}

}  // namespace ravlt::tools
