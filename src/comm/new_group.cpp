// Groups carved from a group (DeepSpeed's dist.new_group): the members build a backend of their
// own over the parent's store, under a prefix that names the member list, so that groups never
// share keys and non-members take no part.
#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>

#include <deepspeed/comm.h>
#include <deepspeed/errors.h>

#include "comm/backend_factory.h"
#include "comm/error_text.h"

namespace deepspeed::comm {

std::shared_ptr<ProcessGroup> ProcessGroup::new_group(const std::vector<int64_t>& members) const {
  if (members.empty()) throw CommError("new_group: no members");
  std::vector<int64_t> sorted = members;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end() || sorted.front() < 0 ||
      sorted.back() >= size()) {
    throw CommError(fmt::format("new_group: members [{}] must be distinct ranks of a group of {}",
                                fmt::join(members, ", "), size()));
  }
  const auto me = std::find(members.begin(), members.end(), rank());
  if (me == members.end()) {
    throw CommError(fmt::format("new_group: rank {} is not one of the members [{}]; only members create a group",
                                rank(), fmt::join(members, ", ")));
  }
  std::vector<int64_t> global;
  for (const int64_t m : members) global.push_back(ranks_[static_cast<std::size_t>(m)]);
  const int serial = groups_made_[global]++;

  DistributedEnvironment env = env_;
  env.rank = me - members.begin();
  env.world_size = static_cast<int64_t>(members.size());
  c10::intrusive_ptr<c10d::Store> store;
  if (members.size() == 1) {
    store = c10::make_intrusive<c10d::HashStore>();
  } else {
    store = c10::make_intrusive<c10d::PrefixStore>(fmt::format("group[{}]#{}", fmt::join(global, ","), serial), store_);
  }
  try {
    auto backend = make_backend(backend_name_, store, env.rank, env.world_size, env.master_addr, timeout_);
    auto group = std::make_shared<ProcessGroup>(backend, store, env, backend_name_, device_, timeout_, global);
    group->set_comms_logger(comms_logger_);
    return group;
  } catch (const CommError&) {
    throw;
  } catch (const std::exception& e) {
    const std::string cause = error_text(e);
    if (is_timeout_text(cause)) {
      throw CommError(fmt::format("rank {}: creating the group of ranks [{}] timed out after {}: a member did not "
                                  "create it (every member must, with the same list). [c10d: {}]",
                                  global_rank(), fmt::join(global, ", "), describe_duration(timeout_), cause));
    }
    throw CommError(fmt::format("rank {}: creating the group of ranks [{}] failed: {}", global_rank(),
                                fmt::join(global, ", "), cause));
  }
}

}  // namespace deepspeed::comm
