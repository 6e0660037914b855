// DeepSpeedConfig → JSON: the resolved config with every default written out (what the
// ds_config tool prints). Reading the output back gives the same config.
#include <deepspeed/config.h>

namespace deepspeed {
namespace {

using nlohmann::json;

json optional_json(const std::optional<std::string>& v) { return v ? json(*v) : json(nullptr); }

json to_json(const OffloadOptimizerConfig& c) {
  return {{"device", c.device},
          {"nvme_path", optional_json(c.nvme_path)},
          {"buffer_count", c.buffer_count},
          {"pin_memory", c.pin_memory},
          {"pipeline_read", c.pipeline_read},
          {"pipeline_write", c.pipeline_write},
          {"fast_init", c.fast_init},
          {"ratio", c.ratio},
          {"super_offload", c.super_offload},
          {"cpuadam_cores_perc", c.cpuadam_cores_perc}};
}

json to_json(const OffloadParamConfig& c) {
  return {{"device", c.device},         {"nvme_path", optional_json(c.nvme_path)},
          {"buffer_count", c.buffer_count}, {"buffer_size", c.buffer_size},
          {"max_in_cpu", c.max_in_cpu}, {"pin_memory", c.pin_memory}};
}

json to_json(const ZeroConfig& c) {
  json z = {{"stage", c.stage},
            {"contiguous_gradients", c.contiguous_gradients},
            {"overlap_comm", c.overlap_comm_enabled()},
            {"reduce_scatter", c.reduce_scatter},
            {"reduce_bucket_size", c.reduce_bucket_size},
            {"use_multi_rank_bucket_allreduce", c.use_multi_rank_bucket_allreduce},
            {"allgather_partitions", c.allgather_partitions},
            {"allgather_bucket_size", c.allgather_bucket_size},
            {"load_from_fp32_weights", c.load_from_fp32_weights},
            {"elastic_checkpoint", c.elastic_checkpoint},
            {"round_robin_gradients", c.round_robin_gradients},
            {"ignore_unused_parameters", c.ignore_unused_parameters},
            {"offload_optimizer", c.offload_optimizer ? to_json(*c.offload_optimizer) : json(nullptr)},
            {"offload_param", c.offload_param ? to_json(*c.offload_param) : json(nullptr)},
            {"sub_group_size", c.sub_group_size},
            {"stage3_prefetch_bucket_size", c.stage3_prefetch_bucket_size},
            {"stage3_param_persistence_threshold", c.stage3_param_persistence_threshold},
            {"stage3_model_persistence_threshold", c.stage3_model_persistence_threshold},
            {"stage3_max_live_parameters", c.stage3_max_live_parameters},
            {"stage3_max_reuse_distance", c.stage3_max_reuse_distance},
            {"stage3_gather_16bit_weights_on_model_save", c.stage3_gather_16bit_weights_on_model_save}};
  for (const auto& [key, value] : c.other.items()) z[key] = value;
  return z;
}

json to_json(const MonitorConfig& c) {
  return {{"enabled", c.enabled}, {"output_path", c.output_path}, {"job_name", c.job_name}};
}

// Sections deepspeed-cpp does not model are printed as written.
constexpr const char* kPassedThrough[] = {
    "torch_autocast", "elasticity",
    "progressive_layer_drop", "hybrid_engine", "compile",
    "expert_parallel", "autotuning", "compression_training", "quantize_training", "data_efficiency",
    "curriculum_learning", "nebula", "datastates", "weight_quantization", "graph_harvesting",
    "use_data_before_expert_parallelism", "data_parallel_size", "eigenvalue"};

}  // namespace

std::string DeepSpeedConfig::resolved_communication_data_type() const {
  if (communication_data_type) return *communication_data_type;
  if (fp16.enabled) return "fp16";
  if (bf16.enabled) return "bf16";
  return "fp32";
}

nlohmann::json DeepSpeedConfig::to_json() const {
  json j;
  j["train_batch_size"] = train_batch_size;
  j["train_micro_batch_size_per_gpu"] = train_micro_batch_size_per_gpu;
  j["gradient_accumulation_steps"] = gradient_accumulation_steps;
  j["managed_gradient_accumulation"] = managed_gradient_accumulation;
  j["sequence_parallel_size"] = sequence_parallel_size;

  j["optimizer"] = optimizer ? json{{"type", optimizer->type},
                                    {"params", optimizer->params},
                                    {"legacy_fusion", optimizer->legacy_fusion}}
                             : json(nullptr);
  j["scheduler"] = scheduler ? json{{"type", scheduler->type}, {"params", scheduler->params}} : json(nullptr);

  j["fp16"] = {{"enabled", fp16.enabled},
               {"auto_cast", fp16.auto_cast},
               {"loss_scale", fp16.loss_scale},
               {"initial_scale_power", fp16.initial_scale_power},
               {"loss_scale_window", fp16.loss_scale_window},
               {"hysteresis", fp16.hysteresis},
               {"consecutive_hysteresis", fp16.consecutive_hysteresis},
               {"min_loss_scale", static_cast<int64_t>(fp16.min_loss_scale)},
               {"fp16_master_weights_and_grads", fp16.fp16_master_weights_and_grads}};
  j["bf16"] = {{"enabled", bf16.enabled},
               {"immediate_grad_update", bf16.immediate_grad_update},
               {"check_grad_overflow", bf16.check_grad_overflow},
               {"bf16_master_weights_and_grads", bf16.bf16_master_weights_and_grads},
               {"bf16_optimizer_states", bf16.bf16_optimizer_states}};
  json amp_json = amp.params;
  amp_json["enabled"] = amp.enabled;
  j["amp"] = amp_json;
  j["data_types"] = {{"grad_accum_dtype", optional_json(data_types.grad_accum_dtype)},
                     {"param_dtype", optional_json(data_types.param_dtype)},
                     {"buffer_dtype", optional_json(data_types.buffer_dtype)}};
  j["zero_optimization"] = deepspeed::to_json(zero_optimization);
  j["zero_allow_untested_optimizer"] = zero_allow_untested_optimizer;
  j["zero_force_ds_cpu_optimizer"] = zero_force_ds_cpu_optimizer;
  j["nonfinite_gradients"] = nonfinite_gradients;

  j["gradient_clipping"] = gradient_clipping;
  j["prescale_gradients"] = prescale_gradients;
  j["gradient_predivide_factor"] = gradient_predivide_factor;
  j["gradient_allreduce_op"] = gradient_allreduce_op;
  j["communication_data_type"] = resolved_communication_data_type();
  j["seq_parallel_communication_data_type"] = seq_parallel_communication_data_type;
  j["sparse_gradients"] = sparse_gradients;
  j["disable_allgather"] = disable_allgather;

  j["steps_per_print"] = steps_per_print;
  j["wall_clock_breakdown"] = wall_clock_breakdown;
  j["memory_breakdown"] = memory_breakdown;
  j["dump_state"] = dump_state;
  j["log_level"] = optional_json(log_level);
  j["timers"] = {{"throughput", {{"enabled", throughput_timer.enabled}, {"synchronized", throughput_timer.synchronized}}}};
  j["tensorboard"] = deepspeed::to_json(tensorboard);
  j["csv_monitor"] = deepspeed::to_json(csv_monitor);
  j["wandb"] = {{"enabled", wandb.enabled},
                {"group", optional_json(wandb.group)},
                {"team", optional_json(wandb.team)},
                {"project", wandb.project}};
  j["comet"] = {{"enabled", comet.enabled},
                {"samples_log_interval", comet.samples_log_interval},
                {"project", optional_json(comet.project)},
                {"workspace", optional_json(comet.workspace)},
                {"api_key", optional_json(comet.api_key)},
                {"experiment_name", optional_json(comet.experiment_name)},
                {"experiment_key", optional_json(comet.experiment_key)},
                {"online", comet.online ? json(*comet.online) : json(nullptr)},
                {"mode", optional_json(comet.mode)}};
  j["trackio"] = {{"enabled", trackio.enabled}, {"project", trackio.project}};
  j["flops_profiler"] = {{"enabled", flops_profiler.enabled},
                         {"recompute_fwd_factor", flops_profiler.recompute_fwd_factor},
                         {"profile_step", flops_profiler.profile_step},
                         {"module_depth", flops_profiler.module_depth},
                         {"top_modules", flops_profiler.top_modules},
                         {"detailed", flops_profiler.detailed},
                         {"output_file", optional_json(flops_profiler.output_file)}};
  j["comms_logger"] = {{"enabled", comms_logger.enabled},
                       {"verbose", comms_logger.verbose},
                       {"prof_all", comms_logger.prof_all},
                       {"debug", comms_logger.debug},
                       {"prof_ops", comms_logger.prof_ops}};
  j["checkpoint"] = {{"tag_validation", checkpoint.tag_validation},
                     {"load_universal", checkpoint.load_universal},
                     {"use_node_local_storage", checkpoint.use_node_local_storage},
                     {"parallel_write", {{"pipeline_stage", checkpoint.parallel_write_pipeline_stage}}},
                     {"checkpoint_serialization", checkpoint.checkpoint_serialization},
                     {"writer", checkpoint.writer}};
  j["aio"] = {{"block_size", aio.block_size},
              {"queue_depth", aio.queue_depth},
              {"intra_op_parallelism", aio.intra_op_parallelism},
              {"single_submit", aio.single_submit},
              {"overlap_events", aio.overlap_events},
              {"use_gds", aio.use_gds}};
  j["activation_checkpointing"] = {
      {"partition_activations", activation_checkpointing.partition_activations},
      {"cpu_checkpointing", activation_checkpointing.cpu_checkpointing},
      {"contiguous_memory_optimization", activation_checkpointing.contiguous_memory_optimization},
      {"number_checkpoints",
       activation_checkpointing.number_checkpoints ? json(*activation_checkpointing.number_checkpoints) : json(nullptr)},
      {"synchronize_checkpoint_boundary",
       activation_checkpointing.synchronize_checkpoint_boundary},
      {"profile", activation_checkpointing.profile}};
  if (sparse_attention) {
    const SparseAttentionConfig& sa = *sparse_attention;
    j["sparse_attention"] = {{"mode", sa.mode},
                             {"block", sa.block},
                             {"different_layout_per_head", sa.different_layout_per_head},
                             {"num_local_blocks", sa.num_local_blocks},
                             {"num_global_blocks", sa.num_global_blocks},
                             {"attention", sa.attention},
                             {"horizontal_global_attention", sa.horizontal_global_attention},
                             {"num_different_global_patterns", sa.num_different_global_patterns},
                             {"num_random_blocks", sa.num_random_blocks},
                             {"local_window_blocks", sa.local_window_blocks},
                             {"global_block_indices", sa.global_block_indices},
                             {"global_block_end_indices", sa.global_block_end_indices
                                                              ? json(*sa.global_block_end_indices)
                                                              : json(nullptr)},
                             {"num_sliding_window_blocks", sa.num_sliding_window_blocks},
                             {"seed", sa.seed}};
  } else {
    j["sparse_attention"] = nullptr;
  }
  j["pipeline"] = {{"stages", pipeline.stages ? json(*pipeline.stages) : json("auto")},
                   {"partition", pipeline.partition},
                   {"seed_layers", pipeline.seed_layers},
                   {"activation_checkpoint_interval", pipeline.activation_checkpoint_interval},
                   {"pipe_partitioned", pipeline.pipe_partitioned},
                   {"grad_partitioned", pipeline.grad_partitioned}};
  if (pipeline.use_reentrant) j["pipeline"]["use_reentrant"] = *pipeline.use_reentrant;
  j["tensor_parallel"] = {{"autotp_size", tensor_parallel.autotp_size},
                         {"tp_overlap_comm", tensor_parallel.tp_overlap_comm},
                         {"preset_model", tensor_parallel.preset_model ? json(*tensor_parallel.preset_model) : json(nullptr)}};
  if (tensor_parallel.has_partition_config && raw.is_object() && raw.contains("tensor_parallel")) {
    j["tensor_parallel"]["partition_config"] = raw["tensor_parallel"]["partition_config"];
  }
  j["dataloader_drop_last"] = dataloader_drop_last;
  j["vocabulary_size"] = vocabulary_size ? json(*vocabulary_size) : json(nullptr);

  if (raw.is_object()) {
    for (const char* key : kPassedThrough) {
      if (auto it = raw.find(key); it != raw.end()) j[key] = *it;
    }
  }
  return j;
}

}  // namespace deepspeed
