// Concurrency stress: 8 threads share one Model, each with its own Session,
// and run different batch sizes and input shapes in a random interleaving
// for a bounded time (RAVLT_STRESS_SECONDS, default 5). Every result must be
// bit-identical to the same input run alone with the same session settings
// (the lone session's first run, on the weights in place, or its second, on
// the weights packed after the first: SessionOptions::defer_packing).
// CI also runs it under ThreadSanitizer (scripts/test.sh), where sessions use
// one thread each: GNU OpenMP is not instrumented, and its worker threads
// would only produce reports about itself.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <random>
#include <thread>

#include "ravlt/convert.h"
#include "ravlt/model.h"
#include "tests/test_util.h"

using namespace ravlt;
using ravlt::test::TempDir;
using ravlt::test::testdata;

namespace {

struct Case {
  std::vector<int64_t> shape;
  std::vector<float> input;
  int threads;
  std::vector<float> expected;         // the lone session's first run's logits
  std::vector<float> expected_packed;  // and its second's
};

// Sessions that pack after their first run: the thread that does it, and
// the plan it swaps in, are under test too.
SessionOptions deferring(int threads) {
  SessionOptions o{threads};
  o.defer_packing = true;
  return o;
}

}  // namespace

TEST_CASE("8 threads, one Model, random shapes and interleaving: every result as run alone") {
  TempDir dir;
  const std::string path = dir.file("custom.rvlt");
  convert_checkpoint(testdata("custom_bare.pth"), path);
  const auto model = Model::load(path);
#ifdef RAVLT_TSAN
  const int thread_choices[] = {1};
#else
  const int thread_choices[] = {1, 2};
#endif
  const std::vector<std::vector<int64_t>> shapes = {
      {1, 3, 33, 47}, {2, 3, 40, 40}, {3, 3, 29, 61}, {1, 3, 64, 48}, {2, 3, 17, 23}};
  std::vector<Case> cases;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  for (const auto& s : shapes) {
    for (int threads : thread_choices) {
      Case c{
          s, std::vector<float>(static_cast<size_t>(s[0] * s[1] * s[2] * s[3])), threads, {}, {}};
      for (float& v : c.input) v = normal(rng);
      // Two runs: the second waits for the packing after the first, so
      // that this thread makes every primitive first (oneDNN shares them
      // between sessions, under locks ThreadSanitizer does not see).
      Session alone(model, deferring(threads));
      const auto out = alone.run(c.input.data(), c.shape);
      c.expected.assign(out.begin(), out.end());
      const auto packed = alone.run(c.input.data(), c.shape);
      c.expected_packed.assign(packed.begin(), packed.end());
      cases.push_back(std::move(c));
    }
  }
  const char* env = std::getenv("RAVLT_STRESS_SECONDS");
  const double seconds = env != nullptr ? std::atof(env) : 5.0;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int>(seconds * 1000));
  std::atomic<int> runs{0}, mismatches{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < 8; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937 pick(static_cast<uint32_t>(100 + t));
      // One session per thread setting, each used by this thread only.
      std::vector<std::unique_ptr<Session>> sessions;
      for (int threads : thread_choices) {
        sessions.push_back(std::make_unique<Session>(model, deferring(threads)));
      }
      do {
        const size_t k = pick() % cases.size();
        const Case& c = cases[k];
        const size_t s = static_cast<size_t>(
            std::find(std::begin(thread_choices), std::end(thread_choices), c.threads) -
            std::begin(thread_choices));
        const auto out = sessions[s]->run(c.input.data(), c.shape);
        if (!std::equal(out.begin(), out.end(), c.expected.begin(), c.expected.end()) &&
            !std::equal(out.begin(), out.end(), c.expected_packed.begin(),
                        c.expected_packed.end())) {
          ++mismatches;
        }
        ++runs;
      } while (std::chrono::steady_clock::now() < deadline);
    });
  }
  for (std::thread& w : workers) w.join();
  MESSAGE(runs.load() << " runs by 8 threads over " << seconds << " s, " << mismatches.load()
                      << " differing from the lone run");
  CHECK(runs.load() >= 8);
  CHECK(mismatches.load() == 0);
}
