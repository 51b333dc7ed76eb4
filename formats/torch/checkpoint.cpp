#include "formats/torch/checkpoint.h"

#include <cstring>

#include "base/half_float.h"
#include "formats/torch/global_policy.h"
#include "formats/torch/pickle.h"
#include "formats/torch/zip_archive.h"
#include "ravlt/error.h"

namespace ravlt::torch {
namespace {

// The legacy format's first pickle: this integer, as LONG1 little-endian bytes.
constexpr uint8_t kLegacyMagic[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
constexpr int64_t kLegacyProtocolVersion = 1001;

bool is_tuple_of(const Value& v, size_t min_size) {
  return v.kind == Kind::kTuple && v.items.size() >= min_size;
}

}  // namespace

Checkpoint::~Checkpoint() = default;

std::unique_ptr<Checkpoint> Checkpoint::open(const std::string& path) {
  std::unique_ptr<Checkpoint> c(new Checkpoint());
  c->path_ = path;
  MappedFile probe(path);
  const bool is_zip = probe.size() >= 4 && std::memcmp(probe.data(), "PK\x03\x04", 4) == 0;
  const bool is_pickle = probe.size() >= 2 && probe.data()[0] == 0x80;
  if (is_zip) {
    c->container_ = "zip";
    c->open_zip();
  } else if (is_pickle) {
    c->container_ = "legacy";
    c->mapped_.emplace(std::move(probe));
    c->open_legacy();
  } else {
    throw Error(path + ": not a PyTorch checkpoint (neither a zip archive nor a pickle)");
  }
  return c;
}

Value* Checkpoint::make_storage(const std::string& type_name, const std::string& key,
                                int64_t numel) {
  auto it = storages_.find(key);
  if (it != storages_.end()) {
    if (it->second->storage.type_name != type_name ||
        it->second->storage.numel != static_cast<uint64_t>(numel)) {
      throw Error(path_ + ": storage '" + key +
                  "' is declared twice with different types or sizes");
    }
    return it->second;
  }
  const auto type = storage_type(type_name);
  if (!type) throw Error(path_ + ": '" + type_name + "' is not a storage type");
  if (numel < 0) throw Error(path_ + ": storage '" + key + "' has a negative size");
  Value* s = arena_.make(Kind::kStorage);
  s->storage.key = key;
  s->storage.type_name = type_name;
  s->storage.dtype = type->dtype;
  s->storage.element_size = type->element_size;
  s->storage.numel = static_cast<uint64_t>(numel);
  storages_[key] = s;
  return s;
}

void Checkpoint::open_zip() {
  zip_ = std::make_unique<ZipArchive>(path_);
  // The pickle is <prefix>/data.pkl for a single top-level folder.
  std::optional<uint64_t> pickle_index;
  for (const std::string& name : zip_->names()) {
    const size_t slash = name.find('/');
    if (slash != std::string::npos && name.substr(slash) == "/data.pkl") {
      if (pickle_index) throw Error(path_ + ": zip holds more than one data.pkl");
      zip_prefix_ = name.substr(0, slash + 1);
      pickle_index = zip_->find(name);
    }
  }
  if (!pickle_index)
    throw Error(path_ + ": zip archive has no <name>/data.pkl: not a torch.save file");
  if (auto order = zip_->find(zip_prefix_ + "byteorder")) {
    std::vector<uint8_t> bytes;
    zip_->read(*order, bytes);
    if (std::string(bytes.begin(), bytes.end()) != "little") {
      throw Error(path_ + ": big-endian checkpoints are not supported");
    }
  }
  std::vector<uint8_t> pickle;
  zip_->read(*pickle_index, pickle);

  auto load = [this](const Value& pid) -> Value* {
    // ('storage', storage_type, key, location, numel)
    if (!is_tuple_of(pid, 5) || pid.items[0]->text != "storage" ||
        pid.items[1]->kind != Kind::kGlobal || !pid.items[2]->is_string() ||
        pid.items[4]->kind != Kind::kInt) {
      throw Error(path_ + ": malformed storage reference in data.pkl");
    }
    const std::string& key = pid.items[2]->text;
    Value* s = make_storage(pid.items[1]->text, key, pid.items[4]->integer);
    const std::string entry = zip_prefix_ + "data/" + key;
    const auto index = zip_->find(entry);
    if (!index) throw Error(path_ + ": storage '" + key + "' has no zip entry " + entry);
    const uint64_t want = s->storage.numel * s->storage.element_size;
    if (s->storage.numel > (uint64_t{1} << 50) || zip_->size(*index) != want) {
      throw Error(path_ + ": storage '" + key + "' declares " + std::to_string(s->storage.numel) +
                  " elements (" + std::to_string(want) + " bytes) but its zip entry holds " +
                  std::to_string(zip_->size(*index)) + " bytes");
    }
    return s;
  };
  Unpickler unpickler(pickle, arena_, load, path_ + ": " + zip_prefix_ + "data.pkl");
  root_ = unpickler.load();
}

void Checkpoint::open_legacy() {
  const std::span<const uint8_t> bytes = mapped_->bytes();
  const std::string label = path_ + " (legacy format)";
  Unpickler header(bytes, arena_, nullptr, label);
  const Value* magic = header.load();
  if (magic->kind != Kind::kBigInt ||
      magic->text !=
          std::string(reinterpret_cast<const char*>(kLegacyMagic), sizeof kLegacyMagic)) {
    throw Error(path_ + ": not a PyTorch checkpoint (legacy magic number missing)");
  }
  const Value* protocol = header.load();
  if (protocol->kind != Kind::kInt || protocol->integer != kLegacyProtocolVersion) {
    throw Error(path_ + ": unsupported legacy protocol version");
  }
  const Value* sys_info = header.load();
  if (sys_info->kind == Kind::kDict) {
    for (const auto& [k, v] : sys_info->entries) {
      if (k->text == "little_endian" && v->kind == Kind::kBool && !v->boolean) {
        throw Error(path_ + ": big-endian checkpoints are not supported");
      }
    }
  }
  // view key -> (root key, element offset), resolved once the data is read.
  struct View {
    std::string root;
    int64_t offset;
  };
  std::map<std::string, View> views;
  auto load = [&](const Value& pid) -> Value* {
    // ('storage', storage_type, root_key, location, numel, view_metadata)
    if (!is_tuple_of(pid, 6) || pid.items[0]->text != "storage" ||
        pid.items[1]->kind != Kind::kGlobal || !pid.items[2]->is_string() ||
        pid.items[4]->kind != Kind::kInt) {
      throw Error(label + ": malformed storage reference");
    }
    Value* root = make_storage(pid.items[1]->text, pid.items[2]->text, pid.items[4]->integer);
    const Value& view = *pid.items[5];
    if (view.kind == Kind::kNone) return root;
    if (!is_tuple_of(view, 3) || !view.items[0]->is_string() || view.items[1]->kind != Kind::kInt ||
        view.items[2]->kind != Kind::kInt || view.items[1]->integer < 0 ||
        view.items[2]->integer < 0) {
      throw Error(label + ": malformed storage view");
    }
    const auto offset = static_cast<uint64_t>(view.items[1]->integer);
    const auto size = static_cast<uint64_t>(view.items[2]->integer);
    if (offset > root->storage.numel || size > root->storage.numel - offset) {
      throw Error(label + ": storage view '" + view.items[0]->text + "' lies outside its storage");
    }
    Value* v =
        make_storage(pid.items[1]->text, "view:" + view.items[0]->text, view.items[2]->integer);
    v->storage.element_offset = offset;
    views[v->storage.key] = {root->storage.key, view.items[1]->integer};
    return v;
  };
  Unpickler body(bytes.subspan(header.position()), arena_, load, label);
  root_ = body.load();
  const size_t keys_start = header.position() + body.position();
  Unpickler keys_pickle(bytes.subspan(keys_start), arena_, nullptr, label);
  const Value* keys = keys_pickle.load();
  if (keys->kind != Kind::kList) throw Error(label + ": storage key list missing");
  size_t pos = keys_start + keys_pickle.position();
  for (const Value* key : keys->items) {
    if (!key->is_string()) throw Error(label + ": storage key is not a string");
    auto it = storages_.find(key->text);
    if (it == storages_.end())
      throw Error(label + ": data for unknown storage '" + key->text + "'");
    const StorageInfo& s = it->second->storage;
    if (bytes.size() - pos < 8) throw Error(label + ": truncated at storage '" + key->text + "'");
    uint64_t numel = 0;
    for (int b = 7; b >= 0; --b) numel = numel << 8 | bytes[pos + static_cast<size_t>(b)];
    pos += 8;
    if (numel != s.numel) {
      throw Error(label + ": storage '" + key->text + "' holds " + std::to_string(numel) +
                  " elements, the pickle says " + std::to_string(s.numel));
    }
    const uint64_t length = numel * s.element_size;
    if (numel > (uint64_t{1} << 50) || bytes.size() - pos < length) {
      throw Error(label + ": truncated in the data of storage '" + key->text + "'");
    }
    legacy_data_[key->text] = bytes.subspan(pos, length);
    pos += length;
  }
  for (const auto& [key, storage] : storages_) {
    if (views.count(key)) {
      const View& v = views[key];
      auto root = legacy_data_.find(v.root);
      if (root == legacy_data_.end()) throw Error(label + ": storage '" + v.root + "' has no data");
      const StorageInfo& s = storage->storage;
      legacy_data_[key] =
          root->second.subspan(s.element_offset * s.element_size, s.numel * s.element_size);
    } else if (!legacy_data_.count(key)) {
      throw Error(label + ": storage '" + key + "' has no data");
    }
  }
}

std::span<const uint8_t> Checkpoint::storage_bytes(const StorageInfo& s) const {
  if (container_ == "legacy") return legacy_data_.at(s.key);
  auto it = loaded_.find(s.key);
  if (it == loaded_.end()) {
    const auto index = zip_->find(zip_prefix_ + "data/" + s.key);
    if (!index) throw Error(path_ + ": storage '" + s.key + "' has no zip entry");
    std::vector<uint8_t> bytes;
    zip_->read(*index, bytes);
    if (bytes.size() != s.numel * s.element_size) {
      throw Error(path_ + ": storage '" + s.key + "' has the wrong size");
    }
    it = loaded_.emplace(s.key, std::move(bytes)).first;
  }
  return it->second;
}

std::vector<float> Checkpoint::to_float32(const TensorInfo& t) const {
  const StorageInfo& s = t.storage->storage;
  if (!s.dtype) throw Error(path_ + ": tensors of " + s.type_name + " are not supported");
  const std::span<const uint8_t> bytes = storage_bytes(s);
  const uint64_t numel = t.numel();
  std::vector<float> out(numel);
  if (numel == 0) return out;
  // Contiguous row-major views convert in one call; others walk their strides.
  bool contiguous = true;
  int64_t expected = 1;
  for (size_t i = t.sizes.size(); i-- > 0;) {
    if (t.sizes[i] != 1 && t.strides[i] != expected) contiguous = false;
    expected *= t.sizes[i];
  }
  const size_t esize = s.element_size;
  if (contiguous) {
    convert_to_float32(*s.dtype, bytes.data() + t.offset * esize, out.data(), numel);
    return out;
  }
  std::vector<int64_t> index(t.sizes.size(), 0);
  for (uint64_t n = 0; n < numel; ++n) {
    uint64_t element = t.offset;
    for (size_t d = 0; d < index.size(); ++d)
      element += static_cast<uint64_t>(index[d] * t.strides[d]);
    convert_to_float32(*s.dtype, bytes.data() + element * esize, &out[n], 1);
    for (size_t d = index.size(); d-- > 0;) {
      if (++index[d] < t.sizes[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

}  // namespace ravlt::torch
