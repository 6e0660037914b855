// Why by hand: torch's pickler only knows IValues, and IValue's own constructors do not
// build the heterogeneous dicts (string -> anything) that a Python state dict is.
#include "checkpoint/ivalue_conversion.h"

#include <torch/torch.h>

#include <deepspeed/errors.h>

namespace deepspeed::checkpoint {

c10::impl::GenericDict make_string_dict() {
  return c10::impl::GenericDict(c10::StringType::get(), c10::AnyType::get());
}

c10::impl::GenericList make_list() { return c10::impl::GenericList(c10::AnyType::get()); }

torch::Tensor tensor_for_file(const torch::Tensor& t) {
  if (!t.defined()) return t;
  auto out = t.detach().cpu();
  const auto own_bytes = static_cast<size_t>(out.numel()) * out.element_size();
  if (!out.is_contiguous() || out.storage_offset() != 0 || out.storage().nbytes() != own_bytes) {
    out = out.clone(at::MemoryFormat::Contiguous);
  }
  return out;
}

c10::IValue to_ivalue(const StateValue& v) {
  if (v.is_none()) return {};
  if (v.is_bool()) return v.as_bool();
  if (v.is_int()) return v.as_int();
  if (v.is_double()) return v.as_double();
  if (v.is_string()) return v.as_string();
  if (v.is_tensor()) return tensor_for_file(v.as_tensor());
  if (v.is_list()) {
    auto list = make_list();
    for (const auto& e : v.as_list()) list.push_back(to_ivalue(e));
    return list;
  }
  auto dict = make_string_dict();
  for (const auto& [k, e] : v.as_dict()) dict.insert(k, to_ivalue(e));
  return dict;
}

namespace {

std::string key_text(const c10::IValue& key, const std::string& where) {
  if (key.isString()) return key.toStringRef();
  if (key.isInt()) return std::to_string(key.toInt());
  if (key.isBool()) return key.toBool() ? "True" : "False";
  throw CheckpointError(where + ": a dict key of type " + key.tagKind() +
                        " (only string and integer keys are supported)");
}

}  // namespace

StateValue to_state_value(const c10::IValue& v, const std::string& where) {
  if (v.isNone()) return {};
  if (v.isBool()) return v.toBool();
  if (v.isInt()) return v.toInt();
  if (v.isDouble()) return v.toDouble();
  if (v.isString()) return v.toStringRef();
  if (v.isTensor()) return v.toTensor();
  if (v.isList() || v.isTuple()) {
    StateList out;
    const auto elements = v.isList() ? v.toListRef().vec() : v.toTupleRef().elements().vec();
    for (size_t i = 0; i < elements.size(); ++i) {
      out.push_back(to_state_value(elements[i], where + "[" + std::to_string(i) + "]"));
    }
    return out;
  }
  if (v.isGenericDict()) {
    StateDict out;
    for (const auto& e : v.toGenericDict()) {
      const auto k = key_text(e.key(), where);
      out.emplace(k, to_state_value(e.value(), where + "['" + k + "']"));
    }
    return out;
  }
  throw CheckpointError(where + ": a value of type " + v.tagKind() + " cannot be held in a client state");
}

c10::IValue to_ivalue(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
      return {};
    case nlohmann::json::value_t::boolean:
      return j.get<bool>();
    case nlohmann::json::value_t::number_integer:
      return j.get<int64_t>();
    case nlohmann::json::value_t::number_unsigned:
      return static_cast<int64_t>(j.get<uint64_t>());
    case nlohmann::json::value_t::number_float:
      return j.get<double>();
    case nlohmann::json::value_t::string:
      return j.get<std::string>();
    case nlohmann::json::value_t::array:
    case nlohmann::json::value_t::binary: {
      auto list = make_list();
      for (const auto& e : j) list.push_back(to_ivalue(e));
      return list;
    }
    case nlohmann::json::value_t::object: {
      auto dict = make_string_dict();
      for (const auto& [k, e] : j.items()) dict.insert(k, to_ivalue(e));
      return dict;
    }
  }
  return {};
}

nlohmann::json to_json(const c10::IValue& v, const std::string& where) {
  if (v.isNone()) return nullptr;
  if (v.isBool()) return v.toBool();
  if (v.isInt()) return v.toInt();
  if (v.isDouble()) return v.toDouble();
  if (v.isString()) return v.toStringRef();
  if (v.isList() || v.isTuple()) {
    auto out = nlohmann::json::array();
    for (const auto& e : v.isList() ? v.toListRef().vec() : v.toTupleRef().elements().vec()) {
      out.push_back(to_json(e, where));
    }
    return out;
  }
  if (v.isGenericDict()) {
    auto out = nlohmann::json::object();
    for (const auto& e : v.toGenericDict()) out[key_text(e.key(), where)] = to_json(e.value(), where);
    return out;
  }
  throw CheckpointError(where + ": expected JSON-like data, found a " + v.tagKind());
}

c10::IValue dict_at(const c10::impl::GenericDict& dict, const std::string& key, const std::string& file) {
  auto it = dict.find(key);
  if (it == dict.end()) throw CheckpointError(file + ": has no '" + key + "' entry");
  return it->value();
}

int64_t int_at(const c10::impl::GenericDict& dict, const std::string& key, const std::string& file) {
  auto v = dict_at(dict, key, file);
  if (!v.isInt()) throw CheckpointError(file + ": '" + key + "' should be an integer, found " + v.tagKind());
  return v.toInt();
}

}  // namespace deepspeed::checkpoint

namespace deepspeed::checkpoint {

std::vector<int64_t> int_list(const c10::IValue& value, const std::string& where) {
  // A tuple too: a torch.Size reads back as one.
  if (!value.isList() && !value.isIntList() && !value.isTuple()) {
    throw CheckpointError(where + " should be a list of integers");
  }
  std::vector<int64_t> out;
  for (const auto& e : value.isTuple() ? value.toTupleRef().elements().vec() : value.toListRef().vec()) {
    if (!e.isInt()) throw CheckpointError(where + " should be a list of integers");
    out.push_back(e.toInt());
  }
  return out;
}

std::vector<torch::Tensor> tensor_list(const c10::IValue& value, const std::string& where) {
  if (!value.isList() && !value.isTensorList()) throw CheckpointError(where + " should be a list of tensors");
  std::vector<torch::Tensor> out;
  for (const auto& e : value.toListRef()) {
    if (!e.isTensor()) throw CheckpointError(where + " should be a list of tensors");
    out.push_back(e.toTensor());
  }
  return out;
}

}  // namespace deepspeed::checkpoint
