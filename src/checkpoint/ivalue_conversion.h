// Conversions between the values checkpoints hold (c10::IValue, what torch's pickle format
// stores) and the C++ types the engine and the user work with: StateValue (client state)
// and nlohmann::json (ds_config, LR-scheduler state).
#pragma once

#include <string>

#include <ATen/core/ivalue.h>
#include <nlohmann/json.hpp>

#include <deepspeed/checkpoint.h>

namespace deepspeed::checkpoint {

// An empty dict with string keys, which Python's torch.load reads as a dict.
c10::impl::GenericDict make_string_dict();
c10::impl::GenericList make_list();

// A tensor as it goes into a file: detached, on the CPU (a checkpoint loads on any
// machine), and owning exactly its own bytes (a view of a larger buffer would otherwise
// drag the whole buffer into the file).
torch::Tensor tensor_for_file(const torch::Tensor& t);

c10::IValue to_ivalue(const StateValue& value);
// Tuples become lists; dict keys that are not strings become their decimal text.
// `where` names the value in errors ("client state key 'x'").
StateValue to_state_value(const c10::IValue& value, const std::string& where);

c10::IValue to_ivalue(const nlohmann::json& value);
nlohmann::json to_json(const c10::IValue& value, const std::string& where);

// The entry `key` of a dict read from a file, or CheckpointError naming `file` and `key`.
c10::IValue dict_at(const c10::impl::GenericDict& dict, const std::string& key, const std::string& file);
// A list (or tuple, or torch.Size) of integers read from a file, or CheckpointError naming `where`.
std::vector<int64_t> int_list(const c10::IValue& value, const std::string& where);
// A list of tensors read from a file, or CheckpointError naming `where`.
std::vector<torch::Tensor> tensor_list(const c10::IValue& value, const std::string& where);
// The same entry as an integer.
int64_t int_at(const c10::impl::GenericDict& dict, const std::string& key, const std::string& file);

}  // namespace deepspeed::checkpoint
