// All-to-all with autograd (DeepSpeed's _AllToAll): forward sends split i of dim 0 to rank i
// of `group`; backward sends the gradients back the same way.
#pragma once

#include <torch/torch.h>

#include <deepspeed/comm.h>

namespace deepspeed::moe {

// `group` must outlive the autograd graph that uses the result (the MoE layer holds it).
torch::Tensor all_to_all(const torch::Tensor& input, comm::ProcessGroup& group);

}  // namespace deepspeed::moe
