#include <doctest/doctest.h>

#include <string>

#include "formats/torch/global_policy.h"
#include "formats/torch/pickle.h"
#include "ravlt/error.h"

using namespace ravlt;
using namespace ravlt::torch;
using namespace std::string_literals;  // literals keep embedded NULs

namespace {

// Runs the unpickler on `bytes`; persistent ids resolve to a float32
// storage of `storage_numel` elements.
struct Harness {
  ValueArena arena;
  uint64_t storage_numel = 6;
  Value* load(const std::string& bytes) {
    auto loader = [this](const Value&) {
      Value* s = arena.make(Kind::kStorage);
      s->storage.key = "0";
      s->storage.type_name = "torch.FloatStorage";
      s->storage.dtype = DType::kFloat32;
      s->storage.element_size = 4;
      s->storage.numel = storage_numel;
      return s;
    };
    std::span<const uint8_t> data(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    Unpickler u(data, arena, loader, "test.pkl");
    return u.load();
  }
};

// BINUNICODE: a string (written as a helper: a hex escape followed by a
// letter a-f would swallow the letter).
std::string u(const std::string& text) {
  std::string s = "X";
  for (int b = 0; b < 4; ++b) s += static_cast<char>((text.size() >> (8 * b)) & 0xff);
  return s + text;
}

std::string error_of(const std::string& bytes) {
  Harness h;
  try {
    h.load(bytes);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// _rebuild_tensor_v2(storage, offset, (2, 2), (2, 1), False, OrderedDict())
std::string tensor_pickle(int offset) {
  return std::string("\x80\x02") + "ctorch._utils\n_rebuild_tensor_v2\n" + "(" + "NQ" + "K" +
         static_cast<char>(offset) + "K\x02K\x02\x86" + "K\x02K\x01\x86" + "\x89" +
         "ccollections\nOrderedDict\n)R" + "tR.";
}

}  // namespace

TEST_CASE("plain values: ints, floats, strings, containers, memo") {
  Harness h;
  // {'a': [1, -2, 300000], 'b': 'xyz', 'c': 1.5, 'd': (True, None)} with memo reuse
  const std::string p = std::string("\x80\x02}q\x00("s) + u("a") + "]q\x01(K\x01J\xfe\xff\xff\xff" +
                        "J\xe0\x93\x04\x00"s + "e" + u("b") + u("xyz") + u("c") +
                        "G\x3f\xf8\x00\x00\x00\x00\x00\x00"s + u("d") + "\x88N\x86" + u("e") +
                        "h\x01u.";
  const Value* v = h.load(p);
  REQUIRE(v->kind == Kind::kDict);
  REQUIRE(v->entries.size() == 5);
  const Value* list = v->entries[0].second;
  REQUIRE(list->kind == Kind::kList);
  REQUIRE(list->items.size() == 3);
  CHECK(list->items[0]->integer == 1);
  CHECK(list->items[1]->integer == -2);
  CHECK(list->items[2]->integer == 300000);
  CHECK(v->entries[1].second->text == "xyz");
  CHECK(v->entries[2].second->real == 1.5);
  CHECK(v->entries[3].second->kind == Kind::kTuple);
  CHECK(v->entries[3].second->items[0]->boolean);
  CHECK(v->entries[4].second == list);  // memo: the same object, not a copy
}

TEST_CASE("LONG1 integers: negative, and wider than 64 bits") {
  Harness h;
  const Value* v = h.load("\x80\x02\x8a\x02\x00\xff."s);
  CHECK(v->integer == -256);
  v = h.load(std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15));
  CHECK(v->kind == Kind::kBigInt);
  CHECK(v->text.size() == 10);
}

TEST_CASE("tensor rebuild: a view inside its storage is accepted") {
  Harness h;
  const Value* t = h.load(tensor_pickle(2));
  REQUIRE(t->kind == Kind::kTensor);
  CHECK(t->tensor.offset == 2);
  CHECK(t->tensor.sizes == std::vector<int64_t>{2, 2});
  CHECK(t->tensor.strides == std::vector<int64_t>{2, 1});
  CHECK(t->tensor.numel() == 4);
}

TEST_CASE("tensor rebuild: a view past the end of its storage is refused") {
  const std::string e = error_of(tensor_pickle(3));
  CHECK(e.find("view reaches element 6 of a storage of 6 elements") != std::string::npos);
}

TEST_CASE("tensor rebuild: negative or overflowing sizes and strides are refused") {
  // size (-1,)
  std::string p = std::string("\x80\x02") + "ctorch._utils\n_rebuild_tensor_v2\n(NQK\x00"s +
                  "J\xff\xff\xff\xff\x85" + "K\x01\x85" + "\x89}tR.";
  CHECK(error_of(p).find("non-negative") != std::string::npos);
  // size (2**62, 4) with stride (4, 1): extent overflows 64 bits
  p = std::string("\x80\x02") + "ctorch._utils\n_rebuild_tensor_v2\n(NQK\x00"s +
      "\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x40"s + "K\x04\x86" +
      "\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x40"s + "K\x01\x86" + "\x89}tR.";
  CHECK(error_of(p).find("overflows") != std::string::npos);
}

TEST_CASE("hostile globals are refused through GLOBAL, STACK_GLOBAL and INST") {
  CHECK(error_of("\x80\x02"
                 "cos\nsystem\nX\x02\x00\x00\x00lsR."s)
            .find("os.system") != std::string::npos);
  CHECK(error_of("\x80\x02"
                 "cposix\nsystem\n.")
            .find("posix.system") != std::string::npos);
  CHECK(error_of("\x80\x04" + u("builtins") + u("eval") + "\x93.").find("builtins.eval") !=
        std::string::npos);
  CHECK(error_of("(S'ls'\nisubprocess\nPopen\n.").find("subprocess.Popen") != std::string::npos);
  // Python 2 module names are mapped as Python 3 maps them.
  CHECK(error_of("\x80\x02"
                 "c__builtin__\nexec\n.")
            .find("builtins.exec") != std::string::npos);
  const std::string e = error_of(
      "\x80\x02"
      "cbuiltins\n__import__\n.");
  CHECK(e.find("refused") != std::string::npos);
  CHECK(e.find("test.pkl") != std::string::npos);  // the source is named
}

TEST_CASE("inert globals become placeholders, never called") {
  Harness h;
  // getattr(argparse.Namespace(), 'x') and a nested REDUCE chain
  const std::string p = std::string("\x80\x02") + "c__builtin__\ngetattr\n" +
                        "cargparse\nNamespace\n)\x81" + "X\x01\x00\x00\x00x\x86R."s;
  const Value* v = h.load(p);
  REQUIRE(v->kind == Kind::kObject);
  CHECK(v->text == "builtins.getattr");
  REQUIRE(v->items.size() == 1);
  CHECK(v->items[0]->items[0]->text == "argparse.Namespace");
  CHECK(classify_global("collections", "defaultdict") == GlobalRole::kInert);
  CHECK(classify_global("torch.optim.adamw", "AdamW") == GlobalRole::kInert);
  CHECK(classify_global("os.path", "join") == GlobalRole::kHostile);
  CHECK(classify_global("torch._utils", "_rebuild_tensor_v2") == GlobalRole::kRebuildTensor);
}

TEST_CASE("nesting 100000 deep does not exhaust the stack") {
  Harness h;
  std::string p = "\x80\x02";
  for (int i = 0; i < 100000; ++i) p += "]";
  for (int i = 0; i < 99999; ++i) p += "a";
  p += ".";
  const Value* v = h.load(p);
  CHECK(v->kind == Kind::kList);
  std::string deep = "\x80\x02";
  for (int i = 0; i < 100000; ++i) deep += "(";
  deep += ".";
  CHECK(error_of(deep).find("underflow") != std::string::npos);
}

TEST_CASE("malformed pickles give errors, not crashes") {
  CHECK(error_of("\x80\x02h\x05.").find("memo entry 5 was never stored") != std::string::npos);
  CHECK(error_of("\x80\x02X\xff\x00\x00\x00"s + "ab").find("truncated") != std::string::npos);
  CHECK(error_of("\x80\x02").find("truncated") != std::string::npos);
  CHECK(error_of("\x80\x02.").find("underflow") != std::string::npos);
  CHECK(error_of("\x80\x02\xff.").find("unknown opcode 0xff") != std::string::npos);
  CHECK(error_of("\x80\x02K\x01K\x02.").find("left on the stack") != std::string::npos);
  CHECK(error_of("\x80\x02K\x01s.").find("underflow") != std::string::npos);
  CHECK(error_of("\x80\x02K\x01K\x02K\x03s.").find("setting items on an int") != std::string::npos);
  CHECK(error_of("\x80\x02\x82\x01.").find("extension") != std::string::npos);
  CHECK(error_of("\x80\x09.").find("protocol") != std::string::npos);
  CHECK(error_of("\x80\x02"
                 "cos\nsys")
            .find("truncated") != std::string::npos);
}
