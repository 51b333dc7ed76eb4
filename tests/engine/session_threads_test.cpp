// A Session runs on as many threads as it was given, whatever OpenMP's
// default in the process (all cores, or OMP_NUM_THREADS). oneDNN sizes a
// convolution's team when the plan creates it and keeps that size, so a
// plan that created its primitives under the default ran a one-thread
// session's convolutions on two threads (two such processes on two cores
// took twice as long a batch) and would run a two-thread session's on
// every core of a larger machine.
//
// Its own executable: OpenMP keeps a team's threads for the next team, so
// the threads alive in a fresh process tell the largest team it ran.
#include <doctest/doctest.h>
#include <omp.h>

#include <chrono>
#include <filesystem>
#include <iterator>
#include <thread>

#include "ravlt/convert.h"
#include "ravlt/model.h"
#include "tests/test_util.h"

using namespace ravlt;

namespace {

size_t live_threads() {
  const std::filesystem::directory_iterator tasks("/proc/self/task");
  return static_cast<size_t>(std::distance(begin(tasks), end(tasks)));
}

// The threads alive once those that are ending (the checksum's helpers of
// Model::load) have gone: polled until at most `expected`, for 2 s at most.
size_t threads_once_settled(size_t expected) {
  size_t n = live_threads();
  for (int i = 0; i < 200 && n > expected; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    n = live_threads();
  }
  return n;
}

}  // namespace

TEST_CASE("a session's runs take no more threads than it was given, whatever OpenMP's default") {
  // Before anything starts a thread: this one, and any a sanitizer runs.
  const size_t before = live_threads();
  // The default of a four-core machine (or OMP_NUM_THREADS=4), on any host.
  omp_set_num_threads(4);
  test::TempDir dir;
  const std::string path = dir.file("custom.rvlt");
  convert_checkpoint(test::testdata("custom_bare.pth"), path);
  const auto model = Model::load(path);
  const std::vector<int64_t> shape = {2, 3, 41, 29};
  const auto input = test::random_vector(2 * 3 * 41 * 29, 1);

  Session one(model, SessionOptions{1});
  one.run(input.data(), shape);
  one.run(input.data(), shape);
  // One thread: no OpenMP team was ever larger than this thread alone.
  CHECK(threads_once_settled(before) == before);

  Session two(model, SessionOptions{2});
  two.run(input.data(), shape);
  two.run(input.data(), shape);
  // Two: one more thread, kept by OpenMP for the next team.
  CHECK(threads_once_settled(before + 1) == before + 1);
}
