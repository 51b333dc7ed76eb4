#include "formats/torch/global_policy.h"

#include <array>
#include <string>

namespace ravlt::torch {
namespace {

// Modules that give a pickle a way to run code, touch files or the network.
// A pickle naming anything in them (or their submodules) is an attack.
constexpr std::array<std::string_view, 27> kHostileModules = {"os",
                                                              "posix",
                                                              "nt",
                                                              "subprocess",
                                                              "_posixsubprocess",
                                                              "sys",
                                                              "shutil",
                                                              "socket",
                                                              "importlib",
                                                              "runpy",
                                                              "pty",
                                                              "ctypes",
                                                              "code",
                                                              "codeop",
                                                              "pickle",
                                                              "_pickle",
                                                              "cPickle",
                                                              "marshal",
                                                              "webbrowser",
                                                              "multiprocessing",
                                                              "commands",
                                                              "platform",
                                                              "signal",
                                                              "asyncio",
                                                              "torch.hub",
                                                              "torch.utils.cpp_extension",
                                                              "numpy.f2py"};

// builtins that evaluate code, import modules, open files or mutate objects.
// builtins.getattr is not here: schedulers pickle bound methods through it,
// and an inert placeholder of it is harmless.
constexpr std::array<std::string_view, 16> kHostileBuiltins = {
    "eval",    "exec",    "execfile", "compile", "__import__", "open",  "input", "breakpoint",
    "setattr", "delattr", "globals",  "locals",  "vars",       "apply", "exit",  "quit"};

// Single functions outside those modules that load or run code.
constexpr std::array<std::string_view, 6> kHostileFunctions = {
    "torch.load",
    "torch.jit.load",
    "numpy.load",
    "numpy.loadtxt",
    "numpy.testing._private.utils.runstring",
    "torch.serialization.load"};

bool in_module(std::string_view module, std::string_view root) {
  return module == root || (module.size() > root.size() && module.substr(0, root.size()) == root &&
                            module[root.size()] == '.');
}

}  // namespace

GlobalRole classify_global(std::string_view module, std::string_view name) {
  for (std::string_view m : kHostileModules) {
    if (in_module(module, m)) return GlobalRole::kHostile;
  }
  if (module == "builtins" || module == "__builtin__") {
    for (std::string_view f : kHostileBuiltins) {
      if (name == f) return GlobalRole::kHostile;
    }
  }
  const std::string qualified = std::string(module) + "." + std::string(name);
  for (std::string_view f : kHostileFunctions) {
    if (qualified == f) return GlobalRole::kHostile;
  }
  if (module == "torch._utils") {
    if (name == "_rebuild_tensor_v2" || name == "_rebuild_tensor")
      return GlobalRole::kRebuildTensor;
    if (name == "_rebuild_parameter" || name == "_rebuild_parameter_with_state") {
      return GlobalRole::kRebuildParameter;
    }
  }
  if (module == "collections" && name == "OrderedDict") return GlobalRole::kOrderedDict;
  if (storage_type(qualified)) return GlobalRole::kStorageType;
  return GlobalRole::kInert;
}

std::optional<StorageType> storage_type(std::string_view qualified_name) {
  struct Entry {
    std::string_view name;
    StorageType type;
  };
  static constexpr Entry kTypes[] = {
      {"torch.FloatStorage", {4, DType::kFloat32}},
      {"torch.HalfStorage", {2, DType::kFloat16}},
      {"torch.BFloat16Storage", {2, DType::kBFloat16}},
      {"torch.LongStorage", {8, DType::kInt64}},
      {"torch.DoubleStorage", {8, std::nullopt}},
      {"torch.IntStorage", {4, std::nullopt}},
      {"torch.ShortStorage", {2, std::nullopt}},
      {"torch.CharStorage", {1, std::nullopt}},
      {"torch.ByteStorage", {1, std::nullopt}},
      {"torch.BoolStorage", {1, std::nullopt}},
      {"torch.ComplexFloatStorage", {8, std::nullopt}},
      {"torch.ComplexDoubleStorage", {16, std::nullopt}},
  };
  for (const Entry& e : kTypes) {
    if (e.name == qualified_name) return e.type;
  }
  return std::nullopt;
}

}  // namespace ravlt::torch
