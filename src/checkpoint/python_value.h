// Values that Python pickles with classes of their own, as DeepSpeed's checkpoint files hold
// them: a torch.Size (param_shapes), an instance of a Python class (DeepSpeed's loss scaler,
// its fragment_address dataclass), a module-level name (torch.float16). They travel in
// IValues as objects of classes made here; pickle_io's writer pickles them as Python would,
// so that Python reads back the very objects DeepSpeed writes.
//
// Reading a file gives plain values instead: a torch.Size is a tuple of ints, an instance the
// dict of its attributes, a name its dotted text ("torch.float16"), an enum member its value.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <ATen/core/ivalue.h>

namespace deepspeed::checkpoint {

// torch.Size(dims).
c10::IValue torch_size(c10::IntArrayRef dims);
// An instance of `module`.`name` whose __dict__ holds `attributes`, in this order.
c10::IValue python_instance(const std::string& module, const std::string& name,
                            const std::vector<std::pair<std::string, c10::IValue>>& attributes);
// The module-level name `module`.`name`.
c10::IValue python_global(const std::string& module, const std::string& name);

// What the pickler needs to know about an IValue made above.
struct PythonValue {
  enum class Kind { kNotPython, kTorchSize, kInstance, kGlobal };
  Kind kind = Kind::kNotPython;
  std::string module, name;
  std::vector<int64_t> dims;                                  // kTorchSize
  std::vector<std::pair<std::string, c10::IValue>> attributes;  // kInstance
};
PythonValue python_value(const c10::IValue& value);

}  // namespace deepspeed::checkpoint
