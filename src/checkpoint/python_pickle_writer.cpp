// Opcodes as Python's pickle.py names them. The output is what torch.save writes for the same
// values, so that torch.load (and LibTorch's own unpickler, for plain values) reads it.
#include <bit>
#include <cstring>

#include <torch/torch.h>

#include <deepspeed/errors.h>

#include "checkpoint/ivalue_conversion.h"
#include "checkpoint/python_pickle.h"
#include "checkpoint/python_value.h"

namespace deepspeed::checkpoint {
namespace {

static_assert(std::endian::native == std::endian::little, "pickles store little-endian integers");

// torch.save's storage class of each dtype.
std::string storage_class(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat32: return "FloatStorage";
    case torch::kFloat64: return "DoubleStorage";
    case torch::kFloat16: return "HalfStorage";
    case torch::kBFloat16: return "BFloat16Storage";
    case torch::kInt64: return "LongStorage";
    case torch::kInt32: return "IntStorage";
    case torch::kInt16: return "ShortStorage";
    case torch::kInt8: return "CharStorage";
    case torch::kUInt8: return "ByteStorage";
    case torch::kBool: return "BoolStorage";
    case torch::kComplexFloat: return "ComplexFloatStorage";
    case torch::kComplexDouble: return "ComplexDoubleStorage";
    default: throw CheckpointError(std::string("a tensor of dtype ") + c10::toString(dtype) + " cannot be saved");
  }
}

class PickleWriter {
 public:
  explicit PickleWriter(std::vector<torch::Tensor>& storages) : storages_(storages) {}

  std::string finish(const c10::IValue& value) {
    op(0x80);  // PROTO 2
    out_.push_back(2);
    write(value);
    op('.');  // STOP
    return std::move(out_);
  }

 private:
  void op(unsigned char c) { out_.push_back(static_cast<char>(c)); }
  template <typename T>
  void raw(T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out_.append(b, sizeof(T));
  }
  void global(const std::string& module, const std::string& name) {
    op('c');
    out_ += module + "\n" + name + "\n";
  }
  void text(const std::string& s) {
    op('X');  // BINUNICODE
    raw(static_cast<uint32_t>(s.size()));
    out_ += s;
  }
  void integer(int64_t v) {
    if (v >= 0 && v < 256) {
      op('K');  // BININT1
      raw(static_cast<uint8_t>(v));
    } else if (v >= 0 && v < 65536) {
      op('M');  // BININT2
      raw(static_cast<uint16_t>(v));
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J');  // BININT
      raw(static_cast<int32_t>(v));
    } else {
      op(0x8a);  // LONG1: little-endian two's complement
      out_.push_back(8);
      raw(v);
    }
  }
  void real(double d) {
    op('G');  // BINFLOAT, big-endian
    raw(__builtin_bswap64(std::bit_cast<uint64_t>(d)));
  }
  void tuple(const std::vector<c10::IValue>& items) {
    if (items.empty()) {
      op(')');
      return;
    }
    op('(');
    for (const auto& e : items) write(e);
    op('t');
  }
  void int_tuple(c10::IntArrayRef v) {
    std::vector<c10::IValue> items(v.begin(), v.end());
    tuple(items);
  }
  // torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)
  void tensor(const torch::Tensor& t) {
    const auto own = tensor_for_file(t).contiguous();
    const auto key = std::to_string(storages_.size());
    storages_.push_back(own);
    global("torch._utils", "_rebuild_tensor_v2");
    op('(');
    op('(');  // the storage's persistent id: ("storage", class, key, location, numel)
    text("storage");
    global("torch", storage_class(own.scalar_type()));
    text(key);
    text("cpu");
    integer(own.numel());
    op('t');
    op('Q');  // BINPERSID
    integer(0);
    int_tuple(own.sizes());
    int_tuple(own.strides());
    op(0x89);  // requires_grad False
    global("collections", "OrderedDict");
    op(')');
    op('R');
    op('t');
    op('R');
  }
  void python(const PythonValue& p) {
    using Kind = PythonValue::Kind;
    global(p.module, p.name);
    if (p.kind == Kind::kGlobal) return;
    if (p.kind == Kind::kTorchSize) {  // torch.Size((d0, d1, ...)), as Size.__reduce__ gives
      op('(');
      int_tuple(p.dims);
      op('t');
      op('R');
      return;
    }
    // copyreg.__newobj__(cls) then __dict__.update(state): how protocol 2 pickles a plain object.
    op(')');
    op(0x81);  // NEWOBJ
    op('}');
    if (!p.attributes.empty()) {
      op('(');
      for (const auto& [k, v] : p.attributes) {
        text(k);
        write(v);
      }
      op('u');
    }
    op('b');  // BUILD
  }

  void write(const c10::IValue& v) {
    if (v.isNone()) op('N');
    else if (v.isBool()) op(v.toBool() ? 0x88 : 0x89);
    else if (v.isInt()) integer(v.toInt());
    else if (v.isDouble()) real(v.toDouble());
    else if (v.isString()) text(v.toStringRef());
    else if (v.isTensor()) tensor(v.toTensor());
    else if (v.isTuple()) tuple(v.toTupleRef().elements().vec());
    else if (v.isList()) {
      op(']');
      const auto items = v.toListRef();
      if (items.empty()) return;
      op('(');
      for (const auto& e : items) write(e);
      op('e');  // APPENDS
    } else if (v.isGenericDict()) {
      op('}');
      const auto dict = v.toGenericDict();
      if (dict.empty()) return;
      op('(');
      for (const auto& e : dict) {
        write(e.key());
        write(e.value());
      }
      op('u');  // SETITEMS
    } else if (const auto p = python_value(v); p.kind != PythonValue::Kind::kNotPython) {
      python(p);
    } else {
      throw CheckpointError("a value of type " + v.tagKind() + " cannot be saved in a checkpoint");
    }
  }

  std::string out_;
  std::vector<torch::Tensor>& storages_;
};

}  // namespace

std::string write_python_pickle(const c10::IValue& value, std::vector<torch::Tensor>& storages) {
  return PickleWriter(storages).finish(value);
}

}  // namespace deepspeed::checkpoint
