#include "runtime/flops_profiler/module_tree.h"

#include <sstream>

namespace deepspeed::flops {
namespace {

// pretty_print writes "torch::nn::Linear(in_features=8, out_features=4, bias=true)"; the part
// in parentheses is what Python's extra_repr() would return.
std::string inner_repr(const torch::nn::Module& module) {
  std::ostringstream s;
  module.pretty_print(s);
  const std::string text = s.str();
  const auto open = text.find('(');
  if (open == std::string::npos || text.empty() || text.back() != ')') return "";
  return text.substr(open + 1, text.size() - open - 2);
}

}  // namespace

std::string short_type_name(const std::string& name) {
  std::string base = name.substr(0, name.find('<'));
  if (const auto colons = base.rfind("::"); colons != std::string::npos) base = base.substr(colons + 2);
  if (base.size() > 4 && base.ends_with("Impl")) base.resize(base.size() - 4);
  return base;
}

ModuleTree::ModuleTree(const torch::nn::Module& root) { add(root, "", "", -1, 0); }

int ModuleTree::add(const torch::nn::Module& module, std::string path, std::string key, int parent, int depth) {
  const int index = static_cast<int>(nodes_.size());
  ModuleNode node;
  node.path = std::move(path);
  node.key = std::move(key);
  node.type = short_type_name(module.name());
  node.extra_repr = inner_repr(module);
  node.parent = parent;
  node.depth = depth;
  for (const auto& p : module.parameters(/*recurse=*/true)) node.params += p.numel();
  nodes_.push_back(std::move(node));
  // The first module to hold a parameter owns it (a shared parameter goes to the first).
  for (const auto& p : module.parameters(/*recurse=*/false)) {
    owners_.emplace(p.unsafeGetTensorImpl(), index);
    if (p.has_storage()) owners_.emplace(p.storage().unsafeGetStorageImpl(), index);
  }
  for (const auto& child : module.named_children()) {
    const std::string child_path = nodes_[index].path.empty() ? child.key() : nodes_[index].path + "." + child.key();
    const int c = add(*child.value(), child_path, child.key(), index, depth + 1);
    nodes_[index].children.push_back(c);
  }
  return index;
}

int ModuleTree::lowest_common_ancestor(int a, int b) const {
  while (a != b) {
    if (nodes_[a].depth >= nodes_[b].depth) {
      a = nodes_[a].parent;
    } else {
      b = nodes_[b].parent;
    }
    if (a < 0 || b < 0) return 0;
  }
  return a;
}

int ModuleTree::owner(const OpRecord& record) const {
  for (const void* t : record.tensors) {
    if (auto it = owners_.find(t); it != owners_.end()) return it->second;
  }
  return -1;
}

std::vector<int> ModuleTree::attribute(const std::vector<OpRecord>& records) const {
  const int n = static_cast<int>(records.size());
  std::vector<int> direct(n), result(n);
  for (int i = 0; i < n; ++i) direct[i] = owner(records[i]);
  std::vector<int> before(n, -1), after(n, -1);
  for (int i = 0, last = -1; i < n; ++i) {
    before[i] = last;
    if (direct[i] >= 0) last = direct[i];
  }
  for (int i = n - 1, next = -1; i >= 0; --i) {
    after[i] = next;
    if (direct[i] >= 0) next = direct[i];
  }
  for (int i = 0; i < n; ++i) {
    if (direct[i] >= 0) {
      result[i] = direct[i];
    } else if (before[i] < 0 || after[i] < 0) {
      result[i] = 0;
    } else {
      result[i] = lowest_common_ancestor(before[i], after[i]);
    }
  }
  return result;
}

}  // namespace deepspeed::flops
