// ds_config.json as a typed, validated value (DeepSpeed's DeepSpeedConfig).
//
// Promises: every key DeepSpeed reads is here with DeepSpeed's default (except where
// docs/compatibility.md says otherwise); the batch triple is resolved for the given
// data-parallel world size (docs/config.md, "How a config is read"); anything wrong throws
// ConfigError naming the JSON path (and line:column for syntax errors) and what was expected.
// Unknown top-level keys give a warning naming the nearest known key; unknown keys inside a
// section are errors.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <deepspeed/errors.h>

namespace deepspeed {

namespace config_detail {
class KeyLocations;
}  // namespace config_detail

struct OptimizerConfig {
  std::string type;                            // as written ("Adam", "AdamW", "SGD", ...)
  nlohmann::json params = nlohmann::json::object();  // passed to the optimizer factory
  bool legacy_fusion = false;
};

struct SchedulerConfig {
  std::string type;                            // "WarmupLR", "OneCycle", ...
  nlohmann::json params = nlohmann::json::object();
};

struct Fp16Config {
  bool enabled = false;
  bool auto_cast = false;
  double loss_scale = 0.0;                     // 0 = dynamic
  int64_t initial_scale_power = 16;
  int64_t loss_scale_window = 1000;
  int64_t hysteresis = 2;
  bool consecutive_hysteresis = false;
  double min_loss_scale = 1.0;
  bool fp16_master_weights_and_grads = false;
};

struct Bf16Config {
  bool enabled = false;
  bool immediate_grad_update = false;
  bool check_grad_overflow = true;
  bool bf16_master_weights_and_grads = false;
  bool bf16_optimizer_states = false;
};

struct OffloadOptimizerConfig {
  std::string device = "none";                 // none | cpu | nvme
  std::optional<std::string> nvme_path;
  int64_t buffer_count = 4;
  bool pin_memory = true;
  bool pipeline_read = false;
  bool pipeline_write = false;
  bool fast_init = false;
  double ratio = 1.0;
  bool super_offload = false;
  double cpuadam_cores_perc = 0.8;
};

struct OffloadParamConfig {
  std::string device = "none";
  std::optional<std::string> nvme_path;
  int64_t buffer_count = 5;
  int64_t buffer_size = 100000000;
  int64_t max_in_cpu = 1000000000;
  bool pin_memory = true;
};

struct ZeroConfig {
  int stage = 0;
  bool contiguous_gradients = true;
  std::optional<bool> overlap_comm;            // unset: true for stage 3, else false
  bool reduce_scatter = true;
  int64_t reduce_bucket_size = 500000000;
  bool use_multi_rank_bucket_allreduce = true;
  bool allgather_partitions = true;
  int64_t allgather_bucket_size = 500000000;
  bool load_from_fp32_weights = true;
  bool elastic_checkpoint = false;
  bool round_robin_gradients = false;
  bool ignore_unused_parameters = true;
  std::optional<OffloadOptimizerConfig> offload_optimizer;
  std::optional<OffloadParamConfig> offload_param;
  int64_t sub_group_size = 1000000000;
  int64_t stage3_prefetch_bucket_size = 50000000;
  int64_t stage3_param_persistence_threshold = 100000;
  int64_t stage3_model_persistence_threshold = INT64_MAX;
  int64_t stage3_max_live_parameters = 1000000000;
  int64_t stage3_max_reuse_distance = 1000000000;
  bool stage3_gather_16bit_weights_on_model_save = false;
  // Every other documented key (ZeRO++, MiCS, ...): type-checked, with its default filled in
  // when not written (so other.at("zero_quantized_weights") always works). Keys that have a
  // stage3_ alias are stored under the stage3_ name.
  nlohmann::json other = nlohmann::json::object();

