#include "runtime/cuda/cublaslt_library.h"

#include <dlfcn.h>

#include <string>

#include "ravlt/error.h"

namespace ravlt::runtime::cuda {
namespace {

CublasLt load() {
  const std::string name = "libcublasLt.so." + std::to_string(CUBLAS_VER_MAJOR);
  void* handle = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    throw Error("cannot load " + name +
                " (cuBLASLt, from the CUDA toolkit): " + (why != nullptr ? why : "not found"));
  }
  CublasLt lib;
#define RAVLT_RESOLVE(fn)                                          \
  lib.fn = reinterpret_cast<decltype(lib.fn)>(dlsym(handle, #fn)); \
  if (lib.fn == nullptr) throw Error(name + " has no function " #fn " (too old?)");
  RAVLT_CUBLASLT_FUNCTIONS(RAVLT_RESOLVE)
#undef RAVLT_RESOLVE
  return lib;  // the handle stays open for the life of the process
}

}  // namespace

const CublasLt& lt() {
  static const CublasLt library = load();  // once, thread-safe; retried if it threw
  return library;
}

}  // namespace ravlt::runtime::cuda
