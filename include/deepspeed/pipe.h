// A model cut into pipeline stages (DeepSpeed's deepspeed.pipe: PipelineModule, LayerSpec,
// TiedLayerSpec). The model is a sequence of layers, each fed the previous one's output; the
// sequence is partitioned over the stages, and each rank builds only its own stage's layers:
//
//   std::vector<deepspeed::pipe::Layer> layers = {
//       deepspeed::pipe::LayerSpec::of<torch::nn::Linear>(16, 32),
//       deepspeed::pipe::LayerSpec::function("relu", [](torch::Tensor x) { return torch::relu(x); }),
//       deepspeed::pipe::LayerSpec::of<torch::nn::Linear>(32, 4)};
//   deepspeed::pipe::PipelineOptions options;
//   options.num_stages = 2;
//   options.loss_fn = [](const torch::Tensor& out, const torch::Tensor& y) { return torch::mse_loss(out, y); };
//   auto net = std::make_shared<deepspeed::pipe::PipelineModule>(layers, options);
//   auto [engine, optimizer, loader, scheduler] = deepspeed::initialize(app, net);   // a PipelineEngine
//
// Constructing one is collective over the job (it makes the pipeline's process groups and, for
// tied layers, one group per tie over the stages that hold it). Layers are partitioned as
// DeepSpeed does ("parameters", "uniform", "type:REGEX"; <deepspeed/pipe_partition.h>), parameters
// are registered under DeepSpeed's names ("<layer index>.<name>", tied ones under
// "tied_modules.<key>.<name>"), and checkpoints use DeepSpeed's per-layer files
// (docs/pipeline.md). Errors: EngineError naming the option or layer at fault.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <c10/util/Type.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>

#include <deepspeed/comm.h>
#include <deepspeed/groups.h>
#include <deepspeed/topology.h>

namespace deepspeed::pipe {

// What crosses a layer boundary, and a stage boundary: one tensor, or a tuple of tensors
// (DeepSpeed's tuples: hidden states with an attention mask, ...). Floating-point tensors of a
// tuple carry gradients back; the others (int or bool masks) travel forward only.
struct Activation {
  std::vector<torch::Tensor> tensors;
  bool is_tuple = false;

  Activation() = default;
  // A tensor is a one-tensor activation (not a tuple of one).
  Activation(torch::Tensor t) : tensors{std::move(t)} {}  // NOLINT(google-explicit-constructor)
  static Activation tuple(std::vector<torch::Tensor> t) {
    Activation a;
    a.tensors = std::move(t);
    a.is_tuple = true;
    return a;
  }
  // The one tensor; EngineError naming `who` for a tuple.
  const torch::Tensor& tensor(const std::string& who = "this layer") const;
};

// A layer's type name and a factory for it: only the stage that owns the layer builds it for
// training (partition_method "parameters" builds each layer once more to count its parameters,
// as DeepSpeed does). The layer's forward takes one tensor and returns one, or, made with
// of_tuple / activation_function, takes and returns a tuple.
class LayerSpec {
 public:
  using Factory = std::function<torch::nn::AnyModule()>;
  using ActivationFunction = std::function<Activation(Activation)>;
  // `type_name` is what partition_method "type:REGEX" matches (DeepSpeed: the class's __name__).
  LayerSpec(std::string type_name, Factory build) : type_name_(std::move(type_name)), build_(std::move(build)) {}

  // ModuleType(args...), e.g. of<torch::nn::Linear>(16, 32); named after the class, without
  // its namespaces ("Linear").
  template <typename ModuleType, typename... Args>
  static LayerSpec of(Args... args) {
    return LayerSpec(unqualified(c10::demangle_type<ModuleType>()),
                     [args...] { return torch::nn::AnyModule(ModuleType(args...)); });
  }
  // A module whose forward takes and returns a tuple: std::vector<torch::Tensor>
  // forward(std::vector<torch::Tensor>).
  template <typename ModuleType, typename... Args>
  static LayerSpec of_tuple(Args... args) {
    LayerSpec spec = of<ModuleType>(args...);
    spec.tuple_ = true;
    return spec;
  }
  // A layer without parameters or state (DeepSpeed's plain callables in a layer list): nothing
  // is registered or checkpointed for it.
  static LayerSpec function(std::string name, std::function<torch::Tensor(torch::Tensor)> fn);
  // The same on activations of either form (a tensor in, a tuple out, ...).
  static LayerSpec activation_function(std::string name, ActivationFunction fn);

  const std::string& type_name() const { return type_name_; }
  bool is_function() const { return static_cast<bool>(function_); }
  bool takes_tuple() const { return tuple_; }
  // The function's forward on activations (functions only).
  const ActivationFunction& function() const { return function_; }
  // The module's forward on activations, for a module `build()` made.
  ActivationFunction module_forward(torch::nn::AnyModule module) const;
  torch::nn::AnyModule build() const;

 private:
  static std::string unqualified(const std::string& name);
  std::string type_name_;
  Factory build_;
  ActivationFunction function_;
  bool tuple_ = false;
};

// A layer whose module is shared by every layer with the same key (an embedding and the LM
// head that reuses its weight). Each stage holding the key builds the module once; the first
// of those stages' weights are broadcast to the others at construction, and the
// `tied_weight_attr` weights' gradients are summed over those stages before each step.
struct TiedLayerSpec {
  using ForwardFn = std::function<torch::Tensor(torch::nn::Module&, torch::Tensor)>;
  TiedLayerSpec(std::string key, LayerSpec spec, ForwardFn forward_fn = {},
                std::vector<std::string> tied_weight_attr = {"weight"})
      : key(std::move(key)),
        spec(std::move(spec)),
        forward_fn(std::move(forward_fn)),
        tied_weight_attr(std::move(tied_weight_attr)) {}

