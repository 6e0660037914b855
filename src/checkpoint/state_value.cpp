// deepspeed::StateValue: the client-state value type (include/deepspeed/checkpoint.h).
#include <deepspeed/checkpoint.h>

#include <torch/torch.h>

#include <deepspeed/errors.h>

namespace deepspeed {
namespace {

[[noreturn]] void wrong_kind(const StateValue& v, const char* wanted) {
  throw CheckpointError(std::string("client state value is a ") + v.kind() + ", not a " + wanted);
}

}  // namespace

bool StateValue::as_bool() const {
  if (!is_bool()) wrong_kind(*this, "bool");
  return std::get<bool>(value_);
}

int64_t StateValue::as_int() const {
  if (!is_int()) wrong_kind(*this, "int");
  return std::get<int64_t>(value_);
}

double StateValue::as_double() const {
  if (is_int()) return static_cast<double>(std::get<int64_t>(value_));
  if (!is_double()) wrong_kind(*this, "float");
  return std::get<double>(value_);
}

const std::string& StateValue::as_string() const {
  if (!is_string()) wrong_kind(*this, "str");
  return std::get<std::string>(value_);
}

const torch::Tensor& StateValue::as_tensor() const {
  if (!is_tensor()) wrong_kind(*this, "tensor");
  return std::get<torch::Tensor>(value_);
}

const StateList& StateValue::as_list() const {
  if (!is_list()) wrong_kind(*this, "list");
  return std::get<StateList>(value_);
}

StateList& StateValue::as_list() {
  if (!is_list()) wrong_kind(*this, "list");
  return std::get<StateList>(value_);
}

const StateDict& StateValue::as_dict() const {
  if (!is_dict()) wrong_kind(*this, "dict");
  return std::get<StateDict>(value_);
}

StateDict& StateValue::as_dict() {
  if (!is_dict()) wrong_kind(*this, "dict");
  return std::get<StateDict>(value_);
}

StateValue& StateValue::operator[](const std::string& key) {
  if (is_none()) value_ = StateDict{};
  return as_dict()[key];
}

const StateValue& StateValue::at(const std::string& key) const {
  const auto& d = as_dict();
  auto it = d.find(key);
  if (it == d.end()) throw CheckpointError("client state has no key '" + key + "'");
  return it->second;
}

bool StateValue::contains(const std::string& key) const {
  return is_dict() && as_dict().count(key) > 0;
}

std::string StateValue::kind() const {
  static constexpr const char* kNames[] = {"none", "bool", "int", "float", "str", "tensor", "list", "dict"};
  return kNames[value_.index()];
}

bool operator==(const StateValue& a, const StateValue& b) {
  if (a.value_.index() != b.value_.index()) return false;
  if (a.is_tensor()) {
    const auto& x = a.as_tensor();
    const auto& y = b.as_tensor();
    if (x.defined() != y.defined()) return false;
    return !x.defined() || (x.scalar_type() == y.scalar_type() && x.sizes() == y.sizes() && torch::equal(x, y));
  }
  return std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, torch::Tensor>) {
          return true;  // handled above
        } else {
          return x == std::get<T>(b.value_);
        }
      },
      a.value_);
}

}  // namespace deepspeed
