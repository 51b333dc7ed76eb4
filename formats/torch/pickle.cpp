#include "formats/torch/pickle.h"

#include <charconv>
#include <cstring>
#include <unordered_map>

#include "formats/little_endian.h"
#include "formats/torch/global_policy.h"
#include "ravlt/error.h"

namespace ravlt::torch {
namespace {

// Opcodes of pickle protocols 0-5 (Python's Lib/pickletools.py).
enum Op : uint8_t {
  MARK = '(',
  STOP = '.',
  POP = '0',
  POP_MARK = '1',
  DUP = '2',
  FLOAT = 'F',
  INT = 'I',
  BININT = 'J',
  BININT1 = 'K',
  LONG = 'L',
  BININT2 = 'M',
  NONE = 'N',
  PERSID = 'P',
  BINPERSID = 'Q',
  REDUCE = 'R',
  STRING = 'S',
  BINSTRING = 'T',
  SHORT_BINSTRING = 'U',
  UNICODE = 'V',
  BINUNICODE = 'X',
  APPEND = 'a',
  BUILD = 'b',
  GLOBAL = 'c',
  DICT = 'd',
  EMPTY_DICT = '}',
  APPENDS = 'e',
  GET = 'g',
  BINGET = 'h',
  INST = 'i',
  LONG_BINGET = 'j',
  LIST = 'l',
  EMPTY_LIST = ']',
  OBJ = 'o',
  PUT = 'p',
  BINPUT = 'q',
  LONG_BINPUT = 'r',
  SETITEM = 's',
  TUPLE = 't',
  EMPTY_TUPLE = ')',
  SETITEMS = 'u',
  BINFLOAT = 'G',
  PROTO = 0x80,
  NEWOBJ = 0x81,
  EXT1 = 0x82,
  EXT2 = 0x83,
  EXT4 = 0x84,
  TUPLE1 = 0x85,
  TUPLE2 = 0x86,
  TUPLE3 = 0x87,
  NEWTRUE = 0x88,
  NEWFALSE = 0x89,
  LONG1 = 0x8a,
  LONG4 = 0x8b,
  BINBYTES = 'B',
  SHORT_BINBYTES = 'C',
  SHORT_BINUNICODE = 0x8c,
  BINUNICODE8 = 0x8d,
  BINBYTES8 = 0x8e,
  EMPTY_SET = 0x8f,
  ADDITEMS = 0x90,
  FROZENSET = 0x91,
  NEWOBJ_EX = 0x92,
  STACK_GLOBAL = 0x93,
  MEMOIZE = 0x94,
  FRAME = 0x95,
  BYTEARRAY8 = 0x96,
  NEXT_BUFFER = 0x97,
  READONLY_BUFFER = 0x98,
};

std::string qualified(const Value& global) {
  return global.text;
}

}  // namespace

Unpickler::Unpickler(std::span<const uint8_t> data, ValueArena& arena,
                     PersistentLoader persistent_load, std::string source)
    : data_(data),
      arena_(arena),
      persistent_load_(std::move(persistent_load)),
      source_(std::move(source)) {}

void Unpickler::fail(const std::string& what) const {
  throw Error(source_ + ": " + what + " (pickle byte " + std::to_string(opcode_pos_) + ")");
}

const uint8_t* Unpickler::take(size_t n) {
  if (n > data_.size() - pos_) fail("truncated pickle");
  const uint8_t* p = data_.data() + pos_;
  pos_ += n;
  return p;
}

uint8_t Unpickler::u8() {
  return *take(1);
}

uint64_t Unpickler::uint_le(size_t n) {
  return load_le(take(n), n);
}

std::string_view Unpickler::line() {
  const size_t start = pos_;
  const void* nl = std::memchr(data_.data() + pos_, '\n', data_.size() - pos_);
  if (nl == nullptr) fail("truncated pickle (unterminated line)");
  const size_t end = static_cast<size_t>(static_cast<const uint8_t*>(nl) - data_.data());
  pos_ = end + 1;
  return {reinterpret_cast<const char*>(data_.data() + start), end - start};
}

Value* Unpickler::pop() {
  if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) {
    fail("stack underflow");
  }
  Value* v = stack_.back();
  stack_.pop_back();
  return v;
}

