// deepspeed::initialize: the one call that turns a model into a training engine, as Python's
// deepspeed.initialize(args, model, optimizer, model_parameters, training_data,
// lr_scheduler, config):
//
//   auto [engine, optimizer, trainloader, scheduler] =
//       deepspeed::initialize(app, net, net->parameters(), trainset);
//
// It sets up the process groups from the launcher's environment (init_distributed, then the
// data/model/sequence groups: <deepspeed/groups.h>), reads the
// config (--deepspeed_config, or InitializeOptions::config), builds the optimizer and LR
// schedule the config names unless the caller gives its own, and wraps the training data in a
// distributed loader. Errors: ConfigError for the config, EngineError for misuse.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>

#include <deepspeed/comm.h>
#include <deepspeed/data_loader.h>
#include <deepspeed/engine.h>
#include <deepspeed/groups.h>
#include <deepspeed/lr_schedules.h>
#include <deepspeed/model_engine.h>
#include <deepspeed/optimizer.h>

namespace deepspeed {

// What initialize() returns; usable with structured bindings. optimizer, training_dataloader
// and lr_scheduler are null when there is none.
struct InitializeResult {
  std::shared_ptr<Engine> engine;
  std::shared_ptr<Optimizer> optimizer;
  std::shared_ptr<DataLoader> training_dataloader;
  std::shared_ptr<LRScheduler> lr_scheduler;
};

// The same for a model of a known type: the engine is a ModelEngine<Model>, whose forward
// returns what the model's forward returns. Converts to InitializeResult.
template <typename Model>
struct ModelInitializeResult {
  std::shared_ptr<ModelEngine<Model>> engine;
  std::shared_ptr<Optimizer> optimizer;
  std::shared_ptr<DataLoader> training_dataloader;
  std::shared_ptr<LRScheduler> lr_scheduler;

