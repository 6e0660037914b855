// The process groups of every kind of parallelism (DeepSpeed's deepspeed/utils/groups.py and
// the "mpu" it takes from Megatron), built once at initialize so that every collective of the
// engine names the group it belongs to:
//
//   data            ranks holding the same part of the model: gradient averaging, ZeRO
//                   partitions and gathers, the data loader's shards (by data-parallel rank)
//   tensor (slice)  ranks that split one layer's weights (Megatron's tensor model parallel)
//   pipe            the stages of one pipeline
//   model           every rank of one model replica (pipe x tensor): overflow and gradient
//                   norm agreement, checkpoint file names (mp_rank_XX)
//   sequence        ranks that split one sequence (Ulysses); sequence_data = data x sequence
//                   is where gradients are averaged and ZeRO partitions when it is on
//   expert          expert parallel groups of a given size, carved from the data group, and
//                   their expert-data groups (create_expert_groups)
//
// The layout is DeepSpeed's: a ProcessTopology with axes (pipe, data, model), or (pipe, data,
// sequence, model) when sequence parallelism is on; tensor-parallel peers are consecutive ranks.
// Or the groups come from a user's ModelParallelUnit, as DeepSpeed's initialize(mpu=...).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <deepspeed/comm.h>
#include <deepspeed/topology.h>

namespace deepspeed {

// Megatron's model-parallel unit, as DeepSpeed calls it: what a model written for model
// parallelism tells the engine about its groups. The data and model groups are required; the
// others default to "not used" (a group of this rank alone).
class ModelParallelUnit {
 public:
  virtual ~ModelParallelUnit() = default;
  virtual std::shared_ptr<comm::ProcessGroup> get_data_parallel_group() const = 0;
  // Every rank of this model replica (tensor x pipe).
  virtual std::shared_ptr<comm::ProcessGroup> get_model_parallel_group() const = 0;
  virtual std::shared_ptr<comm::ProcessGroup> get_tensor_model_parallel_group() const { return nullptr; }
  virtual std::shared_ptr<comm::ProcessGroup> get_pipe_parallel_group() const { return nullptr; }
  virtual std::shared_ptr<comm::ProcessGroup> get_sequence_parallel_group() const { return nullptr; }

  int64_t get_data_parallel_rank() const { return get_data_parallel_group()->rank(); }
  int64_t get_data_parallel_world_size() const { return get_data_parallel_group()->size(); }
  int64_t get_model_parallel_rank() const { return get_model_parallel_group()->rank(); }
  int64_t get_model_parallel_world_size() const { return get_model_parallel_group()->size(); }
};

// The sizes initialize reads from the config; the data-parallel size is what is left.
struct ParallelSizes {
  int64_t pipe = 1;      // "pipeline": {"stages": N} for a pipeline model
  int64_t tensor = 1;    // "tensor_parallel": {"autotp_size": N}
  int64_t sequence = 1;  // "sequence_parallel_size"
};

class Groups final : public ModelParallelUnit {
 public:
  // Collective over `world`: every rank calls it with the same sizes, and creates the groups it
  // is a member of. Throws EngineError when the sizes do not divide the world size.
  static std::shared_ptr<Groups> create(std::shared_ptr<comm::ProcessGroup> world, const ParallelSizes& sizes);
  // Adopts a user's groups (each rank's unit must be built over the same world); the groups the
  // unit does not give are this rank alone, except tensor, which is then the model group (as
  // DeepSpeed reads a Megatron unit without pipeline). Throws EngineError when data x model x
  // sequence sizes do not make the world size.
  static std::shared_ptr<Groups> from_mpu(std::shared_ptr<comm::ProcessGroup> world, const ModelParallelUnit& mpu);

  const std::shared_ptr<comm::ProcessGroup>& world() const { return world_; }
  const std::shared_ptr<comm::ProcessGroup>& data_parallel() const { return data_; }
  const std::shared_ptr<comm::ProcessGroup>& tensor_parallel() const { return tensor_; }
  const std::shared_ptr<comm::ProcessGroup>& pipe_parallel() const { return pipe_; }
  const std::shared_ptr<comm::ProcessGroup>& model_parallel() const { return model_; }
  const std::shared_ptr<comm::ProcessGroup>& sequence_parallel() const { return sequence_; }
  const std::shared_ptr<comm::ProcessGroup>& sequence_data_parallel() const { return sequence_data_; }
  // Built by create(); a unit's groups have none (their layout is the unit's own).
  const std::optional<ProcessTopology>& topology() const { return topology_; }

  // ModelParallelUnit
  std::shared_ptr<comm::ProcessGroup> get_data_parallel_group() const override { return data_; }
  std::shared_ptr<comm::ProcessGroup> get_model_parallel_group() const override { return model_; }
  std::shared_ptr<comm::ProcessGroup> get_tensor_model_parallel_group() const override { return tensor_; }
  std::shared_ptr<comm::ProcessGroup> get_pipe_parallel_group() const override { return pipe_; }
  std::shared_ptr<comm::ProcessGroup> get_sequence_parallel_group() const override { return sequence_; }

  // Expert parallelism of `ep_size` (DeepSpeed's _create_expert_and_data_parallel, E + D
  // ordering): each data-parallel group is cut into consecutive runs of ep_size ranks (the
  // expert-parallel groups, which exchange tokens), and the ranks at the same position of
  // those runs form the expert-data-parallel groups (which average the experts' gradients).
  // Collective over the world; a second call with the same size returns what the first made.
  void create_expert_groups(int64_t ep_size);
  const std::shared_ptr<comm::ProcessGroup>& expert_parallel(int64_t ep_size) const;
  const std::shared_ptr<comm::ProcessGroup>& expert_data_parallel(int64_t ep_size) const;

  // The expert-parallel and expert-data-parallel member lists (job-wide ranks) for these sizes,
  // as DeepSpeed's _get_expert_parallel_ranks: pure, for tests and for create_expert_groups.
  struct ExpertRankLists {
    std::vector<std::vector<int64_t>> expert_parallel;
    std::vector<std::vector<int64_t>> expert_data_parallel;
  };
  static ExpertRankLists expert_rank_lists(int64_t world_size, int64_t tensor, int64_t ep_size, int64_t pipe);

  // Every distinct group above (the world first), each once.
  std::vector<std::shared_ptr<comm::ProcessGroup>> all() const;

  // DeepSpeed's "distributed groups summary" lines (rank 0 logs them).
  std::string summary() const;

 private:
  explicit Groups(std::shared_ptr<comm::ProcessGroup> world) : world_(std::move(world)) {}
  // The group with these job-wide members, made once: identical member lists share a group.
  std::shared_ptr<comm::ProcessGroup> group_of(const std::vector<int64_t>& members);

  std::shared_ptr<comm::ProcessGroup> world_, data_, tensor_, pipe_, model_, sequence_, sequence_data_;
  std::optional<ProcessTopology> topology_;
  std::map<std::vector<int64_t>, std::shared_ptr<comm::ProcessGroup>> made_;
  std::map<int64_t, std::pair<std::shared_ptr<comm::ProcessGroup>, std::shared_ptr<comm::ProcessGroup>>> experts_;
};

}  // namespace deepspeed