Value* Unpickler::top() {
  if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) {
    fail("stack underflow");
  }
  return stack_.back();
}

std::vector<Value*> Unpickler::pop_mark() {
  if (marks_.empty()) fail("no mark on the stack");
  const size_t mark = marks_.back();
  marks_.pop_back();
  std::vector<Value*> items(stack_.begin() + static_cast<ptrdiff_t>(mark), stack_.end());
  stack_.resize(mark);
  return items;
}

Value* Unpickler::make_global(std::string_view raw_module, std::string_view name) {
  // Protocol 0-2 pickles name modules as Python 2 did; Python 3 maps them
  // back on load (fix_imports), and so do we, so that names read as Python 3's.
  static constexpr std::pair<std::string_view, std::string_view> kPython2Modules[] = {
      {"__builtin__", "builtins"}, {"copy_reg", "copyreg"},    {"commands", "subprocess"},
      {"cPickle", "pickle"},       {"exceptions", "builtins"}, {"UserDict", "collections"},
  };
  std::string_view module = raw_module;
  for (const auto& [old_name, new_name] : kPython2Modules) {
    if (module == old_name) module = new_name;
  }
  const GlobalRole role = classify_global(module, name);
  const std::string full = std::string(module) + "." + std::string(name);
  if (role == GlobalRole::kHostile) {
    fail("refused: the pickle names " + full + ", which only an attack would use");
  }
  Value* g = arena_.make(Kind::kGlobal);
  g->text = full;
  return g;
}

Value* Unpickler::rebuild_tensor(const Value& args) {
  if (args.kind != Kind::kTuple || args.items.size() < 4) {
    fail("tensor rebuild expects (storage, offset, size, stride, ...)");
  }
  const Value& storage = *args.items[0];
  const Value& offset = *args.items[1];
  const Value& sizes = *args.items[2];
  const Value& strides = *args.items[3];
  if (storage.kind != Kind::kStorage) fail("tensor rebuild: first argument is not a storage");
  if (offset.kind != Kind::kInt || offset.integer < 0)
    fail("tensor rebuild: invalid storage offset");
  if (sizes.kind != Kind::kTuple || strides.kind != Kind::kTuple ||
      sizes.items.size() != strides.items.size()) {
    fail("tensor rebuild: size and stride must be tuples of equal length");
  }
  if (sizes.items.size() > 16) fail("tensor rebuild: rank above 16");
  Value* t = arena_.make(Kind::kTensor);
  TensorInfo& info = t->tensor;
  info.storage = &storage;
  info.offset = static_cast<uint64_t>(offset.integer);
  // Prove the view lies inside its storage: offset + sum((size-1)*stride) < numel,
  // with every product and sum checked for overflow.
  uint64_t numel = 1;
  uint64_t last = info.offset;
  bool empty = false;
  for (size_t i = 0; i < sizes.items.size(); ++i) {
    const Value& s = *sizes.items[i];
    const Value& st = *strides.items[i];
    if (s.kind != Kind::kInt || st.kind != Kind::kInt || s.integer < 0 || st.integer < 0) {
      fail("tensor rebuild: sizes and strides must be non-negative integers");
    }
    info.sizes.push_back(s.integer);
    info.strides.push_back(st.integer);
    const auto size = static_cast<uint64_t>(s.integer);
    const auto stride = static_cast<uint64_t>(st.integer);
    if (size == 0) {
      empty = true;
      continue;
    }
    if (__builtin_mul_overflow(numel, size, &numel))
      fail("tensor rebuild: element count overflows");
    uint64_t reach;
    if (__builtin_mul_overflow(size - 1, stride, &reach) ||
        __builtin_add_overflow(last, reach, &last)) {
      fail("tensor rebuild: view extent overflows");
    }
  }
  if (!empty && last >= storage.storage.numel) {
    fail("tensor rebuild: view reaches element " + std::to_string(last) + " of a storage of " +
         std::to_string(storage.storage.numel) + " elements");
  }
  return t;
}

