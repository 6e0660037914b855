// configure(), is_configured(), reset(), set_num_layers(): DeepSpeed's module-level functions.
#include <cstdlib>

#include <fmt/format.h>

#include <deepspeed/activation_checkpointing.h>
#include <deepspeed/errors.h>

#include "runtime/activation_checkpointing/settings.h"

namespace deepspeed::checkpointing {
namespace {

int64_t job_rank() {
  if (const auto world = comm::world_group()) return world->global_rank();
  const char* rank = std::getenv("RANK");
  return rank ? std::atoll(rank) : 0;
}

void apply(std::shared_ptr<const ModelParallelUnit> mpu, const ActivationCheckpointingConfig* config,
           const Options& options, bool by_program) {
  auto s = detail::current_settings();
  s.config = config ? *config : ActivationCheckpointingConfig{};
  auto& c = s.config;
  if (options.partition_activations) c.partition_activations = *options.partition_activations;
  if (options.contiguous_checkpointing) c.contiguous_memory_optimization = *options.contiguous_checkpointing;
  if (options.num_checkpoints) c.number_checkpoints = *options.num_checkpoints;
  if (options.checkpoint_in_cpu) c.cpu_checkpointing = *options.checkpoint_in_cpu;
  if (options.synchronize) c.synchronize_checkpoint_boundary = *options.synchronize;
  if (options.profile) c.profile = *options.profile;
  if (c.contiguous_memory_optimization && !c.partition_activations) {
    throw ConfigError("activation_checkpointing.contiguous_memory_optimization",
                      "Contiguous Checkpointing is only available with partitioned activations. Set partitioned "
                      "activations to true in deepspeed config");
  }
  if (c.contiguous_memory_optimization && !c.number_checkpoints) {
    throw ConfigError("activation_checkpointing.number_checkpoints",
                      "Must specify the number of layers with contiguous memory checkpointing");
  }
  if (c.number_checkpoints && *c.number_checkpoints < 1) {
    throw ConfigError("activation_checkpointing.number_checkpoints",
                      fmt::format("expected a positive integer, got {}", *c.number_checkpoints));
  }
  // As DeepSpeed: a configure() without an mpu keeps the one given before.
  if (mpu) {
    auto group = mpu->get_tensor_model_parallel_group();
    if (!group) group = mpu->get_model_parallel_group();
    s.partition_group = group;
    s.mp_rank = group ? group->rank() : 0;
    s.mp_size = group ? group->size() : 1;
    s.dp_rank = mpu->get_data_parallel_rank();
  }
  s.global_rank = job_rank();
  s.configured = true;
  s.configured_by_program = by_program;
  detail::release_contiguous_buffers();
  detail::store_settings(s);
  detail::log_info(s, "Activation Checkpointing Information");
  detail::log_info(s, fmt::format("----Partition Activations {}, CPU CHECKPOINTING {}", c.partition_activations,
                                  c.cpu_checkpointing));
  detail::log_info(s, fmt::format("----contiguous Memory Checkpointing {} with {} total layers",
                                  c.contiguous_memory_optimization,
                                  c.number_checkpoints ? std::to_string(*c.number_checkpoints) : "None"));
  detail::log_info(s, fmt::format("----Synchronization {}", c.synchronize_checkpoint_boundary));
  detail::log_info(s, fmt::format("----Profiling time in checkpointing {}", c.profile));
}

}  // namespace

namespace detail {

void configure_for_engine(std::shared_ptr<const ModelParallelUnit> mpu, const ActivationCheckpointingConfig& config) {
  if (current_settings().configured_by_program) return;
  apply(std::move(mpu), &config, {}, false);
}

void unconfigure() {
  release_contiguous_buffers();
  store_settings(Settings{});
}

}  // namespace detail

void configure(std::shared_ptr<const ModelParallelUnit> mpu, const ActivationCheckpointingConfig* config,
               const Options& options) {
  apply(std::move(mpu), config, options, true);
}

void configure(std::shared_ptr<const ModelParallelUnit> mpu, const std::string& config_path_or_json,
               const Options& options) {
  // The batch sizes are checked per data-parallel rank, as initialize reads the file.
  const int64_t world = mpu ? mpu->get_data_parallel_world_size()
                        : comm::world_group() ? comm::world_group()->size()
                                              : 1;
  const auto config = load_config(config_path_or_json, world);
  configure(std::move(mpu), &config.activation_checkpointing, options);
}

bool is_configured() { return detail::current_settings().configured; }

ActivationCheckpointingConfig settings() { return detail::current_settings().config; }

void reset() { detail::release_contiguous_buffers(); }

void set_num_layers(int64_t num_layers) {
  if (num_layers < 1) {
    throw ConfigError("activation_checkpointing.number_checkpoints",
                      fmt::format("set_num_layers: expected a positive number of layers, got {}", num_layers));
  }
  auto s = detail::current_settings();
  s.config.number_checkpoints = num_layers;
  detail::store_settings(s);
}

}  // namespace deepspeed::checkpointing
