// The engine for a model whose type is known: what deepspeed::initialize returns for a
// std::shared_ptr<Model>. Everything of Engine, plus a forward that takes whatever the
// model's forward takes and returns whatever it returns (a tensor, a tuple, a struct, an
// IValue, a reference, void), deduced:
//
//   auto [engine, optimizer, loader, scheduler] = deepspeed::initialize(app, net, net->parameters());
//   auto [logits, loss] = engine->forward(x, y);   // Net::forward(Tensor, Tensor) -> std::tuple<...>
//   engine->module()->fc1;                          // the model, as a std::shared_ptr<Net>
//
// Promises: forward does what Engine::forward does around the call (fp16.auto_cast of tensor
// arguments, torch_autocast, timers, ZeRO-3's gathering, the flops profiler) under every ZeRO
// stage; arguments the model's forward cannot take are a compile-time error that says so.
#pragma once

#include <memory>
#include <type_traits>
#include <utility>

#include <deepspeed/engine.h>

namespace deepspeed {

template <typename Model>
class ModelEngine : public Engine {
  static_assert(std::is_base_of_v<torch::nn::Module, Model>,
                "deepspeed::ModelEngine<Model>: Model must derive from torch::nn::Module (for a ModuleHolder such as "
                "torch::nn::Linear, pass its Impl: initialize(linear.ptr(), ...))");

 public:
  using Engine::Engine;

  template <typename... Args>
  decltype(auto) forward(Args&&... args) {
    constexpr bool kCallable = std::is_invocable_v<ForwardOf, Model&, decltype(auto_cast(std::declval<Args>()))...>;
    static_assert(kCallable,
                  "deepspeed::ModelEngine::forward: the model's forward cannot be called with these arguments "
                  "(tensor arguments reach it as torch::Tensor values, so it must take a torch::Tensor or a "
                  "const torch::Tensor&, not a torch::Tensor&)");
    if constexpr (kCallable) {
      return run_forward(
          [&]() -> decltype(auto) { return typed_model_->forward(auto_cast(std::forward<Args>(args))...); }, args...);
    }
  }
  template <typename... Args>
  decltype(auto) operator()(Args&&... args) {
    return forward(std::forward<Args>(args)...);
  }

  // The model, as its own type (Engine::module() gives it as a torch::nn::Module).
  std::shared_ptr<Model> module() const { return std::shared_ptr<Model>(Engine::module(), typed_model_); }

 private:
  struct ForwardOf {
    template <typename... Args>
    auto operator()(Model& m, Args&&... args) const -> decltype(m.forward(std::forward<Args>(args)...));
  };

  Model* typed_model_ = dynamic_cast<Model*>(Engine::module().get());
};

}  // namespace deepspeed