  operator InitializeResult() const { return {engine, optimizer, training_dataloader, lr_scheduler}; }
};

// A data set, type-erased: how to read a batch of indices, and how many samples there are.
struct TrainingData {
  DataLoader::BatchReader reader;
  std::size_t size = 0;
};

// Any LibTorch dataset of (data, target) examples (torch::data::datasets::Dataset, or one
// mapped with transforms).
template <typename Dataset>
TrainingData training_data(Dataset dataset) {
  auto shared = std::make_shared<Dataset>(std::move(dataset));
  auto size = shared->size();
  if (!size) throw EngineError("initialize: training_data must have a known size");
  return {make_batch_reader(shared), *size};
}

// Python's keyword arguments. Everything is optional.
struct InitializeOptions {
  // The config: a path or JSON text; or an already-parsed JSON value. Giving one here and
  // --deepspeed_config on the command line is an error, as in DeepSpeed.
  std::optional<std::string> config;
  std::optional<nlohmann::json> config_json;
  // Parameters to optimize (default: the model's trainable parameters), or groups of them.
  std::vector<torch::Tensor> model_parameters;
  std::vector<ParamGroup> param_groups;
  // A client optimizer (or a factory of one), which wins over the config's "optimizer".
  std::shared_ptr<Optimizer> optimizer;
  std::function<std::shared_ptr<Optimizer>(std::vector<ParamGroup>)> optimizer_factory;
  // A client LR schedule (or a factory of one), which wins over the config's "scheduler".
  std::shared_ptr<LRScheduler> lr_scheduler;
  std::function<std::shared_ptr<LRScheduler>(Optimizer&)> lr_scheduler_factory;
  std::optional<TrainingData> training_data;
  uint64_t data_seed = 0;  // the training loader's shuffling seed
  comm::InitOptions distributed;
  // A model written for model parallelism: its groups (DeepSpeed's mpu; a deepspeed::Groups
  // from Groups::create serves), and the parameters it splits across the tensor-parallel group.
  // Without an mpu the groups come from the config (sequence_parallel_size) and the data group
  // is every rank. The batch sizes are then per data-parallel rank of the mpu.
  std::shared_ptr<ModelParallelUnit> mpu;
  std::vector<torch::Tensor> tensor_parallel_parameters;
  // --local_rank as parsed from the command line; checked against LOCAL_RANK.
  std::optional<int64_t> local_rank;
};

// Adds DeepSpeed's arguments (--deepspeed, --deepspeed_config, the deprecated --deepscale and
// --deepscale_config, and --local_rank, which the launcher passes) to a CLI11 app.
CLI::App& add_config_arguments(CLI::App& app);

// The core, for any model wrapped in an AnyModule. `make_engine` builds the engine from what
// initialize prepared (the overloads below pass one that builds a ModelEngine).
InitializeResult initialize(torch::nn::AnyModule model, std::shared_ptr<torch::nn::Module> module,
                            InitializeOptions options, const EngineFactory& make_engine = engine_factory<Engine>());
// Same, taking the config and --local_rank from an app that add_config_arguments prepared.
InitializeResult initialize(const CLI::App& app, torch::nn::AnyModule model,
                            std::shared_ptr<torch::nn::Module> module, InitializeOptions options,
                            const EngineFactory& make_engine = engine_factory<Engine>());

namespace initialize_detail {

template <typename F>
struct ResultOf;
template <typename R, typename C, typename... A>
struct ResultOf<R (C::*)(A...)> {
  using type = R;
};
template <typename R, typename C, typename... A>
struct ResultOf<R (C::*)(A...) const> {
  using type = R;
};
template <typename R, typename C, typename... A>
struct ResultOf<R (C::*)(A...) noexcept> {
  using type = R;
};
template <typename R, typename C, typename... A>
struct ResultOf<R (C::*)(A...) const noexcept> {
  using type = R;
};

// The model behind a type-erased Engine::forward, where torch::nn::AnyModule can hold it (one
// forward, not overloaded, not a template, returning a value); otherwise empty, and only
// ModelEngine::forward calls it.
template <typename Model>
torch::nn::AnyModule type_erased(const std::shared_ptr<Model>& model) {
  if constexpr (requires { &Model::forward; }) {
    if constexpr (!std::is_void_v<typename ResultOf<decltype(&Model::forward)>::type>) {
      return torch::nn::AnyModule(model);
    }
  }
  return {};
}

template <typename Model>
ModelInitializeResult<Model> typed(InitializeResult r) {
  return {std::static_pointer_cast<ModelEngine<Model>>(r.engine), r.optimizer, r.training_dataloader,
          r.lr_scheduler};
}

}  // namespace initialize_detail

template <typename ModuleType>
ModelInitializeResult<ModuleType> initialize(std::shared_ptr<ModuleType> model, InitializeOptions options = {}) {
  return initialize_detail::typed<ModuleType>(initialize(initialize_detail::type_erased(model), model,
                                                         std::move(options), engine_factory<ModelEngine<ModuleType>>()));
}

template <typename ModuleType>
ModelInitializeResult<ModuleType> initialize(const CLI::App& app, std::shared_ptr<ModuleType> model,
                                             std::vector<torch::Tensor> model_parameters = {}) {
  InitializeOptions options;
  options.model_parameters = std::move(model_parameters);
  return initialize_detail::typed<ModuleType>(initialize(app, initialize_detail::type_erased(model), model,
                                                         std::move(options), engine_factory<ModelEngine<ModuleType>>()));
}

// DeepSpeed's model_parameters given as parameter groups (its list of dicts), e.g. the groups of
// moe::split_params_into_different_moe_groups_for_optimizer.
template <typename ModuleType>
ModelInitializeResult<ModuleType> initialize(const CLI::App& app, std::shared_ptr<ModuleType> model,
                                             std::vector<ParamGroup> param_groups) {
  InitializeOptions options;
  options.param_groups = std::move(param_groups);
  return initialize_detail::typed<ModuleType>(initialize(app, initialize_detail::type_erased(model), model,
                                                         std::move(options), engine_factory<ModelEngine<ModuleType>>()));
}

template <typename ModuleType, typename Dataset>
ModelInitializeResult<ModuleType> initialize(const CLI::App& app, std::shared_ptr<ModuleType> model,
                                             std::vector<torch::Tensor> model_parameters, Dataset training_dataset) {
  InitializeOptions options;
  options.model_parameters = std::move(model_parameters);
  options.training_data = training_data(std::move(training_dataset));
  return initialize_detail::typed<ModuleType>(initialize(app, initialize_detail::type_erased(model), model,
                                                         std::move(options), engine_factory<ModelEngine<ModuleType>>()));
}

}  // namespace deepspeed
