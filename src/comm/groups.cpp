#include <deepspeed/groups.h>

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <deepspeed/errors.h>

namespace deepspeed {
namespace {

const std::vector<int64_t>& list_containing(const std::vector<std::vector<int64_t>>& lists, int64_t rank) {
  for (const auto& l : lists) {
    if (std::find(l.begin(), l.end(), rank) != l.end()) return l;
  }
  throw EngineError(fmt::format("rank {} is in no group of the topology", rank));
}

}  // namespace

std::shared_ptr<comm::ProcessGroup> Groups::group_of(const std::vector<int64_t>& members) {
  if (members == world_->ranks()) return world_;
  auto& g = made_[members];
  if (!g) {
    // new_group takes ranks of the parent group; the world's ranks are the job's.
    g = world_->new_group(members);
  }
  return g;
}

std::shared_ptr<Groups> Groups::create(std::shared_ptr<comm::ProcessGroup> world, const ParallelSizes& sizes) {
  const int64_t n = world->size();
  if (sizes.pipe < 1 || sizes.tensor < 1 || sizes.sequence < 1) {
    throw EngineError(fmt::format("parallel sizes must be at least 1: pipeline stages {}, tensor parallel {}, "
                                  "sequence parallel {}",
                                  sizes.pipe, sizes.tensor, sizes.sequence));
  }
  const int64_t split = sizes.pipe * sizes.tensor * sizes.sequence;
  if (n % split != 0) {
    throw EngineError(fmt::format("the world size {} is not divisible by pipeline stages ({}) x tensor parallel ({}) "
                                  "x sequence parallel ({}) = {}",
                                  n, sizes.pipe, sizes.tensor, sizes.sequence, split));
  }
  const int64_t dp = n / split;
  std::shared_ptr<Groups> g(new Groups(world));
  // DeepSpeed's PipeModelDataParallelTopology; sequence peers sit between data and model, as
  // DeepSpeed's (data, sequence) device mesh makes them consecutive where there is no model axis.
  if (sizes.sequence > 1) {
    g->topology_.emplace(std::vector<std::string>{"pipe", "data", "sequence", "model"},
                         std::vector<int64_t>{sizes.pipe, dp, sizes.sequence, sizes.tensor});
  } else {
    g->topology_.emplace(PipeModelDataParallelTopology(sizes.pipe, sizes.tensor, dp));
  }
  const ProcessTopology& topo = *g->topology_;
  const int64_t me = world->rank();
  const auto coord = [&](const char* axis) { return topo.get_coord(me, axis); };
  std::map<std::string, int64_t> replica{{"data", coord("data")}};
  std::map<std::string, int64_t> position{{"pipe", coord("pipe")}, {"model", coord("model")}};
  if (sizes.sequence > 1) replica["sequence"] = coord("sequence");
  // Every rank is in exactly one group of each kind, and the kinds are made in the same order
  // everywhere, so no member waits on a group another member has not reached.
  g->data_ = g->group_of(list_containing(topo.get_axis_comm_lists("data"), me));
  g->tensor_ = g->group_of(list_containing(topo.get_axis_comm_lists("model"), me));
  g->pipe_ = g->group_of(list_containing(topo.get_axis_comm_lists("pipe"), me));
  g->model_ = g->group_of(topo.filter_match(replica));
  g->sequence_ = sizes.sequence > 1 ? g->group_of(list_containing(topo.get_axis_comm_lists("sequence"), me))
                                    : g->group_of({me});
  g->sequence_data_ = sizes.sequence > 1 ? g->group_of(topo.filter_match(position)) : g->data_;
  return g;
}

std::shared_ptr<Groups> Groups::from_mpu(std::shared_ptr<comm::ProcessGroup> world, const ModelParallelUnit& mpu) {
  std::shared_ptr<Groups> g(new Groups(world));
  g->data_ = mpu.get_data_parallel_group();
  g->model_ = mpu.get_model_parallel_group();
  if (!g->data_ || !g->model_) {
    throw EngineError("the model-parallel unit (mpu) gave no data-parallel or no model-parallel group");
  }
  g->tensor_ = mpu.get_tensor_model_parallel_group();
  if (!g->tensor_) g->tensor_ = g->model_;
  const int64_t me = world->rank();
  g->pipe_ = mpu.get_pipe_parallel_group();
  if (!g->pipe_) g->pipe_ = g->group_of({me});
  g->sequence_ = mpu.get_sequence_parallel_group();
  if (!g->sequence_) g->sequence_ = g->group_of({me});
  const int64_t covered = g->data_->size() * g->model_->size() * g->sequence_->size();
  if (covered != world->size()) {
    throw EngineError(fmt::format("the model-parallel unit's groups do not make the world: data parallel {} x model "
                                  "parallel {} x sequence parallel {} = {}, but the world size is {}",
                                  g->data_->size(), g->model_->size(), g->sequence_->size(), covered, world->size()));
  }
  if (g->sequence_->size() > 1) {
    // Gradients and ZeRO partitions would then span data x sequence, a group the unit does
    // not name.
    throw EngineError("a model-parallel unit with a sequence-parallel group must be used with sizes from the config "
                      "(sequence_parallel_size) for now: deepspeed-cpp cannot derive the sequence-data group from it");
  }
  g->sequence_data_ = g->data_;
  return g;
}

Groups::ExpertRankLists Groups::expert_rank_lists(int64_t world_size, int64_t tensor, int64_t ep_size, int64_t pipe) {
  if (tensor < 1 || ep_size < 1 || pipe < 1 || world_size % (tensor * pipe) != 0) {
    throw EngineError(fmt::format("expert parallelism: the world size {} is not divisible by tensor parallel ({}) x "
                                  "pipeline stages ({})",
                                  world_size, tensor, pipe));
  }
  const int64_t dp = world_size / (tensor * pipe);
  if (dp % ep_size != 0) {
    throw EngineError(fmt::format("expert parallelism: the data-parallel size {} is not divisible by ep_size {}", dp,
                                  ep_size));
  }
  ExpertRankLists out;
  const int64_t pp_stride = world_size / pipe;
  for (int64_t start = 0; start < world_size; start += pp_stride) {
    for (int64_t i = 0; i < tensor; ++i) {
      std::vector<int64_t> data;
      for (int64_t r = start + i; r < start + pp_stride; r += tensor) data.push_back(r);
      std::vector<std::vector<int64_t>> parts;
      for (int64_t k = 0; k < dp; k += ep_size) parts.emplace_back(data.begin() + k, data.begin() + k + ep_size);
      out.expert_parallel.insert(out.expert_parallel.end(), parts.begin(), parts.end());
      for (int64_t pos = 0; pos < ep_size; ++pos) {
        std::vector<int64_t> edp;
        for (const auto& part : parts) edp.push_back(part[static_cast<std::size_t>(pos)]);
        out.expert_data_parallel.push_back(std::move(edp));
      }
    }
  }
  return out;
}

void Groups::create_expert_groups(int64_t ep_size) {
  if (experts_.count(ep_size)) return;
  if (sequence_->size() > 1) {
    throw EngineError("expert parallelism together with sequence parallelism is not supported");
  }
  const auto lists = expert_rank_lists(world_->size(), tensor_->size(), ep_size, pipe_->size());
  const int64_t me = world_->rank();
  auto ep = group_of(list_containing(lists.expert_parallel, me));
  auto edp = group_of(list_containing(lists.expert_data_parallel, me));
  experts_[ep_size] = {ep, edp};
}

const std::shared_ptr<comm::ProcessGroup>& Groups::expert_parallel(int64_t ep_size) const {
  const auto it = experts_.find(ep_size);
  if (it == experts_.end()) throw EngineError(fmt::format("no expert groups of ep_size {} were created", ep_size));
  return it->second.first;
}

const std::shared_ptr<comm::ProcessGroup>& Groups::expert_data_parallel(int64_t ep_size) const {
  const auto it = experts_.find(ep_size);
  if (it == experts_.end()) throw EngineError(fmt::format("no expert groups of ep_size {} were created", ep_size));
  return it->second.second;
}

std::vector<std::shared_ptr<comm::ProcessGroup>> Groups::all() const {
  std::vector<std::shared_ptr<comm::ProcessGroup>> out{world_};
  auto add = [&out](const std::shared_ptr<comm::ProcessGroup>& g) {
    if (g && std::find(out.begin(), out.end(), g) == out.end()) out.push_back(g);
  };
  for (const auto& g : {data_, tensor_, pipe_, model_, sequence_, sequence_data_}) add(g);
  for (const auto& [size, pair] : experts_) add(pair.first), add(pair.second);
  return out;
}

std::string Groups::summary() const {
  return fmt::format(
      "********** distributed groups summary **********\n"
      "\t self.dp_world_size={}\n\t self.mp_world_size={}\n\t self.seq_dp_world_size={}\n"
      "\t self.sequence_parallel_size={}\n"
      "***********************************************",
      data_->size(), model_->size(), sequence_data_->size(), sequence_->size());
}

}  // namespace deepspeed
