// FLOPs and MACs of one ATen operator call from its name, its inputs' shapes and its output's
// shape: the formulas of DeepSpeed's flops profiler (profiler.py), applied to the ATen ops
// that LibTorch's functions and modules call (aten::linear for Linear, aten::conv2d for
// Conv2d, ...). A MAC is one multiply-accumulate; FLOPs count it as two.
//
// Ops without a formula (views, copies, cat, einsum, ...) cost nothing themselves; the
// profiler then counts the ops they call, so einsum is counted through the bmm it runs.
// An op with a formula is counted once: the ops it calls in turn are not counted again.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace deepspeed::flops {

// What the profiler keeps of one input (only in the start callback are inputs readable).
struct InputInfo {
  enum class Kind { Tensor, None, Bool, Other };
  Kind kind = Kind::Other;
  std::vector<int64_t> sizes;  // Tensor
  bool flag = false;           // Bool
};

struct OpCost {
  int64_t flops = 0;
  int64_t macs = 0;
};

// Whether `op` ("aten::linear") has a formula here (it is then counted as one unit).
bool has_formula(std::string_view op);

// The cost of one call; `output` is the shape of its (first) result. Inputs that do not
// match the op's schema (a shape the formula cannot use) cost nothing.
OpCost op_cost(std::string_view op, const std::vector<InputInfo>& inputs, const std::vector<int64_t>& output);

}  // namespace deepspeed::flops
