// Trains the GPT of gpt_model.h through the engine and reports its speed: the benchmark
// model of docs/PERFORMANCE.md, and an example of a transformer under DeepSpeed's config.
//
//   deepspeed --num_gpus 2 build/bin/gpt_train --model 124M --steps 60
//       --deepspeed_config examples/gpt/ds_config_bf16.json
//
// The batch is the config's: train_micro_batch_size_per_gpu sequences of --seq_len tokens per
// rank and micro step (with --sequence_parallel N, each rank holds 1/N of each sequence). The
// first --warmup_steps steps are not timed. Rank 0 prints the loss (the mean over all ranks)
// every --log_interval steps and, at the end, one line of JSON (`{"tokens_per_s": ...}`) that
// bench/gpt/run_gpt_bench.py reads: tokens/s over all ranks, MFU, peak GPU memory.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <deepspeed/deepspeed.h>
#include <deepspeed/moe.h>
#include <deepspeed/pipe_engine.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "gpt_model.h"
#include "gpt_pipe.h"
#include "gpu_stats.h"
#include "kernel_profile.h"
#include "sparse_attention_choice.h"
#include "token_data.h"

namespace {

struct Options {
  std::string model = "124M";
  int64_t seq_len = 0;  // 0: the model's
  int64_t n_layer = 0, n_head = 0, d_model = 0, vocab_size = 0;
  int64_t steps = 60;
  int64_t warmup_steps = 10;
  int64_t log_interval = 10;
  std::string data;
  uint64_t seed = 1234;
  double peak_tflops = 0;  // 0: from the GPU's name
  int profile_steps = 0;
  int64_t activation_checkpointing = 0;  // checkpoint every k-th block; 0: none
  int64_t loss_chunks = 8;
  bool transformer_kernel = false;
  int64_t moe_num_experts = 0, moe_ep_size = 1, moe_top_k = 1;
  std::string sparse_attention;  // a sparse_attention mode; "": the config's section, if any
  int64_t pipeline_stages = 0;  // 0: no pipeline
  int64_t tensor_parallel = 0;  // 0: the config's tensor_parallel.autotp_size
  int64_t sequence_parallel = 0;  // 0: the config's sequence_parallel_size
  int loss_digits = 4;
  std::string save_dir;  // "": no checkpoint
};

// The process count the launcher gives (WORLD_SIZE), for reading the config's batch sizes.
int64_t world_size_from_env() {
  const char* w = std::getenv("WORLD_SIZE");
  return w ? std::max<int64_t>(1, std::atoll(w)) : 1;
}

// --pipeline_stages: the model as pipeline layers (gpt_pipe.h), trained through train_batch().
// Each data-parallel replica's first and last stage read the same tokens (the source is seeded
// by data-parallel rank). Rank 0 prints the loss every --log_interval steps and a result line.
int train_pipeline(const CLI::App& app, const Options& o, const gpt::GptConfig& config) {
  deepspeed::pipe::PipelineOptions options;
  options.num_stages = o.pipeline_stages;
  options.loss_fn = gpt::pipeline_loss;
  options.seed_layers = true;
  options.base_seed = static_cast<int64_t>(o.seed);
  options.partition_method = "type:Block";  // the blocks spread evenly, as DeepSpeed's GPT partitions
  options.activation_checkpoint_interval = o.activation_checkpointing;
  auto net = std::make_shared<deepspeed::pipe::PipelineModule>(gpt::pipeline_layers(config), options);
  auto [engine, optimizer, loader, scheduler] = deepspeed::initialize(app, net);
  const auto device = engine->device();
  const int64_t rank = engine->global_rank();
  const int64_t micro = engine->train_micro_batch_size_per_gpu();
  const int64_t dp_rank = engine->groups()->data_parallel()->rank();
  gpt::TokenSource tokens(o.data, config.vocab_size, config.seq_len, o.seed + 1000003ULL * static_cast<uint64_t>(dp_rank));
  const deepspeed::PipeDataIterator data = [&] {
    auto [x, y] = tokens.next(micro, device);
    return deepspeed::PipeBatch{x, y};
  };
  if (rank == 0) {
    std::printf("gpt: %s, %.1fM parameters, %lld layers over %lld pipeline stages, micro batch %lld x %lld micro "
                "batches x %lld data-parallel ranks\n",
                o.model.c_str(), static_cast<double>(gpt::parameter_count(config)) / 1e6,
                static_cast<long long>(config.n_layer), static_cast<long long>(o.pipeline_stages),
                static_cast<long long>(micro), static_cast<long long>(engine->gradient_accumulation_steps()),
                static_cast<long long>(engine->dp_world_size()));
    std::fflush(stdout);
  }
  torch::Tensor loss;
  std::chrono::steady_clock::time_point start;
  for (int64_t step = 0; step < o.steps; ++step) {
    if (step == o.warmup_steps) {
      gpu_stats::synchronize(device);
      start = std::chrono::steady_clock::now();
    }
    loss = engine->train_batch(data);
    if (rank == 0 && ((step + 1) % o.log_interval == 0 || step + 1 == o.steps)) {
      std::printf("step %lld loss %.4f\n", static_cast<long long>(step + 1), loss.item<double>());
      std::fflush(stdout);
    }
  }
  gpu_stats::synchronize(device);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double timed_tokens =
      static_cast<double>((o.steps - o.warmup_steps) * engine->train_batch_size() * config.seq_len);
  if (rank == 0) {
    nlohmann::json result = {{"implementation", "deepspeed-cpp"},
                             {"model", o.model},
                             {"parameters", gpt::parameter_count(config)},
                             {"world_size", engine->world_size()},
                             {"pipeline_stages", o.pipeline_stages},
                             {"zero_stage", engine->config().zero_stage()},
                             {"micro_batch", micro},
                             {"seq_len", config.seq_len},
                             {"tokens_per_s", timed_tokens / seconds},
                             {"final_loss", loss.item<double>()}};
    std::printf("%s\n", result.dump().c_str());
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"GPT training through deepspeed-cpp"};
  Options o;
  app.add_option("--model", o.model, "model size: " + [] {
    std::string s;
    for (const auto& n : gpt::preset_names()) s += (s.empty() ? "" : ", ") + n;
    return s;
  }());
  app.add_option("--seq_len", o.seq_len, "sequence length (default: the model's, 1024)")->check(CLI::PositiveNumber);
  app.add_option("--n_layer", o.n_layer, "override the size's number of layers")->check(CLI::PositiveNumber);
  app.add_option("--n_head", o.n_head, "override the size's number of heads")->check(CLI::PositiveNumber);
  app.add_option("--d_model", o.d_model, "override the size's width")->check(CLI::PositiveNumber);
  app.add_option("--vocab_size", o.vocab_size, "override the vocabulary size")->check(CLI::PositiveNumber);
  app.add_option("--steps", o.steps, "optimizer steps in all (default: 60)")->check(CLI::PositiveNumber);
  app.add_option("--warmup_steps", o.warmup_steps, "steps not timed (default: 10)")->check(CLI::NonNegativeNumber);
  app.add_option("--log_interval", o.log_interval, "print the loss every N steps (default: 10)")
      ->check(CLI::PositiveNumber);
  app.add_option("--data", o.data, "uint16 token file (nanoGPT/llm.c .bin); default: random tokens");
  app.add_option("--seed", o.seed, "seed of the weights and of the data (default: 1234)");
  app.add_option("--peak_tflops", o.peak_tflops,
                 "the GPU's dense bf16 peak for MFU (default: known for H100/H200/A100)");
  app.add_option("--profile", o.profile_steps, "after training, profile N more steps and print the top GPU kernels");
  app.add_flag("--activation_checkpointing{1}", o.activation_checkpointing,
               "checkpoint every block (deepspeed::checkpointing), or every k-th with =k")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--loss_chunks", o.loss_chunks,
                 "with --activation_checkpointing: the output layer and loss in this many checkpointed slices "
                 "(default: 8)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--transformer_kernel", o.transformer_kernel,
               "build the blocks from the transformer op (deepspeed/transformer.h)");
  app.add_option("--moe_num_experts", o.moe_num_experts,
                 "Mixture of Experts in every other block with this many experts (docs/moe.md; default: 0, dense)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--moe_ep_size", o.moe_ep_size, "split the experts over this many ranks (default: 1)")
      ->check(CLI::PositiveNumber);
  app.add_option("--moe_top_k", o.moe_top_k, "experts per token (default: 1)")->check(CLI::PositiveNumber);
  app.add_option("--sparse_attention", o.sparse_attention,
                 "block-sparse causal attention with this layout (dense, fixed, variable, bigbird, bslongformer, "
                 "local_sliding_window); its other keys come from the config's sparse_attention section")
      ->check(CLI::IsMember({"dense", "fixed", "variable", "bigbird", "bslongformer", "local_sliding_window"}));
  app.add_option("--pipeline_stages", o.pipeline_stages,
                 "cut the model into this many pipeline stages, the embedding and the head tied across the first and "
                 "the last (default: 0, no pipeline)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--tensor_parallel", o.tensor_parallel,
                 "split the blocks' linear layers over this many ranks with AutoTP (the config's "
                 "tensor_parallel.autotp_size; docs/tensor_parallel.md)")
      ->check(CLI::PositiveNumber);
  app.add_option("--sequence_parallel", o.sequence_parallel,
                 "split every sequence over this many ranks with Ulysses (the config's sequence_parallel_size; "
                 "docs/tensor_parallel.md)")
      ->check(CLI::PositiveNumber);
  app.add_option("--loss_digits", o.loss_digits, "decimals of the printed loss (default: 4)")->check(CLI::Range(1, 12));
  app.add_option("--save_dir", o.save_dir,
                 "after training, save a checkpoint there (engine save_checkpoint; ds_generate reads it)");
  deepspeed::add_config_arguments(app);
  CLI11_PARSE(app, argc, argv);
  // CLI11 reads a flag's "=0" (or "=false") as the flag switched off, which it stores as -1.
  o.activation_checkpointing = std::max<int64_t>(o.activation_checkpointing, 0);
  if (o.moe_num_experts > 0 && o.transformer_kernel) {
    std::fprintf(stderr, "gpt_train: --moe_num_experts and --transformer_kernel cannot be combined (the op's blocks "
                         "have a dense MLP)\n");
    return 2;
  }
  if (o.warmup_steps >= o.steps) {
    std::fprintf(stderr, "gpt_train: --warmup_steps (%lld) must be below --steps (%lld)\n",
                 static_cast<long long>(o.warmup_steps), static_cast<long long>(o.steps));
    return 2;
  }

