// DeepSpeed's flops profiler for LibTorch modules: parameters, MACs/FLOPs and latency of each
// module of a model over one forward pass, printed as DeepSpeed's print_model_profile prints
// them (summary, aggregated profile per depth, and the model tree with each module's share).
// The engine runs it at flops_profiler.profile_step; it can also be used on its own:
//
//   deepspeed::FlopsProfiler prof(model);
//   prof.start_profile();
//   auto y = model->forward(x);
//   prof.stop_profile();
//   prof.print_model_profile(std::cout, {});
//
// How (docs/monitoring.md#flops-profiler): LibTorch modules have no forward hooks, so the
// profiler watches the ATen operators the forward runs (at::RecordFunction, on the calling
// thread only), counts each with DeepSpeed's formulas, and gives it to the module whose
// parameters it takes as inputs; an operator that takes no parameter goes to the deepest
// module known to enclose it (the lowest common ancestor of the modules of the nearest
// operators before and after it that do). Latency is the wall time of a module's operators.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/nn/module.h>

namespace deepspeed {

namespace flops {
class OpRecorder;
class ModuleTree;
}  // namespace flops

// One module's share of the profiled forward pass. Counts include the module's children.
struct ModuleProfile {
  std::string path;  // "" for the model, "conv1", "blocks.0.attn"
  std::string type;  // the class without namespace and Impl suffix: "Conv2d", "Net"
  int depth = 0;     // 0 for the model
  int64_t params = 0;
  int64_t flops = 0;
  int64_t macs = 0;
  double seconds = 0;
};

// What the summary reports beyond the model itself (the engine fills it in).
struct ProfileContext {
  int64_t world_size = 1;
  int64_t dp_world_size = 1;
  int64_t mp_world_size = 1;
  int64_t micro_batch_size = 0;
  // The engine's phase timings of the profiled step, in milliseconds (wall_clock_breakdown).
  std::optional<double> forward_ms;
  std::optional<double> backward_ms;
  std::optional<double> step_ms;
};

struct ProfilePrintOptions {
  int64_t profile_step = 1;
  int64_t module_depth = -1;  // aggregated profile down to this depth; -1: every depth
  int64_t top_modules = 1;
  bool detailed = true;       // print the model tree
};

class FlopsProfiler {
 public:
  // synchronize: waits for the device before and after each operator on a GPU (so that
  // latencies are the work, not its launch); empty on the CPU.
  explicit FlopsProfiler(std::shared_ptr<torch::nn::Module> model, double recompute_fwd_factor = 0.0,
                         std::function<void()> synchronize = {});
  ~FlopsProfiler();
  FlopsProfiler(const FlopsProfiler&) = delete;
  FlopsProfiler& operator=(const FlopsProfiler&) = delete;

  // Forgets earlier numbers and counts the operators this thread runs from now on.
  void start_profile();
  // Stops counting; the numbers stay readable until end_profile().
  void stop_profile();
  void end_profile();
  bool started() const { return started_; }

  // Totals of the last profile (forward FLOPs, MACs, parameters, seconds).
  int64_t get_total_flops() const;
  int64_t get_total_macs() const;
  int64_t get_total_params() const;
  double get_total_duration() const;
  // Every module, parents before children, in registration order.
  const std::vector<ModuleProfile>& module_profiles() const;

  // DeepSpeed's print_model_profile layout.
  void print_model_profile(std::ostream& out, const ProfilePrintOptions& options,
                           const std::optional<ProfileContext>& context = std::nullopt) const;

 private:
  std::shared_ptr<torch::nn::Module> model_;
  double recompute_fwd_factor_;
  std::unique_ptr<flops::OpRecorder> recorder_;
  std::unique_ptr<flops::ModuleTree> tree_;  // the model as it was at start_profile()
  bool started_ = false;
  std::vector<ModuleProfile> profiles_;      // filled by stop_profile()
};

}  // namespace deepspeed
