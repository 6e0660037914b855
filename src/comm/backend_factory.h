// Creating a c10d backend (Gloo or NCCL) over a store: shared by the job's group
// (init_distributed) and the groups carved from it (ProcessGroup::new_group).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <deepspeed/torch_compat.h>

namespace deepspeed::comm {

// `backend_name` is "gloo" or "nccl"; `rank` and `size` are the group's own. Gloo talks over
// loopback when `master_addr` is a loopback address (every rank is on this host), else over
// GLOO_SOCKET_IFNAME or the host name's interface. Throws CommError when this build has no
// such backend; c10d's own exceptions pass through (the caller words them).
compat::BackendPtr make_backend(const std::string& backend_name, const c10::intrusive_ptr<c10d::Store>& store,
                                int64_t rank, int64_t size, const std::string& master_addr,
                                std::chrono::milliseconds timeout);

}  // namespace deepspeed::comm
