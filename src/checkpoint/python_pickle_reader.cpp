// A pickle machine for the opcodes torch.save's protocol 2 uses (and the common ones of
// protocols 3-5). Python callables are not run: the few a checkpoint holds are known here
// (tensor rebuilding, OrderedDict, torch.Size, ...); any other class is read as data, as
// python_value.h says (an instance as its attribute dict, an enum member as its value).
#include <algorithm>
#include <bit>
#include <cstring>
#include <map>
#include <unordered_map>

#include <torch/torch.h>

#include <deepspeed/errors.h>

#include "checkpoint/ivalue_conversion.h"
#include "checkpoint/python_pickle.h"

namespace deepspeed::checkpoint {
namespace {

const std::map<std::string, torch::ScalarType>& storage_dtypes() {
  static const std::map<std::string, torch::ScalarType> m = {
      {"torch.FloatStorage", torch::kFloat32},   {"torch.DoubleStorage", torch::kFloat64},
      {"torch.HalfStorage", torch::kFloat16},    {"torch.BFloat16Storage", torch::kBFloat16},
      {"torch.LongStorage", torch::kInt64},      {"torch.IntStorage", torch::kInt32},
      {"torch.ShortStorage", torch::kInt16},     {"torch.CharStorage", torch::kInt8},
      {"torch.ByteStorage", torch::kUInt8},      {"torch.BoolStorage", torch::kBool},
      {"torch.ComplexFloatStorage", torch::kComplexFloat}, {"torch.ComplexDoubleStorage", torch::kComplexDouble},
      {"torch.UntypedStorage", torch::kUInt8}};
  return m;
}

// A stack entry: a value, or a reference to a Python global (module.name) not yet called.
struct Item {
  c10::IValue value;
  std::string global;
};

class PickleReader {
 public:
  PickleReader(std::string_view data, const StorageLoader& load_storage, const std::string& file)
      : data_(data), load_storage_(load_storage), file_(file) {}

  c10::IValue run() {
    while (true) {
      const auto at = pos_;
      const auto code = static_cast<unsigned char>(byte());
      if (code == '.') break;
      try {
        step(code);
      } catch (const CheckpointError&) {
        throw;
      } catch (const std::exception& e) {
        fail(at, e.what());
      }
    }
    if (stack_.size() != 1) fail(pos_, "the pickle ends with " + std::to_string(stack_.size()) + " values on its stack");
    return value_of(stack_.back());
  }