  bool overlap_comm_enabled() const { return overlap_comm.value_or(stage == 3); }
  bool offload_optimizer_enabled() const {
    return offload_optimizer && offload_optimizer->device != "none";
  }
  bool offload_param_enabled() const { return offload_param && offload_param->device != "none"; }
};

struct MonitorConfig {                          // tensorboard, csv_monitor
  bool enabled = false;
  std::string output_path;
  std::string job_name = "DeepSpeedJobName";
};

// The online monitors (Weights & Biases, Comet, Trackio): read and type-checked as DeepSpeed
// does. They report to a network service, which this C++ build does not reach: the engine
// refuses them when enabled (docs/monitoring.md).
struct WandbConfig {
  bool enabled = false;
  std::optional<std::string> group;
  std::optional<std::string> team;
  std::string project = "deepspeed";
};

struct CometConfig {
  bool enabled = false;
  int64_t samples_log_interval = 100;
  std::optional<std::string> project;
  std::optional<std::string> workspace;
  std::optional<std::string> api_key;
  std::optional<std::string> experiment_name;
  std::optional<std::string> experiment_key;
  std::optional<bool> online;
  std::optional<std::string> mode;
};

struct TrackioConfig {
  bool enabled = false;
  std::string project = "deepspeed";
};

struct CheckpointConfig {
  std::string tag_validation = "WARN";         // WARN | IGNORE | FAIL (upper-cased)
  bool load_universal = false;
  bool use_node_local_storage = false;
  bool parallel_write_pipeline_stage = false;  // "parallel_write": {"pipeline_stage": ...}
  bool checkpoint_serialization = true;
  nlohmann::json writer = nullptr;             // DeepSpeed's checkpoint-writer section, as written
};

// "data_types": dtypes normalised to "fp32" | "fp16" | "bf16" (any of DeepSpeed's spellings,
// "float", "half", "bfloat16", "torch.float16", ... is accepted). Unset: the model's dtype.
struct DataTypesConfig {
  std::optional<std::string> grad_accum_dtype;
  std::optional<std::string> param_dtype;
  std::optional<std::string> buffer_dtype;
};

// "amp" (NVIDIA Apex AMP): `enabled`, and every other key as the keyword arguments DeepSpeed
// passes to amp.initialize.
struct AmpConfig {
  bool enabled = false;
  nlohmann::json params = nlohmann::json::object();
};

// "torch_autocast": forward under LibTorch's autocast (parameters stay fp32).
struct TorchAutocastConfig {
  bool enabled = false;
  std::string dtype = "bf16";                  // fp16 | bf16 (DeepSpeed's default: torch.bfloat16)
  std::vector<std::string> lower_precision_safe_modules;  // Python class names; not used in C++
};

struct ThroughputTimerConfig {
  bool enabled = true;
  bool synchronized = true;
};

struct FlopsProfilerConfig {
  bool enabled = false;
  double recompute_fwd_factor = 0.0;
  int64_t profile_step = 1;
  int64_t module_depth = -1;
  int64_t top_modules = 1;
  bool detailed = true;
  std::optional<std::string> output_file;
};

struct CommsLoggerConfig {
  bool enabled = false;
  bool verbose = false;
  bool prof_all = true;
  bool debug = false;
  std::vector<std::string> prof_ops;
};

// "aio": the async_io op's settings (deepspeed/ops/async_io.h), used when ZeRO-3 swaps to
// NVMe. "thread_count", the name in DeepSpeed's documentation, is read as intra_op_parallelism.
struct AioConfig {
  int64_t block_size = 1048576;                // bytes per I/O request a transfer is split into
  int64_t queue_depth = 8;                     // requests in flight per thread
  int64_t intra_op_parallelism = 1;            // threads a transfer is split across
  bool single_submit = false;                  // submit requests one by one instead of in batches
  bool overlap_events = true;                  // refill the queue as requests complete
  bool use_gds = false;                        // GPUDirect Storage: not available in deepspeed-cpp
};

// "activation_checkpointing": DeepSpeed's keys and defaults. Read by
// deepspeed::checkpointing::configure (<deepspeed/activation_checkpointing.h>), which
// initialize calls when the config has this section.
// "pipeline": DeepSpeed's keys and defaults, for a pipe::PipelineModule (docs/pipeline.md).
struct PipelineConfig {
  std::optional<int64_t> stages;             // "auto" (the default): the module's own count
  std::string partition = "best";            // "best": the module's partition_method
  bool seed_layers = false;
  int64_t activation_checkpoint_interval = 0;  // > 0 overrides the module's interval
  bool pipe_partitioned = true;              // with tensor parallelism: activations sent split
  bool grad_partitioned = true;              // with tensor parallelism: gradients sent split
  std::optional<bool> use_reentrant;
};

struct ActivationCheckpointingConfig {
  bool partition_activations = false;          // split saved inputs across the model-parallel group
  bool cpu_checkpointing = false;              // keep saved inputs in (pinned) host memory
  bool contiguous_memory_optimization = false; // partitions copied into one preallocated buffer
  std::optional<int64_t> number_checkpoints;   // checkpoints per forward: the buffer's size
  bool synchronize_checkpoint_boundary = false;  // device synchronize around each checkpoint
  bool profile = false;                        // log each checkpoint's forward and backward time
};

// "sparse_attention": DeepSpeed's sparsity configuration of a block-sparse self-attention
// (docs/sparse_attention.md). `mode` picks the layout; each mode reads its own keys (DeepSpeed's
// names and defaults) and refuses the others. make_sparsity_config
// (<deepspeed/sparsity_config.h>) turns it, with the model's head count, into the layout's
// configuration. "local_sliding_window" and "seed" are ours (docs/compatibility.md).
struct SparseAttentionConfig {
  std::string mode = "fixed";     // dense | fixed | variable | bigbird | bslongformer | local_sliding_window
  int64_t block = 16;             // block edge in tokens
  bool different_layout_per_head = false;
  int64_t num_local_blocks = 4;                 // fixed
  int64_t num_global_blocks = 1;                // fixed, bigbird
  std::string attention = "bidirectional";      // unidirectional | bidirectional (local_sliding_window: unidirectional)
  bool horizontal_global_attention = false;     // fixed, variable
  int64_t num_different_global_patterns = 1;    // fixed
  int64_t num_random_blocks = 0;                // variable (0), bigbird (1)
  std::vector<int64_t> local_window_blocks = {4};   // variable
  std::vector<int64_t> global_block_indices = {0};  // variable, bslongformer
  std::optional<std::vector<int64_t>> global_block_end_indices;  // variable, bslongformer
  int64_t num_sliding_window_blocks = 3;        // bigbird, bslongformer, local_sliding_window
  uint64_t seed = 0;                            // the random blocks' seed (variable, bigbird)
};

// Reads a "sparse_attention" section (a JSON object) as parse_config does; `path` names it in
// errors. Throws ConfigError for an unknown mode, a key the mode does not take, a wrong type.
SparseAttentionConfig read_sparse_attention_config(const nlohmann::json& section,
                                                   const std::string& path = "sparse_attention");

// One rule of "tensor_parallel.partition_config.layer_specs": parameters whose name matches one
// of `patterns` (regular expressions, matched from the start as Python's re.match) are split as
// `partition_type` says. `shape` cuts a fused weight into sub-parameters before splitting: each
// entry is one dimension, a size (-1: inferred) or, at partition_dim only, the sizes of unequal
// sub-parameters; each sub-parameter is then split across the tensor-parallel ranks.
struct TpLayerSpec {
  std::vector<std::string> patterns;
  std::string partition_type = "column";       // column | row | skip (lower-cased)
  std::vector<std::vector<int64_t>> shape;     // empty: none; an entry of one size, or sub-parameter sizes
  std::optional<int64_t> partition_dim;        // default: 0 for column, 1 for row
  bool gather_output = false;                  // column: all-gather the output shards
  bool grad_allreduce = false;                 // skip: a replicated parameter whose gradient is summed over the group
  std::vector<std::string> model_types;        // the spec applies only to these preset_model names
  int64_t effective_partition_dim() const { return partition_dim.value_or(partition_type == "row" ? 1 : 0); }
};

// "tensor_parallel": AutoTP training (DeepSpeed's TPTrainingConfig), docs/tensor_parallel.md.
struct TensorParallelConfig {
  int64_t autotp_size = 0;                     // 0 or 1: off
  bool tp_overlap_comm = false;
  std::optional<std::string> preset_model;     // llama, bloom, chatglm, mixtral, deepseek_v2, qwen2, phi3
  bool has_partition_config = false;
  bool use_default_specs = true;               // partition_config: merge with the preset's specs
  bool strict_mode = false;                    // partition_config: a linear layer no spec matches is an error
  std::vector<TpLayerSpec> layer_specs;
};

struct DeepSpeedConfig {
  // Batch sizes, resolved: train_batch_size == micro * gas * world_size.
  int64_t train_batch_size = 0;
  int64_t train_micro_batch_size_per_gpu = 0;
  int64_t gradient_accumulation_steps = 0;
  int64_t world_size = 1;                      // the data-parallel size used to resolve them

