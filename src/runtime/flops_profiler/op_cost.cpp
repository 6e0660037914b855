#include "runtime/flops_profiler/op_cost.h"

#include <algorithm>
#include <functional>
#include <string>
#include <map>

namespace deepspeed::flops {
namespace {

enum class Formula {
  Linear,       // linear(input, weight, bias): torch::linear; the Linear module runs addmm or matmul + add
  Matmul,       // matmul/mm/bmm(a, b): output elements x inner dimension
  AddMatmul,    // addmm/baddbmm(self, a, b): the product plus one add per output element
  AddMv,        // addmv(self, mat, vec)
  Dot,          // dot/vdot/mv: the product of the first input's elements
  Conv,         // conv1d/2d/3d(input, weight, bias, ...)
  ConvTranspose,
  Convolution,  // convolution/_convolution(..., transposed at input 6, ...)
  Elementwise,  // one FLOP per output element
  Pool,         // one FLOP per input element (DeepSpeed's pooling estimate)
  BatchNorm,    // batch_norm(input, weight, bias, mean, var, training, ...)
  InstanceNorm, // instance_norm(input, weight, ...)
  LayerNorm,    // layer_norm(input, shape, weight, ...), group_norm(input, groups, weight, ...)
  Attention,    // scaled_dot_product_attention(q, k, v, ...)
  Free,         // counted as zero, and what it calls is not counted (dropout, embedding)
};

// Built once, read-only afterwards.
const std::map<std::string, Formula, std::less<>>& formulas() {
  static const auto table = [] {
    std::map<std::string, Formula, std::less<>> t{
        {"aten::linear", Formula::Linear},
        {"aten::matmul", Formula::Matmul},
        {"aten::mm", Formula::Matmul},
        {"aten::bmm", Formula::Matmul},
        {"aten::addmm", Formula::AddMatmul},
        {"aten::baddbmm", Formula::AddMatmul},
        {"aten::addmv", Formula::AddMv},
        {"aten::mv", Formula::Dot},
        {"aten::dot", Formula::Dot},
        {"aten::vdot", Formula::Dot},
        {"aten::conv1d", Formula::Conv},
        {"aten::conv2d", Formula::Conv},
        {"aten::conv3d", Formula::Conv},
        {"aten::conv_transpose1d", Formula::ConvTranspose},
        {"aten::conv_transpose2d", Formula::ConvTranspose},
        {"aten::conv_transpose3d", Formula::ConvTranspose},
        {"aten::convolution", Formula::Convolution},
        {"aten::_convolution", Formula::Convolution},
        {"aten::batch_norm", Formula::BatchNorm},
        {"aten::instance_norm", Formula::InstanceNorm},
        {"aten::layer_norm", Formula::LayerNorm},
        {"aten::group_norm", Formula::LayerNorm},
        {"aten::scaled_dot_product_attention", Formula::Attention},
        {"aten::_scaled_dot_product_attention", Formula::Attention},
        {"aten::embedding", Formula::Free},
        {"aten::dropout", Formula::Free},
        {"aten::dropout_", Formula::Free},
        {"aten::feature_dropout", Formula::Free},
        {"aten::feature_dropout_", Formula::Free},
        {"aten::alpha_dropout", Formula::Free},
        {"aten::native_dropout", Formula::Free},
    };
    // One FLOP per output element, and the same for the in-place variant of each.
    for (const char* name :
         {"add", "sub", "rsub", "mul", "div", "neg", "reciprocal", "pow", "sqrt", "rsqrt", "exp", "log", "relu",
          "relu6", "leaky_relu", "elu", "selu", "celu", "prelu", "gelu", "silu", "mish", "sigmoid", "hardsigmoid",
          "hardswish", "hardtanh", "tanh", "softplus", "softsign", "softmax", "log_softmax", "_softmax",
          "_log_softmax", "upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d", "upsample_linear1d",
          "upsample_bilinear2d", "upsample_bicubic2d", "upsample_trilinear3d"}) {
      t.emplace(std::string("aten::") + name, Formula::Elementwise);
      t.emplace(std::string("aten::") + name + "_", Formula::Elementwise);
    }
    for (const char* name : {"max_pool1d", "max_pool2d", "max_pool3d", "max_pool2d_with_indices",
                             "max_pool3d_with_indices", "avg_pool1d", "avg_pool2d", "avg_pool3d",
                             "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
                             "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d"}) {
      t.emplace(std::string("aten::") + name, Formula::Pool);
    }
    return t;
  }();
  return table;
}

int64_t product(const std::vector<int64_t>& sizes, std::size_t from = 0) {
  int64_t p = 1;
  for (std::size_t i = from; i < sizes.size(); ++i) p *= sizes[i];
  return p;
}

const InputInfo* tensor_at(const std::vector<InputInfo>& inputs, std::size_t i) {
  return i < inputs.size() && inputs[i].kind == InputInfo::Kind::Tensor ? &inputs[i] : nullptr;
}

bool flag_at(const std::vector<InputInfo>& inputs, std::size_t i) {
  return i < inputs.size() && inputs[i].kind == InputInfo::Kind::Bool && inputs[i].flag;
}

OpCost macs_cost(int64_t macs, int64_t extra_flops = 0) { return {2 * macs + extra_flops, macs}; }

// Convolution as DeepSpeed counts it: kernel volume x input channels per group MACs for each
// output element, plus one add per output element for the bias.
OpCost conv_cost(const std::vector<InputInfo>& in, const std::vector<int64_t>& output, bool transposed) {
  const auto* input = tensor_at(in, 0);
  const auto* weight = tensor_at(in, 1);
  if (!input || !weight || weight->sizes.size() < 2) return {};
  const int64_t per_element = product(weight->sizes, 1);  // (in or out channels / groups) x kernel
  // Transposed: every input element is scattered into out/groups x kernel outputs.
  const int64_t macs = transposed ? product(input->sizes) * per_element : product(output) * per_element;
  const int64_t bias = tensor_at(in, 2) ? product(output) : 0;
  return macs_cost(macs, bias);
}

}  // namespace

bool has_formula(std::string_view op) { return formulas().find(op) != formulas().end(); }

OpCost op_cost(std::string_view op, const std::vector<InputInfo>& in, const std::vector<int64_t>& output) {
  const auto it = formulas().find(op);
  if (it == formulas().end()) return {};
  const InputInfo* a = tensor_at(in, 0);
  switch (it->second) {
    case Formula::Linear: {
      const auto* w = tensor_at(in, 1);
      if (!a || !w || w->sizes.empty()) return {};
      // Plus the bias add, as the addmm (2-D input) or matmul + add (otherwise) that
      // LibTorch's Linear module runs instead are counted (DeepSpeed leaves the bias out).
      return macs_cost(product(a->sizes) * w->sizes[0], tensor_at(in, 2) ? product(output) : 0);
    }
    case Formula::Matmul: {
      if (!a || a->sizes.empty()) return {};
      // Each output element is a dot product over a's last dimension (exact under broadcasting;
      // DeepSpeed's numel(a) x b.shape[-1] is the same for the usual shapes).
      return macs_cost(std::max<int64_t>(product(output), 1) * a->sizes.back());
    }
    case Formula::AddMatmul: {
      const auto* m1 = tensor_at(in, 1);
      const auto* m2 = tensor_at(in, 2);
      if (!a || !m1 || !m2 || m2->sizes.empty()) return {};
      // One add per output element (DeepSpeed counts self's elements, fewer when it broadcasts,
      // as a Linear's bias does).
      return macs_cost(product(m1->sizes) * m2->sizes.back(), product(output));
    }
    case Formula::AddMv: {
      const auto* m = tensor_at(in, 1);
      if (!a || !m) return {};
      return macs_cost(product(m->sizes), product(output));
    }
    case Formula::Dot:
      return a ? macs_cost(product(a->sizes)) : OpCost{};
    case Formula::Conv:
      return conv_cost(in, output, false);
    case Formula::ConvTranspose:
      return conv_cost(in, output, true);
    case Formula::Convolution:
      return conv_cost(in, output, flag_at(in, 6));
    case Formula::Elementwise:
      return {product(output), 0};
    case Formula::Pool:
      return a ? OpCost{product(a->sizes), 0} : OpCost{};
    case Formula::BatchNorm: {
      if (!a) return {};
      const bool affine = tensor_at(in, 1) != nullptr;
      const int64_t per = flag_at(in, 5) ? (affine ? 5 : 4) : (affine ? 2 : 1);
      return {product(a->sizes) * per, 0};
    }
    case Formula::InstanceNorm:
      return a ? OpCost{product(a->sizes) * (tensor_at(in, 1) ? 5 : 4), 0} : OpCost{};
    case Formula::LayerNorm:
      return a ? OpCost{product(a->sizes) * (tensor_at(in, 2) ? 5 : 4), 0} : OpCost{};
    case Formula::Attention: {
      const auto* k = tensor_at(in, 1);
      const auto* v = tensor_at(in, 2);
      if (!a || !k || !v || a->sizes.empty() || k->sizes.size() < 2 || v->sizes.empty()) return {};
      const int64_t s = k->sizes[k->sizes.size() - 2];
      // q @ k^T, then the weights @ v.
      const int64_t macs = product(a->sizes) * s + product(a->sizes) / a->sizes.back() * s * v->sizes.back();
      return macs_cost(macs);
    }
    case Formula::Free:
      return {};
  }
  return {};
}

}  // namespace deepspeed::flops
