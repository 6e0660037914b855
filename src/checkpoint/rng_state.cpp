#include "checkpoint/rng_state.h"

#include <mutex>

#include <ATen/Context.h>

#include <deepspeed/errors.h>

#include "checkpoint/ivalue_conversion.h"

namespace deepspeed::checkpoint {
namespace {

at::Tensor get_state(const at::Generator& gen) {
  // Generators are shared by every thread of the process; their own mutex guards them.
  auto& g = const_cast<at::Generator&>(gen);
  std::lock_guard<std::mutex> lock(g.mutex());
  return g.get_state();
}

void set_state(const at::Generator& gen, const torch::Tensor& state) {
  auto& g = const_cast<at::Generator&>(gen);
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_state(state);
}

}  // namespace

RngState capture_rng_state(torch::Device device) {
  RngState s;
  s.cpu = get_state(at::globalContext().defaultGenerator(torch::kCPU));
  if (device.is_cuda()) s.cuda = get_state(at::globalContext().defaultGenerator(device));
  return s;
}

void restore_rng_state(const RngState& state, torch::Device device) {
  if (state.cpu.defined()) set_state(at::globalContext().defaultGenerator(torch::kCPU), state.cpu);
  if (state.cuda.defined() && device.is_cuda()) set_state(at::globalContext().defaultGenerator(device), state.cuda);
}

c10::IValue to_ivalue(const RngState& state) {
  auto d = make_string_dict();
  d.insert("cpu", state.cpu.defined() ? c10::IValue(tensor_for_file(state.cpu)) : c10::IValue());
  d.insert("cuda", state.cuda.defined() ? c10::IValue(tensor_for_file(state.cuda)) : c10::IValue());
  return d;
}

RngState rng_state_from(const c10::IValue& value, const std::string& file) {
  if (!value.isGenericDict()) throw CheckpointError(file + ": an RNG state should be a dict, found " + value.tagKind());
  const auto d = value.toGenericDict();
  RngState s;
  for (const char* key : {"cpu", "cuda"}) {
    auto it = d.find(key);
    if (it == d.end() || it->value().isNone()) continue;
    if (!it->value().isTensor() || it->value().toTensor().scalar_type() != torch::kByte) {
      throw CheckpointError(file + ": RNG state '" + key + "' should be a uint8 tensor");
    }
    (std::string(key) == "cpu" ? s.cpu : s.cuda) = it->value().toTensor();
  }
  return s;
}

}  // namespace deepspeed::checkpoint