  std::optional<OptimizerConfig> optimizer;
  std::optional<SchedulerConfig> scheduler;
  Fp16Config fp16;
  Bf16Config bf16;
  ZeroConfig zero_optimization;
  AmpConfig amp;
  TorchAutocastConfig torch_autocast;
  DataTypesConfig data_types;

  double gradient_clipping = 0.0;              // not DeepSpeed's 1.0: docs/compatibility.md
  bool prescale_gradients = false;
  double gradient_predivide_factor = 1.0;
  std::string gradient_allreduce_op = "mean";  // mean | sum (lower-cased)
  std::optional<std::string> communication_data_type;  // fp32 | fp16 | bf16; unset: follows precision
  std::string seq_parallel_communication_data_type = "fp32";
  int64_t sequence_parallel_size = 1;          // world_size above is the process count divided by it
  bool disable_allgather = false;
  std::optional<int64_t> vocabulary_size;
  bool sparse_gradients = false;
  bool managed_gradient_accumulation = true;
  int64_t steps_per_print = 10;                // 0 = never
  bool wall_clock_breakdown = false;            // also on when flops_profiler.enabled (as DeepSpeed)
  bool memory_breakdown = false;
  bool dump_state = false;
  std::optional<std::string> log_level;
  bool dataloader_drop_last = false;
  bool zero_allow_untested_optimizer = false;
  bool zero_force_ds_cpu_optimizer = true;
  // Ours: what an fp32 run does with a step whose gradients hold NaN or inf (a NaN loss):
  // "error" (stop with an EngineError), "skip" (skip the update, as fp16 does) or "apply"
  // (DeepSpeed's stage 0: the update is applied and the weights become NaN). fp16 and bf16
  // keep their own rules (loss scaling; bf16.check_grad_overflow).
  std::string nonfinite_gradients = "error";

