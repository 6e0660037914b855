#include "checkpoint/rank_exchange.h"

#include <cstring>

#include <torch/torch.h>

#include <deepspeed/errors.h>

namespace deepspeed::checkpoint {

void agree_on_success(comm::ProcessGroup& group, std::exception_ptr local_error, const std::string& phase) {
  if (group.size() > 1) {
    // The lowest failing rank, or world size when none failed.
    auto first_failed = torch::full({1}, local_error ? group.rank() : group.size(),
                                    torch::TensorOptions().dtype(torch::kLong).device(group.device()));
    group.all_reduce(first_failed, comm::ReduceOp::Min);
    const int64_t failed = first_failed.item<int64_t>();
    if (local_error) std::rethrow_exception(local_error);
    if (failed < group.size()) {
      throw CheckpointError("checkpoint: rank " + std::to_string(failed) + " failed while " + phase +
                            " (its own error says why)");
    }
  } else if (local_error) {
    std::rethrow_exception(local_error);
  }
}

std::vector<std::string> all_gather_bytes(comm::ProcessGroup& group, const std::string& bytes) {
  if (group.size() == 1) return {bytes};
  const auto opts = torch::TensorOptions().dtype(torch::kLong).device(group.device());
  auto length = torch::full({1}, static_cast<int64_t>(bytes.size()), opts);
  std::vector<torch::Tensor> lengths;
  for (int64_t r = 0; r < group.size(); ++r) lengths.push_back(torch::empty({1}, opts));
  group.all_gather(lengths, length);
  int64_t longest = 0;
  for (auto& l : lengths) longest = std::max(longest, l.item<int64_t>());

  auto padded = torch::zeros({std::max<int64_t>(longest, 1)}, torch::kByte);
  std::memcpy(padded.data_ptr(), bytes.data(), bytes.size());
  padded = padded.to(group.device());
  std::vector<torch::Tensor> all;
  for (int64_t r = 0; r < group.size(); ++r) all.push_back(torch::empty_like(padded));
  group.all_gather(all, padded);
  std::vector<std::string> out;
  for (int64_t r = 0; r < group.size(); ++r) {
    auto host = all[r].cpu();
    out.emplace_back(static_cast<const char*>(host.data_ptr()), static_cast<size_t>(lengths[r].item<int64_t>()));
  }
  return out;
}

}  // namespace deepspeed::checkpoint
