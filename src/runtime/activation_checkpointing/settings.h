// The process-wide state of activation checkpointing, as DeepSpeed keeps it in module globals:
// the settings configure() chose, the model-parallel group partitions go to, the contiguous
// buffers partitions are copied into between a forward and its backward, and the count of
// bytes the waiting checkpoints hold. Each checkpoint copies the settings when its forward
// runs, so a configure() between a forward and its backward does not change that backward.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include <torch/torch.h>

#include <deepspeed/activation_checkpointing.h>
#include <deepspeed/comm.h>

namespace deepspeed::checkpointing::detail {

struct Settings {
  ActivationCheckpointingConfig config;
  // Where partition_activations splits saved inputs (null: nothing is split).
  std::shared_ptr<comm::ProcessGroup> partition_group;
  int64_t mp_rank = 0;
  int64_t mp_size = 1;
  int64_t dp_rank = 0;
  // This process's rank in the job, for rank-0-only log lines.
  int64_t global_rank = 0;
  bool configured = false;
  // configure() called by the program: initialize then leaves the settings alone.
  bool configured_by_program = false;
};

Settings current_settings();
void store_settings(Settings settings);

// What initialize does with the config's section: configure from it, unless the program
// called configure() itself.
void configure_for_engine(std::shared_ptr<const ModelParallelUnit> mpu, const ActivationCheckpointingConfig& config);
// Back to the state of a process that never configured (for tests).
void unconfigure();

// A slice of `numel` elements for argument `index` of a checkpoint, from the contiguous buffer
// of that argument (number_checkpoints slices, made on first use on `options`' device).
torch::Tensor contiguous_slot(std::size_t index, int64_t numel, const torch::TensorOptions& options,
                              int64_t number_checkpoints);
// Forgets the buffers (slices already handed out keep their memory until their backward).
void release_contiguous_buffers();

// Bytes held by checkpoints waiting for their backward.
void count_saved(const torch::Tensor& t, int sign);

// Rank 0's log line, in DeepSpeed's logger format.
void log_info(const Settings& s, std::string_view message);
// DeepSpeed's print_dist of its timers: "[Rank 0] time (ms) | forward: 1.23".
void log_time(const Settings& s, std::string_view name, double milliseconds);

// Waits for the device's queued work (synchronize_checkpoint_boundary, profile timings);
// nothing to wait for on the CPU.
void synchronize_device(const torch::Device& device);

}  // namespace deepspeed::checkpointing::detail