  ThroughputTimerConfig throughput_timer;      // "timers": {"throughput": {...}}
  MonitorConfig tensorboard;
  MonitorConfig csv_monitor;
  WandbConfig wandb;
  CometConfig comet;
  TrackioConfig trackio;
  FlopsProfilerConfig flops_profiler;
  CommsLoggerConfig comms_logger;
  CheckpointConfig checkpoint;
  AioConfig aio;
  ActivationCheckpointingConfig activation_checkpointing;
  std::optional<SparseAttentionConfig> sparse_attention;  // absent: the model's dense attention
  PipelineConfig pipeline;

  TensorParallelConfig tensor_parallel;

  nlohmann::json raw;                          // the config as read (comments stripped)
  std::vector<std::string> warnings;           // deprecations, unknown top-level keys, sections without effect
  // Where each key was written, for a config read from text (parse_config, load_config).
  std::shared_ptr<const config_detail::KeyLocations> key_locations;

  // An error about a key of this config found after it was read (the optimizer's and the LR
  // schedule's params are checked when they are built), pointing into the file as the
  // errors found while reading it do: "<path>: <message> (at ds_config.json:5:7)".
  ConfigError locate(const ConfigError& error) const;

  // Which precision training runs in.
  bool fp16_enabled() const { return fp16.enabled; }
  bool bf16_enabled() const { return bf16.enabled; }
  int zero_stage() const { return zero_optimization.stage; }
  // communication_data_type, or when unset the training precision: "fp16", "bf16" or "fp32".
  std::string resolved_communication_data_type() const;

  // The fully resolved config, every default filled in (what `ds_config` prints).
  nlohmann::json to_json() const;
};

// `world_size` below is the number of processes; the batch arithmetic uses it divided by
// "sequence_parallel_size" when the config sets one (DeepSpeed's data-parallel size).

// Parses JSON text (comments allowed; duplicate keys are errors). `source` names the text
// in messages (a file path, or "<string>"); errors about a key written in the text end with
// "(at <source>:<line>:<column>)", and so do the warnings.
DeepSpeedConfig parse_config(const std::string& text, int64_t world_size,
                             const std::string& source = "<string>");

// Reads a file path, or, when `path_or_json` starts with '{' (after blanks), the JSON itself,
// or, as DeepSpeed also accepts, a URL-safe base64 encoding of the JSON.
DeepSpeedConfig load_config(const std::string& path_or_json, int64_t world_size);

// The JSON a path, text or base64 config holds, unchecked (comments allowed): for what must be
// known before the config can be read (initialize's tensor_parallel.autotp_size).
nlohmann::json load_config_json(const std::string& path_or_json);

// From an already-parsed JSON value (no duplicate-key check possible).
DeepSpeedConfig config_from_json(const nlohmann::json& value, int64_t world_size);

// Optimizer names. DeepSpeed's own names match in any case ("adam", "OnebitAdam");
// anything else must be a torch.optim class spelled exactly ("SGD", "RMSprop").
// Returns DeepSpeed's lower-case name ("onebitadam") for DeepSpeed's names, the type itself
// for a torch.optim class, and nullopt for anything else.
std::optional<std::string> canonical_optimizer_name(const std::string& type);
// LR schedules: DeepSpeed's five, or a torch.optim.lr_scheduler class name.
bool is_known_lr_scheduler(const std::string& type);

// DeepSpeed's batch-size rules on their own: fills in the missing ones of (tb, mb, gas) and
// checks them.
struct BatchSizes {
  int64_t train_batch_size;
  int64_t train_micro_batch_size_per_gpu;
  int64_t gradient_accumulation_steps;
};
BatchSizes resolve_batch_sizes(std::optional<int64_t> train_batch_size,
                               std::optional<int64_t> micro_batch_per_gpu,
                               std::optional<int64_t> gradient_accumulation_steps,
                               int64_t world_size);

}  // namespace deepspeed
