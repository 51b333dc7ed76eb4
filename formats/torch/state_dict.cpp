#include "formats/torch/state_dict.h"

#include <unordered_set>

#include "ravlt/error.h"

namespace ravlt::torch {
namespace {

bool holds_only_tensors(const Value& dict) {
  if (dict.entries.empty()) return false;
  for (const auto& [k, v] : dict.entries) {
    if (!k->is_string() || v->kind != Kind::kTensor) return false;
  }
  return true;
}

const Value* find_entry(const Value& dict, const std::string& key) {
  for (const auto& [k, v] : dict.entries) {
    if (k->is_string() && k->text == key) return v;
  }
  return nullptr;
}

std::string entry_names(const Value& dict) {
  std::string names;
  for (const auto& [k, v] : dict.entries) {
    if (!k->is_string()) continue;
    names += (names.empty() ? "" : ", ") + k->text;
  }
  return names.empty() ? "none" : names;
}

}  // namespace

StateDict extract_state_dict(const Checkpoint& checkpoint, const std::string& entry) {
  const std::string& path = checkpoint.path();
  const Value& root = checkpoint.root();
  if (root.kind != Kind::kDict) {
    throw Error(path + ": holds " + root.describe() + ", not a dict of tensors");
  }
  StateDict result;
  const Value* dict = &root;
  if (!entry.empty() || !holds_only_tensors(root)) {
    result.source = entry;
    if (result.source.empty()) {
      const bool mmcv = find_entry(root, "model") == nullptr && find_entry(root, "state_dict");
      result.source = mmcv ? "state_dict" : "model";
    }
    dict = find_entry(root, result.source);
    if (dict == nullptr) {
      throw Error(path + ": has no entry '" + result.source + "' (entries: " + entry_names(root) +
                  ")");
    }
    if (dict->kind != Kind::kDict) {
      throw Error(path + ": entry '" + result.source + "' holds " + dict->describe() +
                  ", not a state dict");
    }
  }
  const std::string where = result.source.empty() ? "state dict" : "'" + result.source + "'";
  if (dict->entries.empty()) throw Error(path + ": " + where + " is empty");

  bool all_prefixed = true;
  for (const auto& [k, v] : dict->entries) {
    if (!k->is_string()) throw Error(path + ": " + where + " has a key that is " + k->describe());
    if (v->kind != Kind::kTensor) {
      throw Error(path + ": " + where + " key '" + k->text + "' holds " + v->describe() +
                  ", not a tensor");
    }
    all_prefixed = all_prefixed && k->text.rfind("module.", 0) == 0;
  }
  result.stripped_module_prefix = all_prefixed;
  std::unordered_set<std::string> seen;
  for (const auto& [k, v] : dict->entries) {
    std::string name = all_prefixed ? k->text.substr(7) : k->text;
    if (!seen.insert(name).second) throw Error(path + ": key '" + name + "' appears twice");
    result.tensors.push_back({std::move(name), &v->tensor});
  }
  return result;
}

MmcvMeta read_mmcv_meta(const Checkpoint& checkpoint) {
  MmcvMeta meta;
  const Value& root = checkpoint.root();
  const Value* m = root.kind == Kind::kDict ? find_entry(root, "meta") : nullptr;
  if (m == nullptr || m->kind != Kind::kDict) return meta;
  for (const char* key : {"mmdet_version", "mmseg_version"}) {
    const Value* version = find_entry(*m, key);
    if (version != nullptr && version->is_string()) {
      meta.framework =
          std::string(key[2] == 'd' ? "mmdetection " : "mmsegmentation ") + version->text;
    }
  }
  const Value* classes = find_entry(*m, "CLASSES");
  if (classes == nullptr || classes->kind == Kind::kNone) return meta;
  if (classes->kind != Kind::kTuple && classes->kind != Kind::kList) {
    throw Error(checkpoint.path() + ": meta.CLASSES holds " + classes->describe() +
                ", not a tuple of class names");
  }
  for (const Value* c : classes->items) {
    if (!c->is_string()) {
      throw Error(checkpoint.path() + ": meta.CLASSES holds " + c->describe() +
                  " among its class names");
    }
    meta.classes.push_back(c->text);
  }
  return meta;
}

}  // namespace ravlt::torch
