// The two element-wise updates 1-bit Adam and 0/1 Adam share, in one pass over memory for CPU
// fp32 tensors (a compressed step spends its time in such passes once the network no longer
// holds it up), else as torch expressions; the same float arithmetic either way.
#pragma once

#include <deepspeed/optimizer.h>

namespace deepspeed::onebit_detail {

// m = β1·m + (1-β1)·g
void update_momentum(torch::Tensor& m, const torch::Tensor& g, double beta1);
// p -= lr·(m/(sqrt(v)+eps) + weight_decay·p), with the group's lr, eps and weight_decay.
void update_parameter(torch::Tensor& p, const torch::Tensor& m, const torch::Tensor& v, const ParamGroup& group);

}  // namespace deepspeed::onebit_detail