Value* Unpickler::call(Value* callable, Value* args) {
  if (callable->kind == Kind::kGlobal) {
    const size_t dot = callable->text.rfind('.');
    const GlobalRole role = classify_global(std::string_view(callable->text).substr(0, dot),
                                            std::string_view(callable->text).substr(dot + 1));
    switch (role) {
      case GlobalRole::kRebuildTensor:
        return rebuild_tensor(*args);
      case GlobalRole::kRebuildParameter:
        if (args->kind != Kind::kTuple || args->items.empty() ||
            args->items[0]->kind != Kind::kTensor) {
          fail("parameter rebuild expects a tensor");
        }
        return args->items[0];
      case GlobalRole::kOrderedDict: {
        Value* d = arena_.make(Kind::kDict);
        // OrderedDict(iterable of pairs) is the only argument form torch writes.
        if (args->kind == Kind::kTuple && args->items.size() == 1 &&
            args->items[0]->kind == Kind::kList) {
          for (Value* pair : args->items[0]->items) {
            if ((pair->kind != Kind::kTuple && pair->kind != Kind::kList) ||
                pair->items.size() != 2) {
              fail("OrderedDict expects key-value pairs");
            }
            d->entries.emplace_back(pair->items[0], pair->items[1]);
          }
        }
        return d;
      }
      default:
        break;
    }
  }
  Value* o = arena_.make(Kind::kObject);
  o->text = callable->kind == Kind::kGlobal || callable->kind == Kind::kObject
                ? qualified(*callable)
                : "calling " + callable->describe();
  if (args != nullptr) o->items.push_back(args);
  return o;
}