  try {
    gpt::GptConfig config = gpt::preset(o.model);
    if (o.seq_len) config.seq_len = o.seq_len;
    if (o.n_layer) config.n_layer = o.n_layer;
    if (o.n_head) config.n_head = o.n_head;
    if (o.d_model) config.d_model = o.d_model;
    if (o.vocab_size) config.vocab_size = o.vocab_size;
    config.transformer_kernel = o.transformer_kernel;
    config.moe_num_experts = o.moe_num_experts;
    config.moe_ep_size = o.moe_ep_size;
    config.moe_top_k = o.moe_top_k;
    {
      // The section as written (the engine reads the same file again in initialize).
      nlohmann::json section;
      const CLI::Option* path = app.get_option("--deepspeed_config");
      if (path->count() > 0) {
        section = deepspeed::load_config(path->as<std::string>(), world_size_from_env())
                      .raw.value("sparse_attention", nlohmann::json());
      }
      config.sparse_attention = gpt::choose_sparse_attention(section, o.sparse_attention);
    }

    if (o.tensor_parallel > 0 && (o.moe_num_experts > 0 || config.sparse_attention || o.transformer_kernel)) {
      std::fprintf(stderr, "gpt_train: --tensor_parallel cannot be combined with --moe_num_experts, sparse attention or "
                           "--transformer_kernel\n");
      return 2;
    }
    if (o.sequence_parallel > 0 && (o.moe_num_experts > 0 || config.sparse_attention || o.transformer_kernel ||
                                    o.tensor_parallel > 0)) {
      std::fprintf(stderr, "gpt_train: --sequence_parallel cannot be combined with --moe_num_experts, sparse attention, "
                           "--transformer_kernel or --tensor_parallel\n");
      return 2;
    }
    if (o.pipeline_stages > 0) {
      if (o.transformer_kernel || o.moe_num_experts > 0 || o.profile_steps > 0 || config.sparse_attention ||
          o.tensor_parallel > 0 || o.sequence_parallel > 0) {
        std::fprintf(stderr, "gpt_train: --pipeline_stages cannot be combined with --transformer_kernel, "
                             "--moe_num_experts, sparse attention, --tensor_parallel, --sequence_parallel or "
                             "--profile\n");
        return 2;
      }
      if (!o.save_dir.empty()) {
        std::fprintf(stderr, "gpt_train: --save_dir is not supported with --pipeline_stages\n");
        return 2;
      }
      return train_pipeline(app, o, config);
    }
    torch::manual_seed(o.seed);
    auto model = gpt::Gpt(config);
    model->set_activation_checkpointing(o.activation_checkpointing, o.loss_chunks);
    // MoE: the experts in optimizer groups of their own, as DeepSpeed's MoE examples make them
    // (ZeRO partitions them over their expert-data-parallel group).
    auto [engine, optimizer, loader, scheduler] = [&] {
      if (config.moe_num_experts > 0) {
        deepspeed::ParamGroup all;
        all.params = model->parameters();
        return deepspeed::initialize(app, model.ptr(),
                                     deepspeed::moe::split_params_into_different_moe_groups_for_optimizer({all}, *model));
      }
      if (!o.tensor_parallel && !o.sequence_parallel) return deepspeed::initialize(app, model.ptr());
      // --tensor_parallel N is the config's "tensor_parallel": {"autotp_size": N};
      // --sequence_parallel N its "sequence_parallel_size": N.
      const auto* path = app.get_option("--deepspeed_config");
      if (path->count() == 0) throw std::invalid_argument("--tensor_parallel and --sequence_parallel need --deepspeed_config");
      auto json = deepspeed::load_config_json(path->as<std::string>());
      if (o.tensor_parallel) json["tensor_parallel"]["autotp_size"] = o.tensor_parallel;
      if (o.sequence_parallel) json["sequence_parallel_size"] = o.sequence_parallel;
      deepspeed::InitializeOptions options;
      options.config_json = json;
      options.local_rank = app.get_option("--local_rank")->as<int64_t>();
      return deepspeed::initialize(model.ptr(), options);
    }();
    const auto device = engine->device();
    const int64_t rank = engine->global_rank();
    const int64_t micro = engine->train_micro_batch_size_per_gpu();
    const int64_t accumulation = engine->gradient_accumulation_steps();
    // Every rank draws the global batch of each micro step from one stream and keeps its data-parallel
    // rank's sequences (tensor- and sequence-parallel peers the same ones), so that any layout
    // trains on what one rank would; a sequence-parallel rank then keeps its slice of each sequence.
    const auto& data_group = *engine->groups()->data_parallel();
    const auto sequence_group = engine->groups()->sequence_parallel();
    const bool sequence_parallel = sequence_group && sequence_group->size() > 1;
    if (sequence_parallel) model->set_sequence_parallel(sequence_group);
    gpt::TokenSource tokens(o.data, config.vocab_size, config.seq_len, o.seed);
    const auto next_batch = [&] {
      auto [x, y] = tokens.next(micro * data_group.size(), device);
      x = x.narrow(0, data_group.rank() * micro, micro);
      y = y.narrow(0, data_group.rank() * micro, micro);
      if (!sequence_parallel) return std::make_pair(x, y);
      return std::make_pair(deepspeed::sequence::sequence_shard(x, 1, *sequence_group).contiguous(),
                            deepspeed::sequence::sequence_shard(y, 1, *sequence_group).contiguous());
    };
    const int64_t params = gpt::parameter_count(config);
    if (rank == 0) {
      std::printf("gpt: %s, %.1fM parameters, %lld layers, d_model %lld, %lld heads, seq_len %lld, "
                  "micro batch %lld x %lld accumulation x %lld ranks%s\n",
                  o.model.c_str(), static_cast<double>(params) / 1e6, static_cast<long long>(config.n_layer),
                  static_cast<long long>(config.d_model), static_cast<long long>(config.n_head),
                  static_cast<long long>(config.seq_len), static_cast<long long>(micro),
                  static_cast<long long>(accumulation), static_cast<long long>(engine->world_size()),
                  sequence_parallel ? (", sequences split over " + std::to_string(sequence_group->size()) +
                                       " sequence-parallel ranks")
                                          .c_str()
                                    : "");
      std::fflush(stdout);
    }

    engine->train();
    std::chrono::steady_clock::time_point start;
    torch::Tensor loss;
    // The last micro step's memory: the peak above what is allocated once backward is done
    // (parameters, gradients, optimizer state) is what the activations took.
    bool measure = false;
    int64_t peak_in_step = 0, after_backward = 0;
    deepspeed::checkpointing::SavedBytes checkpoint_bytes;
    auto train_step = [&] {
      for (int64_t m = 0; m < accumulation; ++m) {
        auto [x, y] = next_batch();
        if (measure) {
          gpu_stats::synchronize(device);
          gpu_stats::reset_peak(device);
        }
        loss = engine->forward(x, y);
        if (measure) checkpoint_bytes = deepspeed::checkpointing::saved_bytes();
        engine->backward(loss);
        if (measure) {
          gpu_stats::synchronize(device);
          peak_in_step = gpu_stats::peak_allocated_bytes(device);
          after_backward = gpu_stats::allocated_bytes(device);
        }
        engine->step();
      }
    };
    for (int64_t step = 0; step < o.steps; ++step) {
      measure = step + 1 == o.steps;
      if (step == o.warmup_steps) {
        gpu_stats::synchronize(device);
        gpu_stats::reset_peak(device);
        start = std::chrono::steady_clock::now();
      }
      train_step();
      if ((step + 1) % o.log_interval == 0 || step + 1 == o.steps) {
        // The mean over every rank's tokens (each rank's loss is the mean over its own).
        auto shown = loss.detach().to(torch::kFloat32).reshape({1}).clone();
        engine->process_group()->all_reduce(shown);
        loss = shown / static_cast<double>(engine->world_size());
        if (rank == 0) {
          std::printf("step %lld loss %.*f\n", static_cast<long long>(step + 1), o.loss_digits, loss.item<double>());
          std::fflush(stdout);
        }
      }
    }
    gpu_stats::synchronize(device);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double timed_tokens = static_cast<double>((o.steps - o.warmup_steps) * accumulation * micro *
                                                    config.seq_len * engine->dp_world_size());
    const double tokens_per_s = timed_tokens / seconds;
    const double peak = o.peak_tflops > 0 ? o.peak_tflops * 1e12 : gpu_stats::peak_bf16_flops(device);
    const double mfu = peak > 0 ? tokens_per_s / static_cast<double>(engine->world_size()) *
                                      gpt::training_flops_per_token(config) / peak
                                : 0.0;
    // Peak memory of the rank that has the most (they are alike; rank 0 reports them all).
    auto peak_bytes = torch::tensor({static_cast<double>(gpu_stats::peak_allocated_bytes(device))},
                                    torch::TensorOptions().dtype(torch::kFloat64).device(device));
    engine->process_group()->all_reduce(peak_bytes, deepspeed::comm::ReduceOp::Max);
    if (rank == 0) {
      nlohmann::json result = {{"implementation", "deepspeed-cpp"},
                               {"model", o.model},
                               {"parameters", params},
                               {"world_size", engine->world_size()},
                               {"zero_stage", engine->config().zero_stage()},
                               {"micro_batch", micro},
                               {"seq_len", config.seq_len},
                               {"transformer_kernel", config.transformer_kernel},
                               {"moe_num_experts", config.moe_num_experts},
                               {"moe_ep_size", config.moe_ep_size},
                               {"moe_top_k", config.moe_top_k},
                               {"sparse_attention", config.sparse_attention ? config.sparse_attention->mode : ""},
                               {"tokens_per_s", tokens_per_s},
                               {"mfu", mfu},
                               {"peak_memory_gib", peak_bytes.item<double>() / (1024.0 * 1024.0 * 1024.0)},
                               {"final_loss", loss.item<double>()},
                               {"activation_checkpointing", o.activation_checkpointing},
                               {"activation_memory_gib",
                                static_cast<double>(peak_in_step - after_backward) / (1024.0 * 1024.0 * 1024.0)},
                               {"checkpoint_saved_bytes",
                                {{"device", checkpoint_bytes.device}, {"host", checkpoint_bytes.host}}}};
      // What the engine holds on rank 0, in bytes (parameters at their peak during the last
      // forward and backward).
      const auto m = engine->memory_report();
      result["engine_memory_bytes"] = {{"parameters", m.parameters},
                                       {"parameters_peak", m.parameters_peak},
                                       {"gradients", m.gradients},
                                       {"master_weights", m.master_weights},
                                       {"optimizer_states", m.optimizer_states},
                                       {"communication_buffers", m.communication_buffers}};
      std::printf("%s\n", result.dump().c_str());
      std::fflush(stdout);
    }
    if (o.profile_steps > 0) gpt::profile_kernels(o.profile_steps, train_step);
    if (!o.save_dir.empty()) engine->save_checkpoint(o.save_dir);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpt_train: %s\n", e.what());
    return 1;
  }
  return 0;
}
