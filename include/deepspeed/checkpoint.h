// Checkpoints: what Engine::save_checkpoint and Engine::load_checkpoint exchange with the
// user, and the storage seam they write through.
//
// ClientState is DeepSpeed's `client_state` dict: whatever the training script wants to keep
// beside the engine's state (a step count, a best loss, a tensor of running statistics).
// It holds numbers, booleans, strings, tensors and nested lists/maps of them, and is written
// into the model-states file at top level, where Python's torch.load sees plain dicts,
// lists, ints, floats, strs and tensors:
//
//   deepspeed::ClientState client_sd;
//   client_sd["step"] = step;
//   engine->save_checkpoint(save_dir, tag, client_sd);
//   ...
//   auto [load_path, client_sd] = engine->load_checkpoint(load_dir);
//   if (load_path) step = client_sd.at("step").to<int64_t>();
//
// Promises (docs/checkpointing.md): a save is atomic (a crash leaves the previous checkpoint
// and `latest` intact), every file is listed with its size and CRC32 in a manifest that a
// load checks, and a bad file is reported as a CheckpointError that names it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include <torch/types.h>

namespace deepspeed {

class StateValue;
// String keys, as a Python dict of the client's own keys (kept sorted).
using StateDict = std::map<std::string, StateValue>;
using StateList = std::vector<StateValue>;
// DeepSpeed's client_state.
using ClientState = StateDict;

// One value of a client state: none, a bool, an integer, a float, a string, a tensor, a
// list or a map. Reading it as the wrong kind throws CheckpointError saying what it holds.
class StateValue {
 public:
  StateValue() = default;  // none (Python's None)
  StateValue(std::nullptr_t) {}
  StateValue(bool v) : value_(v) {}
  template <typename T>
    requires(std::is_integral_v<T> && !std::is_same_v<T, bool>)
  StateValue(T v) : value_(static_cast<int64_t>(v)) {}
  template <typename T>
    requires std::is_floating_point_v<T>
  StateValue(T v) : value_(static_cast<double>(v)) {}
  StateValue(std::string v) : value_(std::move(v)) {}
  StateValue(const char* v) : value_(std::string(v)) {}
  StateValue(torch::Tensor v) : value_(std::move(v)) {}
  StateValue(StateList v) : value_(std::move(v)) {}
  StateValue(StateDict v) : value_(std::move(v)) {}

  bool is_none() const { return std::holds_alternative<std::monostate>(value_); }
  bool is_bool() const { return std::holds_alternative<bool>(value_); }
  bool is_int() const { return std::holds_alternative<int64_t>(value_); }
  bool is_double() const { return std::holds_alternative<double>(value_); }
  bool is_string() const { return std::holds_alternative<std::string>(value_); }
  bool is_tensor() const { return std::holds_alternative<torch::Tensor>(value_); }
  bool is_list() const { return std::holds_alternative<StateList>(value_); }
  bool is_dict() const { return std::holds_alternative<StateDict>(value_); }

  bool as_bool() const;
  int64_t as_int() const;
  // An int converts (Python's float(int)); anything else throws.
  double as_double() const;
  const std::string& as_string() const;
  const torch::Tensor& as_tensor() const;
  const StateList& as_list() const;
  StateList& as_list();
  const StateDict& as_dict() const;
  StateDict& as_dict();

  // Typed read: to<int64_t>(), to<int>(), to<double>(), to<std::string>(), to<bool>(),
  // to<torch::Tensor>().
  template <typename T>
  T to() const {
    if constexpr (std::is_same_v<T, bool>) return as_bool();
    else if constexpr (std::is_integral_v<T>) return static_cast<T>(as_int());
    else if constexpr (std::is_floating_point_v<T>) return static_cast<T>(as_double());
    else if constexpr (std::is_same_v<T, std::string>) return as_string();
    else if constexpr (std::is_same_v<T, torch::Tensor>) return as_tensor();
    else static_assert(sizeof(T) == 0, "StateValue::to<T>: unsupported type");
  }

  // Map access. operator[] turns a none into an empty map (as nlohmann::json does);
  // at() throws CheckpointError naming a missing key.
  StateValue& operator[](const std::string& key);
  const StateValue& at(const std::string& key) const;
  bool contains(const std::string& key) const;

  // "none", "bool", "int", "float", "str", "tensor", "list", "dict".
  std::string kind() const;

  // Structural equality; tensors compare by dtype, shape and values (torch::equal).
  friend bool operator==(const StateValue& a, const StateValue& b);

 private:
  std::variant<std::monostate, bool, int64_t, double, std::string, torch::Tensor, StateList, StateDict> value_;
};

// What load_checkpoint returns (Python's (load_path, client_state)). load_path is empty
// when nothing was loaded (no `latest` file), and then client_state is empty too.
//   auto [load_path, client_sd] = engine->load_checkpoint(dir);
struct LoadCheckpointResult {
  std::optional<std::string> load_path;
  ClientState client_state;
  explicit operator bool() const { return load_path.has_value(); }
};

// Where checkpoint files are written and read. The default implementation writes a file
// atomically (a temporary name beside it, fsync, rename, fsync of the folder) and reads it
// whole. Override it to put checkpoints elsewhere, or in tests to inject failures (a write
// that dies half-way), as c10d's tests override a virtual seam.
class CheckpointStorage {
 public:
  virtual ~CheckpointStorage() = default;
  // After it returns, `path` holds exactly `bytes`, durably; before, `path` is unchanged.
  virtual void write_file(const std::filesystem::path& path, std::span<const char> bytes);
  // The whole file; throws CheckpointError naming it when it cannot be read.
  virtual std::vector<char> read_file(const std::filesystem::path& path);
};

}  // namespace deepspeed
