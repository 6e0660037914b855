// The values are IValue objects of classes made on the spot: the class's qualified name is
// the Python name, its doc string says which kind of value it is. Objects, not tagged dicts,
// so that no client data can be taken for one.
#include "checkpoint/python_value.h"

#include <ATen/core/class_type.h>

namespace deepspeed::checkpoint {
namespace {

constexpr const char* kSizeDoc = "deepspeed-cpp: torch.Size";
constexpr const char* kInstanceDoc = "deepspeed-cpp: Python instance";
constexpr const char* kGlobalDoc = "deepspeed-cpp: Python global";

c10::IValue make_object(const std::string& qualified, const char* doc,
                        const std::vector<std::pair<std::string, c10::IValue>>& attributes) {
  auto type = c10::ClassType::create(c10::QualifiedName(qualified), std::weak_ptr<torch::jit::CompilationUnit>(),
                                     /*is_module=*/false, doc);
  for (const auto& [name, value] : attributes) type->addAttribute(name, c10::AnyType::get());
  auto object = c10::ivalue::Object::create(type, attributes.size());
  for (size_t i = 0; i < attributes.size(); ++i) object->setSlot(i, attributes[i].second);
  return object;
}

}  // namespace

c10::IValue torch_size(c10::IntArrayRef dims) {
  return make_object("torch.Size", kSizeDoc, {{"dims", c10::List<int64_t>(dims.vec())}});
}

c10::IValue python_instance(const std::string& module, const std::string& name,
                            const std::vector<std::pair<std::string, c10::IValue>>& attributes) {
  return make_object(module + "." + name, kInstanceDoc, attributes);
}

c10::IValue python_global(const std::string& module, const std::string& name) {
  return make_object(module + "." + name, kGlobalDoc, {});
}

PythonValue python_value(const c10::IValue& value) {
  PythonValue out;
  if (!value.isObject()) return out;
  const auto object = value.toObject();
  const auto type = object->type();
  const auto& doc = type->doc_string();
  if (doc == kSizeDoc) out.kind = PythonValue::Kind::kTorchSize;
  else if (doc == kInstanceDoc) out.kind = PythonValue::Kind::kInstance;
  else if (doc == kGlobalDoc) out.kind = PythonValue::Kind::kGlobal;
  else return out;
  const auto name = type->name().value();
  out.module = name.prefix();
  out.name = name.name();
  if (out.kind == PythonValue::Kind::kTorchSize) {
    for (const auto& d : object->getSlot(0).toListRef()) out.dims.push_back(d.toInt());
  } else if (out.kind == PythonValue::Kind::kInstance) {
    for (size_t i = 0; i < type->numAttributes(); ++i) {
      out.attributes.emplace_back(type->getAttributeName(i), object->getSlot(i));
    }
  }
  return out;
}

}  // namespace deepspeed::checkpoint
