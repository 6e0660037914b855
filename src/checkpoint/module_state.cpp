#include "checkpoint/module_state.h"

#include <set>

#include <torch/torch.h>

#include <deepspeed/errors.h>

#include "checkpoint/ivalue_conversion.h"

namespace deepspeed::checkpoint {

c10::impl::GenericDict module_state_dict(const torch::nn::Module& module) {
  c10::impl::GenericDict out(c10::StringType::get(), c10::TensorType::get());
  for (const auto& p : module.named_parameters()) out.insert(p.key(), tensor_for_file(p.value()));
  for (const auto& b : module.named_buffers()) out.insert(b.key(), tensor_for_file(b.value()));
  return out;
}

std::vector<std::string> buffer_names(const torch::nn::Module& module) {
  std::vector<std::string> out;
  for (const auto& b : module.named_buffers()) out.push_back(b.key());
  return out;
}

void load_module_state(torch::nn::Module& module, const c10::impl::GenericDict& state, bool strict,
                       const std::string& file) {
  std::vector<std::pair<std::string, torch::Tensor>> own;
  for (const auto& p : module.named_parameters()) own.emplace_back(p.key(), p.value());
  for (const auto& b : module.named_buffers()) own.emplace_back(b.key(), b.value());

  std::vector<std::string> missing, mismatched;
  std::set<std::string> used;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;
  for (auto& [name, dst] : own) {
    auto it = state.find(name);
    if (it == state.end()) {
      missing.push_back(name);
      continue;
    }
    used.insert(name);
    if (!it->value().isTensor()) {
      throw CheckpointError(file + ": module entry '" + name + "' is a " + it->value().tagKind() + ", not a tensor");
    }
    auto src = it->value().toTensor();
    if (src.sizes() != dst.sizes()) {
      mismatched.push_back("size mismatch for " + name + ": copying a param with shape " + c10::str(src.sizes()) +
                           " from checkpoint, the shape in current model is " + c10::str(dst.sizes()) + ".");
      continue;
    }
    copies.emplace_back(dst, src);
  }
  std::vector<std::string> unexpected;
  for (const auto& e : state) {
    if (!used.count(e.key().toStringRef())) unexpected.push_back(e.key().toStringRef());
  }
  // torch's load_state_dict message, so that a reader who knows PyTorch recognises it.
  auto quoted = [](const std::vector<std::string>& names) {
    std::string s;
    for (const auto& n : names) s += (s.empty() ? "\"" : ", \"") + n + "\"";
    return s;
  };
  std::string errors;
  if (strict && !missing.empty()) errors += "\n\tMissing key(s) in state_dict: " + quoted(missing) + ".";
  if (strict && !unexpected.empty()) errors += "\n\tUnexpected key(s) in state_dict: " + quoted(unexpected) + ".";
  for (const auto& m : mismatched) errors += "\n\t" + m;
  if (!errors.empty()) {
    throw CheckpointError(file + ": Error(s) in loading state_dict for " + module.name() + ":" + errors);
  }
  torch::NoGradGuard no_grad;
  for (auto& [dst, src] : copies) dst.copy_(src);
}

}  // namespace deepspeed::checkpoint
