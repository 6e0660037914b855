#include <deepspeed/initialize.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>

#include <fmt/format.h>

#include <deepspeed/config.h>
#include <deepspeed/errors.h>
#include <deepspeed/onebit.h>
#include <deepspeed/tensor_parallel.h>

#include "runtime/activation_checkpointing/settings.h"
#include "runtime/logger.h"
#include "runtime/uncaught_exception_report.h"

namespace deepspeed {
namespace {

std::optional<std::string> option_value(const CLI::App& app, const std::string& name) {
  try {
    const CLI::Option* opt = app.get_option(name);
    if (opt->count() == 0) return std::nullopt;
    return opt->as<std::string>();
  } catch (const CLI::OptionNotFound&) {
    return std::nullopt;
  }
}

DeepSpeedConfig resolve_config(const InitializeOptions& options, int64_t world_size) {
  if (options.config && options.config_json) {
    throw EngineError("initialize: give the config either as text/path or as JSON, not both");
  }
  if (options.config_json) return config_from_json(*options.config_json, world_size);
  if (options.config) return load_config(*options.config, world_size);
  throw EngineError("DeepSpeed requires --deepspeed_config to specify configuration file");
}

std::vector<ParamGroup> parameter_groups(const InitializeOptions& options, torch::nn::Module& module) {
  if (!options.param_groups.empty()) {
    std::vector<ParamGroup> groups;
    for (const auto& g : options.param_groups) {
      if (!g.params.empty()) groups.push_back(g);  // as DeepSpeed: empty groups are dropped
    }
    return groups;
  }
  ParamGroup group;
  if (!options.model_parameters.empty()) {
    group.params = options.model_parameters;
  } else {
    for (auto& p : module.parameters()) {
      if (p.requires_grad()) group.params.push_back(p);
    }
  }
  return {group};
}

// tensor_parallel.autotp_size, read before the config is (the batch sizes are per data-parallel
// rank, and the data-parallel size depends on it); 0 and 1 are "off".
int64_t autotp_size(const InitializeOptions& options) {
  if (!options.config_json && !options.config) return 1;
  nlohmann::json value;
  try {
    value = options.config_json ? *options.config_json : load_config_json(*options.config);
  } catch (const ConfigError&) {
    return 1;  // resolve_config says what is wrong with it, with the line
  }
  if (!value.is_object()) return 1;
  const auto tp = value.find("tensor_parallel");
  if (tp == value.end() || !tp->is_object()) return 1;
  const auto size = tp->find("autotp_size");
  if (size == tp->end() || !size->is_number_integer()) return 1;
  return std::max<int64_t>(1, size->get<int64_t>());
}

void check_local_rank(const InitializeOptions& options, const comm::ProcessGroup& group) {
  if (options.local_rank && *options.local_rank >= 0 && *options.local_rank != group.local_rank()) {
    throw EngineError("Mismatch in local rank setting, args.local_rank=" + std::to_string(*options.local_rank) +
                      " but env['LOCAL_RANK']=" + std::to_string(group.local_rank()) + ".");
  }
}

}  // namespace

CLI::App& add_config_arguments(CLI::App& app) {
  const std::string group = "DeepSpeed";
  app.add_flag("--deepspeed")->description("Enable DeepSpeed (helper flag for user code, no impact on DeepSpeed backend)")
      ->group(group);
  app.add_option("--deepspeed_config", "DeepSpeed json configuration file.")->group(group);
  app.add_flag("--deepscale")->description("Deprecated enable DeepSpeed (helper flag for user code, no impact on DeepSpeed backend)")
      ->group(group);
  app.add_option("--deepscale_config", "Deprecated DeepSpeed json configuration file.")->group(group);
  app.add_option("--local_rank", "local rank passed from the distributed launcher")
      ->default_val(-1)
      ->group(group);
  return app;
}

InitializeResult initialize(const CLI::App& app, torch::nn::AnyModule model,
                            std::shared_ptr<torch::nn::Module> module, InitializeOptions options,
                            const EngineFactory& make_engine) {
  auto from_args = option_value(app, "--deepspeed_config");
  if (!from_args) {
    if (auto legacy = option_value(app, "--deepscale_config")) {
      std::cerr << "************ --deepscale_config is deprecated, please use --deepspeed_config "
                   "************\n";
      from_args = legacy;
    }
  }
  if (from_args && (options.config || options.config_json)) {
    throw EngineError("Not sure how to proceed, we were given deepspeed configs in the deepspeed "
                      "arguments and deepspeed.initialize() function call");
  }
  if (from_args) options.config = from_args;
  if (auto lr = option_value(app, "--local_rank"); lr && !options.local_rank) {
    options.local_rank = std::stoll(*lr);
  }
  return initialize(std::move(model), std::move(module), std::move(options), make_engine);
}

InitializeResult initialize(torch::nn::AnyModule model, std::shared_ptr<torch::nn::Module> module,
                            InitializeOptions options, const EngineFactory& make_engine) {
  report_uncaught_exceptions_briefly();
  if (!module) throw EngineError("deepspeed.initialize requires a model");
  // The config is read before the ranks connect: a bad one then fails every rank on its own,
  // with the key named, instead of one rank failing first and closing its connections while
  // a peer is still creating the process group (which then fails with a connection error).
  const auto existing = comm::world_group();
  // The batch arithmetic is per data-parallel rank: the mpu's, else the world's (which the
  // config divides by sequence_parallel_size itself).
  const int64_t processes = existing ? existing->size() : comm::discover_environment().world_size;
  const int64_t autotp = autotp_size(options);
  if (!options.mpu && processes % autotp != 0) {
    throw ConfigError("tensor_parallel.autotp_size",
                      "the world size " + std::to_string(processes) + " is not divisible by " + std::to_string(autotp));
  }
  const int64_t config_world = options.mpu ? options.mpu->get_data_parallel_world_size() : processes / autotp;
  auto config = resolve_config(options, config_world);
  if (options.mpu && config.sequence_parallel_size > 1) {
    throw EngineError("sequence_parallel_size " + std::to_string(config.sequence_parallel_size) +
                      " together with an mpu: give the sequence-parallel group through the mpu's groups or the "
                      "config, not both");
  }
  auto group = comm::init_distributed(options.distributed);
  check_local_rank(options, *group);
  std::shared_ptr<Groups> groups;
  if (options.mpu) {
    groups = std::dynamic_pointer_cast<Groups>(options.mpu);
    if (!groups) groups = Groups::from_mpu(group, *options.mpu);
    if (groups->world() != group) throw EngineError("the mpu's groups were not made from this job's process group");
  } else {
    ParallelSizes sizes;
    sizes.sequence = config.sequence_parallel_size;
    sizes.tensor = autotp;
    groups = Groups::create(group, sizes);
  }
  if (autotp > 1) {
    // AutoTP: the model's linear layers split over the tensor group before anything (the
    // optimizer, ZeRO's partitions, the first broadcast) sees their parameters.
    if (groups->tensor_parallel()->size() != autotp) {
      throw ConfigError("tensor_parallel.autotp_size",
                        "is " + std::to_string(autotp) + " but the mpu's tensor-parallel group has " +
                            std::to_string(groups->tensor_parallel()->size()) + " ranks");
    }
    auto split = tensor_parallel::apply_autotp(*module, config.tensor_parallel, groups->tensor_parallel());
    const LogLevel level = config.log_level ? parse_log_level(*config.log_level) : LogLevel::Info;
    Logger(group->rank(), level)
        .info(fmt::format("AutoTP: {} column-parallel and {} row-parallel linear layers over {} tensor-parallel "
                          "ranks, {} replicated",
                          split.column.size(), split.row.size(), autotp, split.replicated.size()));
    options.tensor_parallel_parameters.insert(options.tensor_parallel_parameters.end(), split.split_parameters.begin(),
                                              split.split_parameters.end());
  }

  // A config with the section configures activation checkpointing for the model's forward,
  // over these groups, unless the program called configure() itself (DeepSpeed leaves it to
  // the program: docs/compatibility.md).
  if (const auto it = config.raw.find("activation_checkpointing"); it != config.raw.end() && !it->is_null()) {
    checkpointing::detail::configure_for_engine(groups, config.activation_checkpointing);
  }

  // Parameters move before the optimizer sees them (Module::to keeps the tensor objects, but
  // an optimizer's state must be created on the parameters' final device). Not under ZeRO-3
  // with an optimizer: its state is for the fp32 partitions, and the engine moves the
  // parameters one at a time as it partitions them (the model may not fit on the device).
  const bool zero3_partitions =
      config.zero_stage() == 3 && (options.optimizer || options.optimizer_factory || config.optimizer.has_value());
  if (!zero3_partitions) module->to(group->device());

  std::shared_ptr<Optimizer> optimizer = options.optimizer;
  if (!optimizer && options.optimizer_factory) {
    optimizer = options.optimizer_factory(parameter_groups(options, *module));
  }
  if (!optimizer && config.optimizer) {
    OptimizerOptions oo;
    oo.cpu_offload = config.zero_optimization.offload_optimizer_enabled();
    try {
      // The 1-bit optimizers communicate over the data-parallel group themselves.
      optimizer = is_onebit_optimizer(config.optimizer->type)
                      ? make_onebit_optimizer(config.optimizer->type, config.optimizer->params,
                                              parameter_groups(options, *module), groups->data_parallel())
                      : make_optimizer(config.optimizer->type, config.optimizer->params,
                                       parameter_groups(options, *module), oo);
    } catch (const ConfigError& e) {
      throw config.locate(e);
    }
  }
  std::shared_ptr<LRScheduler> scheduler = options.lr_scheduler;
  if (scheduler && !optimizer) {
    throw EngineError("an LR scheduler was given but there is no optimizer for it to drive");
  }
  if (!scheduler && optimizer && options.lr_scheduler_factory) {
    scheduler = options.lr_scheduler_factory(*optimizer);
  }
  if (!scheduler && optimizer && config.scheduler) {
    try {
      scheduler = make_lr_scheduler(config.scheduler->type, config.scheduler->params, *optimizer);
    } catch (const ConfigError& e) {
      throw config.locate(e);
    }
  }

  std::shared_ptr<DataLoader> loader;
  if (options.training_data) {
    DataLoader::Options lo;
    lo.batch_size = config.train_micro_batch_size_per_gpu;
    // Each data-parallel rank reads its own share; sequence and model-parallel peers read the
    // same samples.
    lo.rank = groups->data_parallel()->rank();
    lo.world_size = groups->data_parallel()->size();
    lo.drop_last = config.dataloader_drop_last;
    lo.seed = options.data_seed;
    loader = std::make_shared<DataLoader>(options.training_data->reader, options.training_data->size, lo);
  }

  auto engine = make_engine(std::move(model), std::move(module), std::move(config), groups, optimizer, scheduler,
                            options.tensor_parallel_parameters);
  engine->set_training_dataloader(loader);
  return {engine, optimizer, loader, scheduler};
}

}  // namespace deepspeed
