// The module tree of a model as the flops profiler sees it: each module's place, class name
// and parameter count, which module owns each parameter, and which module an operator
// belongs to (see attribute()).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include <torch/nn/module.h>

#include "runtime/flops_profiler/op_recorder.h"

namespace deepspeed::flops {

struct ModuleNode {
  std::string path;        // "" for the root, "blocks.0.attn"
  std::string key;         // the name under its parent ("attn")
  std::string type;        // "Linear", "Net" (namespace and Impl suffix dropped)
  std::string extra_repr;  // what the module's pretty_print shows inside its parentheses
  int parent = -1;
  int depth = 0;
  std::vector<int> children;
  int64_t params = 0;      // its parameters and its children's
};

class ModuleTree {
 public:
  explicit ModuleTree(const torch::nn::Module& root);
  const std::vector<ModuleNode>& nodes() const { return nodes_; }

  int lowest_common_ancestor(int a, int b) const;
  // The module of each record: the module owning the first parameter among the op's inputs
  // (parameters are matched by tensor, then by storage, so views of them count too); for an
  // op that takes none, the lowest common ancestor of the modules of the nearest such ops
  // before and after it (the root when there is none on a side) -- the deepest module whose
  // forward is sure to have been running, when each module runs once per forward.
  std::vector<int> attribute(const std::vector<OpRecord>& records) const;

 private:
  int add(const torch::nn::Module& module, std::string path, std::string key, int parent, int depth);
  int owner(const OpRecord& record) const;

  std::vector<ModuleNode> nodes_;
  std::unordered_map<const void*, int> owners_;  // TensorImpl* / StorageImpl* -> module
};

// "torch::nn::Conv2dImpl" -> "Conv2d", "cifar10::NetImpl" -> "Net".
std::string short_type_name(const std::string& name);

}  // namespace deepspeed::flops