Value* Unpickler::load() {
  stack_.clear();
  marks_.clear();
  std::unordered_map<uint64_t, Value*> memo;
  auto memo_get = [&](uint64_t index) {
    auto it = memo.find(index);
    if (it == memo.end()) fail("memo entry " + std::to_string(index) + " was never stored");
    stack_.push_back(it->second);
  };
  auto push_int = [&](int64_t v) {
    Value* x = arena_.make(Kind::kInt);
    x->integer = v;
    stack_.push_back(x);
  };
  auto push_text = [&](Kind kind, size_t n) {
    Value* x = arena_.make(kind);
    const uint8_t* p = take(n);
    x->text.assign(reinterpret_cast<const char*>(p), n);
    stack_.push_back(x);
  };
  auto push_long = [&](size_t n) {
    const uint8_t* p = take(n);
    if (n <= 8) {
      uint64_t v = load_le(p, n);
      if (n > 0 && n < 8 && (p[n - 1] & 0x80)) v |= ~uint64_t{0} << (8 * n);  // sign-extend
      push_int(static_cast<int64_t>(v));
    } else {
      Value* x = arena_.make(Kind::kBigInt);
      x->text.assign(reinterpret_cast<const char*>(p), n);
      stack_.push_back(x);
    }
  };
  auto set_items = [&](Value* target, const std::vector<Value*>& kv) {
    if (kv.size() % 2 != 0) fail("odd number of items for a dict");
    if (target->kind != Kind::kDict && target->kind != Kind::kObject) {
      fail("setting items on " + target->describe());
    }
    for (size_t i = 0; i < kv.size(); i += 2) target->entries.emplace_back(kv[i], kv[i + 1]);
  };
  auto append_items = [&](Value* target, const std::vector<Value*>& items) {
    if (target->kind != Kind::kList && target->kind != Kind::kObject &&
        target->kind != Kind::kSet) {
      fail("appending to " + target->describe());
    }
    target->items.insert(target->items.end(), items.begin(), items.end());
  };
  auto make_tuple = [&](std::vector<Value*> items) {
    Value* t = arena_.make(Kind::kTuple);
    t->items = std::move(items);
    stack_.push_back(t);
  };

  while (true) {
    opcode_pos_ = pos_;
    const uint8_t op = u8();
    switch (op) {
      case PROTO:
        if (u8() > 5) fail("pickle protocol above 5");
        break;
      case FRAME:
        take(0);
        uint_le(8);  // frames only group opcodes; the length is advisory
        break;
      case STOP: {
        Value* result = pop();
        if (!stack_.empty() || !marks_.empty()) fail("values left on the stack at STOP");
        return result;
      }
      case MARK:
        marks_.push_back(stack_.size());
        break;
      case POP:
        if (!marks_.empty() && stack_.size() == marks_.back()) {
          marks_.pop_back();  // POP of a mark, as Python's unpickler allows
        } else {
          pop();
        }
        break;
      case POP_MARK:
        pop_mark();
        break;
      case DUP:
        stack_.push_back(top());
        break;
      case NONE:
        stack_.push_back(arena_.make(Kind::kNone));
        break;
      case NEWTRUE:
      case NEWFALSE: {
        Value* b = arena_.make(Kind::kBool);
        b->boolean = op == NEWTRUE;
        stack_.push_back(b);
        break;
      }
      case BININT:
        push_int(static_cast<int32_t>(static_cast<uint32_t>(uint_le(4))));
        break;
      case BININT1:
        push_int(static_cast<int64_t>(uint_le(1)));
        break;
      case BININT2:
        push_int(static_cast<int64_t>(uint_le(2)));
        break;
      case LONG1:
        push_long(u8());
        break;
      case LONG4: {
        const uint64_t n = uint_le(4);
        if (n > 0x7fffffffu) fail("negative LONG4 length");
        push_long(static_cast<size_t>(n));
        break;
      }
      case INT:
      case LONG: {
        std::string_view s = line();
        if (!s.empty() && s.back() == 'L') s.remove_suffix(1);
        if (s == "01" || s == "00") {  // protocol 0 booleans
          Value* b = arena_.make(Kind::kBool);
          b->boolean = s == "01";
          stack_.push_back(b);
          break;
        }
        int64_t v = 0;
        const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
        if (r.ec != std::errc() || r.ptr != s.data() + s.size()) fail("invalid integer literal");
        push_int(v);
        break;
      }
      case BINFLOAT: {
        const uint64_t bits = uint_le(8);
        uint64_t swapped = __builtin_bswap64(bits);  // BINFLOAT is big-endian
        Value* f = arena_.make(Kind::kFloat);
        std::memcpy(&f->real, &swapped, 8);
        stack_.push_back(f);
        break;
      }
      case FLOAT: {
        const std::string s(line());
        Value* f = arena_.make(Kind::kFloat);
        char* end = nullptr;
        f->real = std::strtod(s.c_str(), &end);
        if (end != s.c_str() + s.size()) fail("invalid float literal");
        stack_.push_back(f);
        break;
      }
      case SHORT_BINUNICODE:
        push_text(Kind::kString, u8());
        break;
      case BINUNICODE:
        push_text(Kind::kString, uint_le(4));
        break;
      case BINUNICODE8:
        push_text(Kind::kString, uint_le(8));
        break;
      case SHORT_BINSTRING:
      case SHORT_BINBYTES:
        push_text(op == SHORT_BINBYTES ? Kind::kBytes : Kind::kString, u8());
        break;
      case BINSTRING:
      case BINBYTES:
        push_text(op == BINBYTES ? Kind::kBytes : Kind::kString, uint_le(4));
        break;
      case BINBYTES8:
      case BYTEARRAY8:
        push_text(Kind::kBytes, uint_le(8));
        break;
      case STRING:
      case UNICODE: {
        // Protocol 0 text: kept as written (quotes and escapes are not needed
        // for any value the engine reads).
        Value* x = arena_.make(Kind::kString);
        x->text = std::string(line());
        stack_.push_back(x);
        break;
      }
      case EMPTY_TUPLE:
        make_tuple({});
        break;
      case TUPLE1: {
        Value* a = pop();
        make_tuple({a});
        break;
      }
      case TUPLE2: {
        Value* b = pop();
        Value* a = pop();
        make_tuple({a, b});
        break;
      }
      case TUPLE3: {
        Value* c = pop();
        Value* b = pop();
        Value* a = pop();
        make_tuple({a, b, c});
        break;
      }
      case TUPLE:
        make_tuple(pop_mark());
        break;
      case EMPTY_LIST:
        stack_.push_back(arena_.make(Kind::kList));
        break;
      case LIST: {
        Value* l = arena_.make(Kind::kList);
        l->items = pop_mark();
        stack_.push_back(l);
        break;
      }
      case APPEND: {
        Value* v = pop();
        append_items(top(), {v});
        break;
      }
      case APPENDS: {
        std::vector<Value*> items = pop_mark();
        append_items(top(), items);
        break;
      }
      case EMPTY_DICT:
        stack_.push_back(arena_.make(Kind::kDict));
        break;
      case DICT: {
        Value* d = arena_.make(Kind::kDict);
        set_items(d, pop_mark());
        stack_.push_back(d);
        break;
      }
      case SETITEM: {
        Value* v = pop();
        Value* k = pop();
        set_items(top(), {k, v});
        break;
      }
      case SETITEMS: {
        std::vector<Value*> kv = pop_mark();
        set_items(top(), kv);
        break;
      }
      case EMPTY_SET:
        stack_.push_back(arena_.make(Kind::kSet));
        break;
      case ADDITEMS: {
        std::vector<Value*> items = pop_mark();
        append_items(top(), items);
        break;
      }
      case FROZENSET: {
        Value* s = arena_.make(Kind::kSet);
        s->items = pop_mark();
        stack_.push_back(s);
        break;
      }
      case GLOBAL: {
        const std::string module(line());
        const std::string name(line());
        stack_.push_back(make_global(module, name));
        break;
      }
      case STACK_GLOBAL: {
        Value* name = pop();
        Value* module = pop();
        if (!module->is_string() || !name->is_string()) fail("STACK_GLOBAL needs two strings");
        stack_.push_back(make_global(module->text, name->text));
        break;
      }
      case INST: {
        const std::string module(line());
        const std::string name(line());
        Value* cls = make_global(module, name);
        Value* args = arena_.make(Kind::kTuple);
        args->items = pop_mark();
        stack_.push_back(call(cls, args));
        break;
      }
      case OBJ: {
        std::vector<Value*> items = pop_mark();
        if (items.empty()) fail("OBJ without a class");
        Value* args = arena_.make(Kind::kTuple);
        args->items.assign(items.begin() + 1, items.end());
        stack_.push_back(call(items[0], args));
        break;
      }
      case REDUCE: {
        Value* args = pop();
        Value* callable = pop();
        stack_.push_back(call(callable, args));
        break;
      }
      case NEWOBJ: {
        Value* args = pop();
        Value* cls = pop();
        stack_.push_back(call(cls, args));
        break;
      }
      case NEWOBJ_EX: {
        pop();  // kwargs
        Value* args = pop();
        Value* cls = pop();
        stack_.push_back(call(cls, args));
        break;
      }
      case BUILD: {
        Value* state = pop();
        Value* target = top();
        // Object state is recorded, never applied; tensors and dicts ignore it.
        if (target->kind == Kind::kObject) target->state = state;
        break;
      }
      case PERSID: {
        Value* pid = arena_.make(Kind::kString);
        pid->text = std::string(line());
        stack_.push_back(persistent_load_ ? persistent_load_(*pid) : pid);
        break;
      }
      case BINPERSID: {
        Value* pid = pop();
        if (!persistent_load_) fail("persistent id in a pickle that may not have one");
        stack_.push_back(persistent_load_(*pid));
        break;
      }
      case PUT: {
        const std::string_view s = line();
        uint64_t index = 0;
        const auto r = std::from_chars(s.data(), s.data() + s.size(), index);
        if (r.ec != std::errc()) fail("invalid PUT index");
        memo[index] = top();
        break;
      }
      case BINPUT:
        memo[uint_le(1)] = top();
        break;
      case LONG_BINPUT:
        memo[uint_le(4)] = top();
        break;
      case MEMOIZE:
        memo[memo.size()] = top();
        break;
      case GET: {
        const std::string_view s = line();
        uint64_t index = 0;
        const auto r = std::from_chars(s.data(), s.data() + s.size(), index);
        if (r.ec != std::errc()) fail("invalid GET index");
        memo_get(index);
        break;
      }
      case BINGET:
        memo_get(uint_le(1));
        break;
      case LONG_BINGET:
        memo_get(uint_le(4));
        break;
      case EXT1:
      case EXT2:
      case EXT4:
        fail("extension registry opcodes are not supported");
      case NEXT_BUFFER:
      case READONLY_BUFFER:
        fail("out-of-band buffers are not supported");
      default:
        fail("unknown opcode 0x" + std::string(1, "0123456789abcdef"[op >> 4]) +
             std::string(1, "0123456789abcdef"[op & 15]));
    }
  }
}

}  // namespace ravlt::torch
