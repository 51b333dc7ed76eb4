// Helpers shared by the oneDNN-backed kernels.
#pragma once

#include <dnnl.hpp>
#include <string>
#include <vector>

#include "ravlt/dtype.h"
#include "ravlt/error.h"
#include "runtime/graph.h"

namespace ravlt::runtime::cpu {

/// Attributes every primitive gets: scratchpad in our arena, not oneDNN's heap.
inline dnnl::primitive_attr base_attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

/// Arguments of a primitive in oneDNN's C form, built once at prepare: the
/// C++ execute() copies its argument map into a new vector on every call,
/// and a run must not allocate.
class PrimitiveArgs {
 public:
  /// `node`: the graph node's name, for errors.
  explicit PrimitiveArgs(std::string node) : node_(std::move(node)) {}
  void add(int arg, const dnnl::memory& memory) { args_.push_back({arg, memory.get()}); }
  /// Runs the primitive to completion; throws ravlt::Error naming the node
  /// if oneDNN reports a failure.
  void execute(const dnnl::primitive& primitive, dnnl::stream& stream) const {
    dnnl_status_t status = dnnl_primitive_execute(primitive.get(), stream.get(),
                                                  static_cast<int>(args_.size()), args_.data());
    if (status == dnnl_success) status = dnnl_stream_wait(stream.get());
    if (status != dnnl_success) fail(status);
  }

 private:
  [[noreturn]] void fail(dnnl_status_t status) const {
    throw Error("node '" + node_ + "': oneDNN failed to execute its primitive (status " +
                std::to_string(static_cast<int>(status)) + ")");
  }
  std::string node_;
  std::vector<dnnl_exec_arg_t> args_;
};

using dims = dnnl::memory::dims;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

/// oneDNN's name for a float32 or bfloat16 activation type.
inline dt dnnl_type(DType type) {
  return type == DType::kBFloat16 ? dt::bf16 : dt::f32;
}

/// A view's address for a oneDNN memory handle (which takes void*).
inline void* handle(const void* data) {
  return const_cast<void*>(data);
}

}  // namespace ravlt::runtime::cpu