 private:
  [[noreturn]] void fail(size_t at, const std::string& why) const {
    throw CheckpointError("checkpoint file " + file_ + " cannot be read as a torch pickle archive: " + why +
                          " (pickle offset " + std::to_string(at) + ")");
  }
  char byte() {
    if (pos_ >= data_.size()) fail(pos_, "the pickle ends without STOP");
    return data_[pos_++];
  }
  std::string_view bytes(size_t n) {
    if (n > data_.size() - pos_) fail(pos_, "the pickle ends inside a value");
    auto s = data_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  template <typename T>
  T raw() {
    T v;
    std::memcpy(&v, bytes(sizeof(T)).data(), sizeof(T));
    return v;
  }
  std::string line() {
    const auto end = data_.find('\n', pos_);
    if (end == std::string_view::npos) fail(pos_, "a text opcode without its end of line");
    std::string s(data_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return s;
  }
  Item pop() {
    if (stack_.empty()) fail(pos_, "the stack is empty");
    auto item = std::move(stack_.back());
    stack_.pop_back();
    return item;
  }
  std::vector<Item> pop_mark() {
    if (marks_.empty()) fail(pos_, "no MARK");
    const auto start = marks_.back();
    marks_.pop_back();
    std::vector<Item> items(std::make_move_iterator(stack_.begin() + static_cast<std::ptrdiff_t>(start)),
                            std::make_move_iterator(stack_.end()));
    stack_.resize(start);
    return items;
  }
  // A reference to a global that ends up as data (torch.float16 as an attribute): its name.
  static c10::IValue value_of(const Item& item) {
    return item.global.empty() ? item.value : c10::IValue(item.global);
  }
  void push(c10::IValue v) { stack_.push_back({std::move(v), {}}); }
  static c10::IValue make_tuple(const std::vector<Item>& items) {
    std::vector<c10::IValue> v;
    for (const auto& i : items) v.push_back(value_of(i));
    return c10::ivalue::Tuple::create(std::move(v));
  }
  static std::vector<c10::IValue> elements(const c10::IValue& v) {
    if (v.isTuple()) return v.toTupleRef().elements().vec();
    if (v.isList()) return v.toListRef().vec();
    throw std::runtime_error("expected a tuple of arguments, found " + v.tagKind());
  }
  void integer(int64_t v) { push(v); }
  void long_bytes(size_t n) {
    const auto b = bytes(n);
    if (n > 8) fail(pos_, "an integer of " + std::to_string(n) + " bytes does not fit 64 bits");
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(b[i])) << (8 * i);
    if (n > 0 && n < 8 && (static_cast<unsigned char>(b[n - 1]) & 0x80)) v |= ~uint64_t{0} << (8 * n);
    push(static_cast<int64_t>(v));
  }
  void memo_put(uint64_t id) {
    if (stack_.empty()) fail(pos_, "PUT on an empty stack");
    memo_[id] = stack_.back();
  }
  void memo_get(uint64_t id) {
    auto it = memo_.find(id);
    if (it == memo_.end()) fail(pos_, "memo entry " + std::to_string(id) + " does not exist");
    stack_.push_back(it->second);
  }
  c10::impl::GenericDict top_dict() {
    if (stack_.empty() || !stack_.back().value.isGenericDict()) fail(pos_, "SETITEM(S) on something not a dict");
    return stack_.back().value.toGenericDict();
  }

  torch::Tensor storage(const c10::IValue& pid) {
    const auto e = elements(pid);
    if (e.size() < 5 || !e[0].isString() || e[0].toStringRef() != "storage") {
      throw std::runtime_error("a persistent id that is not a torch storage");
    }
    const auto& type = e[1].toStringRef();
    const auto dtype = storage_dtypes().find(type);
    if (dtype == storage_dtypes().end()) throw std::runtime_error("unknown storage type " + type);
    const auto key = e[2].toStringRef();
    auto it = storages_.find(key);
    if (it == storages_.end()) it = storages_.emplace(key, load_storage_(key, dtype->second, e[4].toInt())).first;
    return it->second;
  }

  // Calls what REDUCE names. Only what checkpoints hold.
  c10::IValue call(const std::string& f, const c10::IValue& args_value) {
    const auto args = elements(args_value);
    if (f == "torch._utils._rebuild_tensor_v2" || f == "torch._utils._rebuild_tensor") {
      const auto store = args.at(0).toTensor();
      const auto size = elements(args.at(2));
      const auto stride = elements(args.at(3));
      std::vector<int64_t> sz, st;
      for (const auto& s : size) sz.push_back(s.toInt());
      for (const auto& s : stride) st.push_back(s.toInt());
      const int64_t offset = args.at(1).toInt();
      int64_t last = offset;
      for (size_t i = 0; i < sz.size(); ++i) last += sz[i] == 0 ? 0 : (sz[i] - 1) * st.at(i);
      const bool empty = std::any_of(sz.begin(), sz.end(), [](int64_t s) { return s == 0; });
      if (!empty && last >= store.numel()) throw std::runtime_error("a tensor reaches past the end of its storage");
      return empty ? torch::empty(sz, store.options()) : store.as_strided(sz, st, offset);
    }
    if (f == "torch._utils._rebuild_parameter" || f == "torch._utils._rebuild_parameter_with_state") return args.at(0);
    if (f == "collections.OrderedDict" || f == "builtins.dict") {
      return c10::impl::GenericDict(c10::AnyType::get(), c10::AnyType::get());
    }
    if (f == "torch.Size" || f == "builtins.tuple") return c10::ivalue::Tuple::create(elements(args.at(0)));
    if (f == "builtins.set" || f == "builtins.frozenset" || f == "builtins.list") {
      auto list = make_list();
      if (!args.empty()) {
        for (const auto& e : elements(args[0])) list.push_back(e);
      }
      return list;
    }
    if (f == "torch.device" || f == "_codecs.encode") return args.at(0);  // its text; bytes as latin-1 text
    // An enum member as Python 3.11 pickles it, getattr(cls, name): the value of DeepSpeed's
    // ZeroStageEnum members (they are ints), the name of any other.
    if (f == "builtins.getattr" && args.size() == 2 && args[0].isString() && args[1].isString()) {
      if (args[0].toStringRef() == "deepspeed.runtime.zero.config.ZeroStageEnum") {
        static const std::map<std::string, int64_t> stages = {
            {"disabled", 0}, {"optimizer_states", 1}, {"gradients", 2}, {"weights", 3}, {"max_stage", 3}};
        if (auto it = stages.find(args[1].toStringRef()); it != stages.end()) return it->second;
      }
      return args[1];
    }
    // An enum member as older Pythons pickle it, cls(value): its value.
    if (args.size() == 1 && (args[0].isInt() || args[0].isString() || args[0].isDouble())) return args[0];
    throw std::runtime_error("cannot read a " + f + " object");
  }

  void step(unsigned char code) {
    switch (code) {
      case 0x80: byte(); break;                  // PROTO
      case 0x95: bytes(8); break;                // FRAME
      case '(': marks_.push_back(stack_.size()); break;
      case ')': push(c10::ivalue::Tuple::create(std::vector<c10::IValue>{})); break;
      case 't': push(make_tuple(pop_mark())); break;
      case 0x85: case 0x86: case 0x87: {         // TUPLE1-3
        const size_t n = code - 0x84u;
        if (stack_.size() < n) fail(pos_, "TUPLE with too few values");
        std::vector<Item> items(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
        stack_.resize(stack_.size() - n);
        push(make_tuple(items));
        break;
      }
      case ']': push(make_list()); break;
      case 'l': {
        auto list = make_list();
        for (const auto& i : pop_mark()) list.push_back(value_of(i));
        push(list);
        break;
      }
      case 'a': case 'e': {                      // APPEND(S)
        const auto items = code == 'a' ? std::vector<Item>{pop()} : pop_mark();
        if (stack_.empty() || !stack_.back().value.isList()) fail(pos_, "APPEND(S) on something not a list");
        auto list = stack_.back().value.toList();
        for (const auto& i : items) list.push_back(value_of(i));
        break;
      }
      case '}': push(c10::impl::GenericDict(c10::AnyType::get(), c10::AnyType::get())); break;
      case 'd': {
        auto items = pop_mark();
        push(c10::impl::GenericDict(c10::AnyType::get(), c10::AnyType::get()));
        auto dict = top_dict();
        for (size_t i = 0; i + 1 < items.size(); i += 2) dict.insert_or_assign(value_of(items[i]), value_of(items[i + 1]));
        break;
      }
      case 's': {
        auto v = pop();
        auto k = pop();
        top_dict().insert_or_assign(value_of(k), value_of(v));
        break;
      }
      case 'u': {
        auto items = pop_mark();
        auto dict = top_dict();
        for (size_t i = 0; i + 1 < items.size(); i += 2) dict.insert_or_assign(value_of(items[i]), value_of(items[i + 1]));
        break;
      }
      case 0x8f: push(make_list()); break;       // EMPTY_SET: a list
      case 0x90: {                               // ADDITEMS
        auto items = pop_mark();
        if (stack_.empty() || !stack_.back().value.isList()) fail(pos_, "ADDITEMS on something not a set");
        auto list = stack_.back().value.toList();
        for (const auto& i : items) list.push_back(value_of(i));
        break;
      }
      case 0x91: {                               // FROZENSET
        auto list = make_list();
        for (const auto& i : pop_mark()) list.push_back(value_of(i));
        push(list);
        break;
      }
      case 'N': push(c10::IValue()); break;
      case 0x88: push(true); break;
      case 0x89: push(false); break;
      case 'K': integer(raw<uint8_t>()); break;
      case 'M': integer(raw<uint16_t>()); break;
      case 'J': integer(raw<int32_t>()); break;
      case 0x8a: long_bytes(static_cast<unsigned char>(byte())); break;
      case 0x8b: long_bytes(raw<uint32_t>()); break;
      case 'I': {
        const auto s = line();
        if (s == "01") push(true);
        else if (s == "00") push(false);
        else push(static_cast<int64_t>(std::stoll(s)));
        break;
      }
      case 'L': {
        auto s = line();
        if (!s.empty() && s.back() == 'L') s.pop_back();
        push(static_cast<int64_t>(std::stoll(s)));
        break;
      }
      case 'G': push(std::bit_cast<double>(__builtin_bswap64(raw<uint64_t>()))); break;
      case 'F': push(std::stod(line())); break;
      case 'X': push(std::string(bytes(raw<uint32_t>()))); break;
      case 0x8c: push(std::string(bytes(static_cast<unsigned char>(byte())))); break;
      case 0x8d: push(std::string(bytes(raw<uint64_t>()))); break;
      case 'B': push(std::string(bytes(raw<uint32_t>()))); break;      // BINBYTES, as text
      case 'C': push(std::string(bytes(static_cast<unsigned char>(byte())))); break;
      case 0x8e: push(std::string(bytes(raw<uint64_t>()))); break;
      case 'T': push(std::string(bytes(raw<uint32_t>()))); break;      // BINSTRING
      case 'U': push(std::string(bytes(static_cast<unsigned char>(byte())))); break;
      case 'q': memo_put(static_cast<unsigned char>(byte())); break;
      case 'r': memo_put(raw<uint32_t>()); break;
      case 'p': memo_put(std::stoull(line())); break;
      case 0x94: memo_put(memo_.size()); break;  // MEMOIZE
      case 'h': memo_get(static_cast<unsigned char>(byte())); break;
      case 'j': memo_get(raw<uint32_t>()); break;
      case 'g': memo_get(std::stoull(line())); break;
      case '0': pop(); break;
      case '1': pop_mark(); break;
      case '2': stack_.push_back(stack_.at(stack_.size() - 1)); break;
      case 'c': {
        auto module = line();
        const auto name = line();
        // Protocol 2 writes Python 3's builtins under their Python 2 name.
        if (module == "__builtin__") module = "builtins";
        stack_.push_back({{}, module + "." + name});
        break;
      }
      case 0x93: {                               // STACK_GLOBAL
        const auto name = pop().value.toStringRef();
        const auto module = pop().value.toStringRef();
        stack_.push_back({{}, module + "." + name});
        break;
      }
      case 'Q': push(storage(value_of(pop()))); break;  // BINPERSID
      case 'R': {
        const auto args = pop();
        const auto f = pop();
        if (f.global.empty()) fail(pos_, "REDUCE of something not callable");
        push(call(f.global, value_of(args)));
        break;
      }
      case 0x81: case 0x92: {                    // NEWOBJ(_EX)
        if (code == 0x92) pop();                 // kwargs
        const auto args = value_of(pop());
        const auto cls = pop();
        if (cls.global.empty()) fail(pos_, "NEWOBJ of something not a class");
        // An instance: its attributes arrive with BUILD, into this same dict (the memo may
        // hold it already). With arguments (a namedtuple): the arguments.
        if (args.isTuple() && !args.toTupleRef().elements().empty()) push(args);
        else push(c10::impl::GenericDict(c10::StringType::get(), c10::AnyType::get()));
        break;
      }
      case 'b': {                                // BUILD
        auto state = value_of(pop());
        if (stack_.empty()) fail(pos_, "BUILD on an empty stack");
        auto& target = stack_.back().value;
        // (dict state, slot state), as objects with __slots__ give.
        std::vector<c10::IValue> parts = {state};
        if (state.isTuple()) parts = state.toTupleRef().elements().vec();
        if (target.isGenericDict()) {
          auto dict = target.toGenericDict();
          // An OrderedDict's own attributes (a state dict's _metadata) are not its items.
          const bool instance = dict.keyType()->kind() == c10::TypeKind::StringType;
          if (instance) {
            for (const auto& part : parts) {
              if (!part.isGenericDict()) continue;
              for (const auto& kv : part.toGenericDict()) dict.insert_or_assign(kv.key(), kv.value());
            }
          }
        }
        break;  // other targets (a tensor's state) keep what they are
      }
      default: fail(pos_ - 1, "unsupported pickle opcode 0x" + fmt_hex(code));
    }
  }
  static std::string fmt_hex(unsigned char c) {
    const char* digits = "0123456789abcdef";
    return {digits[c >> 4], digits[c & 15]};
  }

  std::string_view data_;
  size_t pos_ = 0;
  const StorageLoader& load_storage_;
  const std::string& file_;
  std::vector<Item> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Item> memo_;
  std::map<std::string, torch::Tensor> storages_;
};

}  // namespace

c10::IValue read_python_pickle(std::string_view pickle, const StorageLoader& load_storage, const std::string& file) {
  return PickleReader(pickle, load_storage, file).run();
}

}  // namespace deepspeed::checkpoint
