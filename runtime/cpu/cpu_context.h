// State the CPU kernels of one session share: the oneDNN engine and stream,
// and the model-wide cache of reordered weights.
#pragma once

#include <atomic>
#include <deque>
#include <dnnl.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ravlt/dtype.h"
#include "runtime/cpu/packed_weight_file.h"
#include "runtime/graph.h"
#include "runtime/host_pages.h"

namespace ravlt::runtime::cpu {

/// Weights reordered into the layouts oneDNN's primitives chose, kept once
/// per model and shared by every session (thread-safe: kernels of one plan
/// are prepared concurrently, and sessions too). With a cache directory,
/// the packed weights of earlier processes are read from the model's file
/// there (packed_weight_file.h) and new ones written to it after a plan.
class WeightCache {
 public:
  /// A cache of this process only.
  WeightCache() = default;
  /// Reads and writes the packed weights of the model with checksum
  /// `model_checksum` in `directory` (created when first written), for
  /// the engine build `engine_version`. A missing, damaged or stale file
  /// is packed anew (file_status() says why); never throws for the file.
  WeightCache(const std::string& directory, uint64_t model_checksum,
              const std::string& engine_version);

  /// The weights of graph value `value` (float32 in `src_desc` layout at
  /// `src`) in layout `want`: `src` itself if the layouts agree (unless
  /// `copy_same_layout`), else a reordered copy made on first request (by
  /// the first caller; another asking for the same copy meanwhile waits
  /// for it), or found in the cache file.
  const void* get(uint32_t value, const float* src, const dnnl::memory::desc& src_desc,
                  const dnnl::memory::desc& want, const dnnl::engine& engine,
                  bool copy_same_layout = false);
  /// Constant `value` (`count` float32 at `src`) copied as it is stored:
  /// get() in a plain layout, so made once and kept in the cache file like
  /// a packed weight. What a plan that packs its weights gives the kernels
  /// of the constants none of them packs (biases, norms), so that its runs
  /// read nothing in the model file's mapping (where a file shortened
  /// meanwhile would end the process).
  const float* resident_copy(uint32_t value, const float* src, size_t count,
                             const dnnl::engine& engine);
  /// Whether a kernel asked get() for constant `value` (of `count`
  /// elements) in a layout of its own: it reads that copy, not the
  /// constant's bytes in the file.
  bool packed(uint32_t value, size_t count) const;
  /// Writes the cache file if weights were packed since it was read or
  /// written (after a plan is prepared). Never throws: a file that cannot
  /// be written is reported by file_status().
  void save();
  /// The model file the weights come from (Model::load, before any plan).
  /// A weight it left unread at load is then read only once the file is
  /// verified whole (get() calls rvlt::ModelFile::verify_constant() before
  /// it reads `src`), and a file written records its parts checksum.
  void attach(std::shared_ptr<const rvlt::ModelFile> file) { file_ = std::move(file); }
  /// With a cache file read: what a load of the model file may check in
  /// place of its whole checksum (rvlt::OpenOptions::parts): the parts
  /// checksum the file records, deferring the values it holds packed
  /// copies of (a graph value is its tensor's index).
  std::optional<rvlt::PartsChecksum> model_parts() const;
  /// Bytes copied by reorders so far.
  size_t reordered_bytes() const;
  /// Thread time spent on those reorders so far (summed over the threads
  /// that made them: creating the reorder, first-touch page faults of the
  /// packed copy, the copy itself).
  double reorder_seconds() const;
  /// Bytes of packed weights used from the cache file so far.
  size_t file_bytes_used() const;
  /// Throws ravlt::Error if the cache file read at construction was written
  /// into or shortened since (MappedFile::check_unchanged()): runs read
  /// the packed weights in its mapping, which would show them the bytes
  /// written, unverified, or end the process past a shortened end.
  void check_file_unchanged() const;
  /// The cache file's path ("" without a cache directory) and what
  /// happened to it: "read", "written", or why it was not.
  std::string file_path() const { return path_; }
  uint64_t model_checksum() const { return model_checksum_; }
  std::string file_status() const;

 private:
  struct Entry {
    Entry(uint32_t v, uint64_t s, uint64_t p, dnnl::memory::desc d, uint8_t* b)
        : value(v), source_key(s), packed_key(p), desc(std::move(d)), bytes(b) {}
    uint32_t value;
    uint64_t source_key = 0, packed_key = 0;  // layout_key(); 0: not persisted
    dnnl::memory::desc desc;                  // zero for one from the file
    // In one of pages_, or in a file's mapping (read-only: never written,
    // as the entry is reordered already).
    uint8_t* bytes;
    size_t size = 0;
    bool from_file = false;
    bool used = false;  // a file entry some plan has asked for
    bool done = false;  // reordered (under mutex_)
    std::once_flag reordered;
  };
  /// `bytes` (64-byte aligned) from the current block of pages, a new
  /// block when it is full. Under mutex_.
  uint8_t* take(size_t bytes);

  mutable std::mutex mutex_;
  std::deque<Entry> entries_;  // a deque: entries stay where they are
  std::vector<HostPages> pages_;
  size_t used_ = 0;  // of pages_.back()
  std::atomic<size_t> reordered_bytes_{0};
  std::atomic<int64_t> reorder_nanoseconds_{0};
  std::atomic<size_t> file_bytes_used_{0};
  std::string directory_, path_, status_;
  uint64_t model_checksum_ = 0, build_key_ = 0;
  std::vector<PackedWeightFile> files_;          // mappings entries point into
  bool unsaved_ = false;                         // entries packed since the last read or write
  std::shared_ptr<const rvlt::ModelFile> file_;  // attach(); set before any get()
};

struct CpuContext {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::shared_ptr<WeightCache> weights;
  /// The threads a run uses (the session's setting, resolved: at least 1).
  int threads = 1;
  /// The session's precision: kFloat32, or kBFloat16 (value_dtype()).
  DType precision = DType::kFloat32;
  /// Whether the graph's input and outputs stay float32 in a bfloat16 plan
  /// (sessions: yes; tests of single kernels: no, to cover every kernel's
  /// bfloat16 operands).
  bool float32_interface = true;
  /// Whether float32 GEMMs read packed copies of their weights (the
  /// default) or the weights where the model file stores them
  /// (GemmShape::weights_as_stored; CpuBackend::set_weight_packing).
  bool pack_weights = true;
  /// Counts the GEMMs prepared on their weights where the model file
  /// stores them (none packed for them); the backend's, or none.
  std::atomic<size_t>* stored_weight_gemms = nullptr;
  /// A convolution whose GELU is ours on a bfloat16 output and whose
  /// float32 output of one image is more than four times this runs by
  /// bands of output rows of at
  /// most this size (conv2d.cpp); 2 MB, a core's second-level cache on the
  /// Xeons and twice Zen 4's, unless CpuBackend::set_conv_band_bytes() said
  /// otherwise.
  size_t conv_band_bytes = size_t{2} << 20;

  /// The element type of `value` in this session's plans: float32 in a
  /// float32 session; in bfloat16, the activations between layers in
  /// bfloat16 and the residual stream, pooled features, NCHW maps and
  /// (unless float32_interface is off) the graph's input and outputs in
  /// float32. value_types.cpp says why.
  DType value_dtype(const Graph& graph, uint32_t value) const;
  /// The type a GEMM or convolution node computes in (sources, weights):
  /// the precision, except float32 for a convolution on the residual
  /// stream. A source of another type is converted first.
  DType compute_dtype(const Graph& graph, const Node& node) const;
};

}  // namespace ravlt::runtime::cpu