  std::string key;
  LayerSpec spec;
  // Called instead of the module's forward where given: forward_fn(module, x).
  ForwardFn forward_fn;
  // The parameters (dotted paths inside the module) kept identical across the stages.
  std::vector<std::string> tied_weight_attr;
};

using Layer = std::variant<LayerSpec, TiedLayerSpec>;

// loss = loss_fn(outputs, labels), on the last stage.
using LossFn = std::function<torch::Tensor(const torch::Tensor& outputs, const torch::Tensor& labels)>;

struct PipelineOptions {
  // One of the two: the number of stages (the data-parallel size is what is left of the world),
  // or a topology with axes (pipe, data) or (pipe, data, model).
  std::optional<int64_t> num_stages;
  std::optional<ProcessTopology> topology;
  LossFn loss_fn;
  // Seeds torch's generator with base_seed + layer index before building each layer (and
  // base_seed * micro batch offset + layer index before each layer's forward), as DeepSpeed.
  bool seed_layers = false;
  int64_t base_seed = 1234;
  std::string partition_method = "parameters";
  // Every this many layers run under activation checkpointing (0: none).
  int64_t activation_checkpoint_interval = 0;
  // Activations between stages may change shape from one micro batch to the next: the shape
  // message precedes every send (DeepSpeed's dynamic_shape; a little slower).
  bool dynamic_shape = false;
  // The job's group (default: comm::init_distributed()).
  std::shared_ptr<comm::ProcessGroup> world;
};

class PipelineModule : public torch::nn::Module {
 public:
  PipelineModule(std::vector<Layer> layers, PipelineOptions options);

  // This stage's layers, in order, on one tensor (a tuple in or out is an EngineError).
  torch::Tensor forward(torch::Tensor x);
  // The same on activations of either form (what the pipeline engine runs).
  Activation forward_activation(Activation x);

  int64_t num_stages() const { return num_stages_; }
  int64_t stage_id() const { return stage_id_; }
  // Layer boundaries of the stages (num_stages + 1 entries), and which stage owns a layer.
  const std::vector<int64_t>& partitions() const { return parts_; }
  int64_t stage_owner(int64_t layer_idx) const;
  // This stage's layers are [local_start(), local_stop()) of the whole list.
  int64_t local_start() const { return parts_[stage_id_]; }
  int64_t local_stop() const { return parts_[stage_id_ + 1]; }
  int64_t num_layers() const { return static_cast<int64_t>(specs_.size()); }
  const ProcessTopology& topology() const { return topology_; }
  // The pipeline's process groups; initialize takes them as its mpu.
  const std::shared_ptr<Groups>& mpu() const { return groups_; }
  const LossFn& loss_fn() const { return options_.loss_fn; }
  int64_t activation_checkpoint_interval() const { return options_.activation_checkpoint_interval; }
  const std::string& partition_method() const { return options_.partition_method; }
  bool seed_layers() const { return options_.seed_layers; }
  bool dynamic_shape() const { return options_.dynamic_shape; }
  void set_checkpoint_interval(int64_t interval);

  // Tied weights: the sum of each tied weight's gradient over the stages that hold it.
  // Collective over those stages, in key order.
  void allreduce_tied_weight_gradients();
  // The first holding stage's tied weights, copied to the others (collective, as above).
  void synchronize_tied_weights();
  // The tied weights this stage holds, and those whose gradient norm another stage counts
  // (DeepSpeed's ds_pipe_replicated: every holder but the first).
  std::vector<torch::Tensor> tied_weights() const;
  std::vector<torch::Tensor> tied_weights_counted_elsewhere() const;

  // Checkpoint files of this stage's layers (DeepSpeed's ckpt_layer_path): a layer's file in
  // `dir`, named by its global index and this rank's model-parallel coordinate.
  std::string ckpt_layer_path(const std::string& dir, int64_t layer_idx) const;
  // This stage's layers that have a checkpoint file, with the module it holds (functions have
  // none, nor has a tied layer run through a forward_fn: its module is another layer's).
  std::vector<std::pair<int64_t, torch::nn::Module*>> layers_with_state() const;
  // Where each piece of this stage's state is in a checkpoint: the prefix of its names in this
  // module's state dict ("3.", "tied_modules.embed.") and the layer whose file holds it (for a
  // tied module, the first layer of its key without a forward_fn, on whatever stage).
  struct StateSource {
    std::string prefix;
    int64_t layer = 0;
  };
  std::vector<StateSource> checkpoint_sources() const;

 private:
  struct TieGroup {
    std::vector<int64_t> ranks;  // job-wide, the first holder first
    std::shared_ptr<comm::ProcessGroup> group;
  };
  void partition_layers();
  void build();
  void index_tied_modules();
  Activation run_layers(int64_t begin, int64_t end, Activation x, int64_t micro_offset);

  std::vector<Layer> specs_;
  PipelineOptions options_;
  std::shared_ptr<comm::ProcessGroup> world_;
  ProcessTopology topology_;
  std::shared_ptr<Groups> groups_;
  int64_t num_stages_ = 1;
  int64_t stage_id_ = 0;
  std::vector<int64_t> parts_;
  // This stage's layers in order: what runs them, and the module holding their state (null for
  // functions and tied layers run through a forward_fn).
  std::vector<LayerSpec::ActivationFunction> forward_funcs_;
  std::vector<torch::nn::Module*> layer_modules_;
  std::map<std::string, torch::nn::AnyModule> tied_modules_;
  std::map<std::string, std::vector<std::string>> tied_weight_attrs_;
  std::map<std::string, TieGroup> tie_groups_;  // keys this stage holds, with more than one holder
  int64_t micro_offset_ = 0;
};

}  // namespace deepspeed::pipe
