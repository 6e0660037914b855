#include "runtime/zero/parameter_use_observer.h"

#include <cstdio>
#include <exception>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include <ATen/core/ivalue.h>
#include <ATen/record_function.h>

namespace deepspeed {
namespace {

// A RecordFunction callback is a plain function pointer without user data, and backward may
// run it on autograd's threads, so the storages it looks for are kept here, process-wide,
// each with the observer that watches it. Nothing else is global.
struct Registry {
  std::shared_mutex mutex;
  struct Watched {
    ParameterUseObserver* observer;
    int64_t parameter;
  };
  std::unordered_map<const void*, Watched> owner;
};

Registry& registry() {
  static Registry r;
  return r;
}

thread_local bool tl_in_sink = false;

void look_at(const at::Tensor& t, std::vector<Registry::Watched>& hits) {
  if (!t.defined() || !t.has_storage()) return;
  const void* storage = t.storage().unsafeGetStorageImpl();
  auto& r = registry();
  std::shared_lock lock(r.mutex);
  if (auto it = r.owner.find(storage); it != r.owner.end()) hits.push_back(it->second);
}

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
  if (tl_in_sink) return nullptr;
  std::vector<Registry::Watched> hits;
  try {
    for (const auto& v : fn.inputs()) {
      if (v.isTensor()) {
        look_at(v.toTensor(), hits);
      } else if (v.isTensorList()) {
        for (const auto& element : v.toTensorList()) {
          const at::Tensor t = element;
          look_at(t, hits);
        }
      } else if (v.isList()) {
        for (const auto& e : v.toListRef()) {
          if (e.isTensor()) look_at(e.toTensor(), hits);
        }
      }
    }
  } catch (const std::exception&) {
    // An operation recorded without its inputs (none of ours reads parameters that way).
    return nullptr;
  }
  if (hits.empty()) return nullptr;
  tl_in_sink = true;
  try {
    at::DisableRecordFunctionGuard off;
    // One report per observer, with every parameter of its that this operation reads.
    std::vector<int64_t> parameters;
    for (size_t i = 0; i < hits.size(); ++i) {
      if (hits[i].observer == nullptr) continue;
      parameters.clear();
      for (size_t j = i; j < hits.size(); ++j) {
        if (hits[j].observer != hits[i].observer) continue;
        parameters.push_back(hits[j].parameter);
        if (j != i) hits[j].observer = nullptr;
      }
      hits[i].observer->report(parameters);
    }
  } catch (const std::exception& e) {
    // RecordFunction swallows what a callback throws, and the operation would then read an
    // empty parameter: nothing sensible can continue.
    tl_in_sink = false;
    std::fprintf(stderr, "ZeRO-3: could not gather a parameter for %s: %s\n", fn.name(), e.what());
    std::fflush(stderr);
    std::terminate();
  }
  tl_in_sink = false;
  return nullptr;
}

}  // namespace

ParameterUseObserver::ParameterUseObserver(const std::vector<torch::Tensor>& parameters, Sink sink)
    : sink_(std::move(sink)) {
  {
    auto& r = registry();
    std::unique_lock lock(r.mutex);
    for (size_t i = 0; i < parameters.size(); ++i) {
      const void* s = parameters[i].storage().unsafeGetStorageImpl();
      storages_.push_back(s);
      r.owner[s] = {this, static_cast<int64_t>(i)};
    }
  }
  handle_ = at::addThreadLocalCallback(
      at::RecordFunctionCallback(&on_start).needsInputs(true).scopes({at::RecordScope::FUNCTION}));
}

ParameterUseObserver::~ParameterUseObserver() {
  at::removeCallback(handle_);
  auto& r = registry();
  std::unique_lock lock(r.mutex);
  for (const void* s : storages_) {
    if (auto it = r.owner.find(s); it != r.owner.end() && it->second.observer == this) r.owner.erase(it);
  }
}

}  // namespace deepspeed
