#include "checkpoint/tag_validation.h"

#include <torch/torch.h>

#include <deepspeed/errors.h>

namespace deepspeed::checkpoint {
namespace {

// FNV-1a, kept to 62 bits so that its negation fits an int64 (min and max in one
// all-reduce). Which hash does not matter, only that equal tags hash equally.
int64_t tag_hash(const std::string& tag) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : tag) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return static_cast<int64_t>(h >> 2);
}

}  // namespace

TagValidation parse_tag_validation(const std::string& mode) {
  if (mode == "IGNORE") return TagValidation::Ignore;
  if (mode == "FAIL") return TagValidation::Fail;
  return TagValidation::Warn;
}

std::string inconsistent_tag_message(int64_t rank, const std::string& tag) {
  return "[rank=" + std::to_string(rank) + "] The checkpoint tag name '" + tag +
         "' is not consistent across all ranks. Including rank unique information in checkpoint tag could "
         "cause issues when restoring with different world sizes.";
}

bool validate_tag(comm::ProcessGroup& group, const std::string& tag, TagValidation mode) {
  if (mode == TagValidation::Ignore || group.size() == 1) return true;
  const int64_t h = tag_hash(tag);
  auto t = torch::tensor({h, -h}, torch::TensorOptions().dtype(torch::kLong)).to(group.device());
  group.all_reduce(t, comm::ReduceOp::Max);
  auto host = t.cpu();
  const bool same = host[0].item<int64_t>() == -host[1].item<int64_t>();
  if (!same && mode == TagValidation::Fail) throw CheckpointError(inconsistent_tag_message(group.rank(), tag));
  return same;
}

}  // namespace deepspeed::checkpoint
