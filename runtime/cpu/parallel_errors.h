// Errors inside OpenMP parallel loops. An exception must not leave an
// OpenMP region (the runtime terminates the process), so each task runs
// through ParallelErrors::run, which catches; once a task has failed the
// remaining tasks are skipped, and after the region rethrow() raises the
// first error caught.
#pragma once

#include <atomic>
#include <exception>
#include <mutex>

namespace ravlt::runtime::cpu {

class ParallelErrors {
 public:
  /// Runs task() unless a task has failed already; catches what it throws.
  template <typename Task>
  void run(Task&& task) {
    if (failed_.load(std::memory_order_relaxed)) return;
    try {
      task();
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!first_) first_ = std::current_exception();
      failed_.store(true, std::memory_order_relaxed);
    }
  }
  /// After the region: throws the first error caught, if any.
  void rethrow() const {
    if (first_) std::rethrow_exception(first_);
  }

 private:
  std::atomic<bool> failed_{false};
  std::mutex mutex_;
  std::exception_ptr first_;
};

}  // namespace ravlt::runtime::cpu
