// Which parameters a model splits over its tensor-parallel group and how: the one rule that cuts
// a parameter into parts and puts it back together, for any number of parts.
#include <fmt/format.h>

#include <deepspeed/errors.h>
#include <deepspeed/tensor_parallel.h>

namespace deepspeed::tensor_parallel {

torch::Tensor shard(const torch::Tensor& whole, const SplitParameter& split, int64_t parts, int64_t index,
                    const std::string& what) {
  const std::string& name = what.empty() ? split.name : what;
  int64_t total = 0;
  for (auto size : split.sub_sizes) total += size;
  if (!split.sub_sizes.empty() && (whole.dim() <= split.dim || whole.size(split.dim) != total)) {
    throw EngineError(fmt::format("{}: its fused sub-parameters hold {} along dimension {}; the tensor has shape {}",
                                  name, total, split.dim, c10::str(whole.sizes())));
  }
  return shard_sub_params(whole, split.dim, split.sub_sizes, parts, index, name);
}

torch::Tensor unshard(const std::vector<torch::Tensor>& parts, const SplitParameter& split) {
  if (parts.empty()) throw EngineError(split.name + ": no parts to put together");
  for (const auto& p : parts) {
    if (p.dim() <= split.dim || p.sizes() != parts[0].sizes()) {
      throw EngineError(fmt::format("{}: its parts do not fit together along dimension {} (shapes {} and {})",
                                    split.name, split.dim, c10::str(parts[0].sizes()), c10::str(p.sizes())));
    }
  }
  if (split.sub_sizes.empty()) return torch::cat(parts, split.dim);
  const auto n = static_cast<int64_t>(parts.size());
  int64_t part_total = 0;
  for (auto size : split.sub_sizes) {
    if (size % n != 0) {
      throw EngineError(fmt::format("{}: a fused sub-parameter of size {} is not divisible by {} parts", split.name,
                                    size, n));
    }
    part_total += size / n;
  }
  if (parts[0].size(split.dim) != part_total) {
    throw EngineError(fmt::format("{}: a part holds {} along dimension {}; its fused sub-parameters' pieces hold {}",
                                  split.name, parts[0].size(split.dim), split.dim, part_total));
  }
  // Sub-parameter by sub-parameter, every part's piece of it in rank order.
  std::vector<torch::Tensor> pieces;
  int64_t offset = 0;
  for (auto size : split.sub_sizes) {
    for (const auto& p : parts) pieces.push_back(p.narrow(split.dim, offset, size / n));
    offset += size / n;
  }
  return torch::cat(pieces, split.dim);
}

std::vector<SplitParameter> split_parameters(const torch::nn::Module& model) {
  std::vector<SplitParameter> out;
  auto add = [&](const std::string& prefix, const torch::Tensor& t, const char* param, int64_t dim,
                 std::vector<int64_t> sub_sizes = {}) {
    if (t.defined()) out.push_back({prefix.empty() ? param : prefix + "." + param, dim, std::move(sub_sizes)});
  };
  for (const auto& item : model.named_modules("", /*include_self=*/true)) {
    const auto& name = item.key();
    const auto& module = *item.value();
    if (const auto* l = module.as<LinearImpl>()) {
      if (l->partitioning() == Partition::Column) {
        add(name, l->weight, "weight", 0, l->sub_sizes());
        add(name, l->bias, "bias", 0, l->sub_sizes());
      } else if (l->partitioning() == Partition::Row) {
        add(name, l->weight, "weight", 1, l->sub_sizes());
      }
    } else if (const auto* c = module.as<ColumnParallelLinearImpl>()) {
      add(name, c->weight, "weight", 0);
      add(name, c->bias, "bias", 0);
    } else if (const auto* r = module.as<RowParallelLinearImpl>()) {
      add(name, r->weight, "weight", 1);
    } else if (const auto* e = module.as<VocabParallelEmbeddingImpl>()) {
      add(name, e->weight, "weight", 0);
    }
  }
  return out;
}

}  // namespace deepspeed::tensor_parallel
