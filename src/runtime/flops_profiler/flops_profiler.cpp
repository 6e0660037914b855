// FlopsProfiler: the module tree taken at start_profile(), the operators recorded until
// stop_profile(), and each operator's cost and time summed into its module and its ancestors.
#include <deepspeed/flops_profiler.h>

#include <ostream>

#include "runtime/flops_profiler/module_tree.h"
#include "runtime/flops_profiler/op_recorder.h"
#include "runtime/flops_profiler/profile_report.h"

namespace deepspeed {

FlopsProfiler::FlopsProfiler(std::shared_ptr<torch::nn::Module> model, double recompute_fwd_factor,
                             std::function<void()> synchronize)
    : model_(std::move(model)),
      recompute_fwd_factor_(recompute_fwd_factor),
      recorder_(std::make_unique<flops::OpRecorder>(std::move(synchronize))) {}

FlopsProfiler::~FlopsProfiler() = default;

void FlopsProfiler::start_profile() {
  recorder_->stop();
  recorder_->clear();
  profiles_.clear();
  tree_ = std::make_unique<flops::ModuleTree>(*model_);
  started_ = true;
  recorder_->start();
}

void FlopsProfiler::stop_profile() {
  if (!started_ || !recorder_->recording()) return;
  recorder_->stop();
  const auto& nodes = tree_->nodes();
  profiles_.assign(nodes.size(), ModuleProfile{});
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    profiles_[i].path = nodes[i].path;
    profiles_[i].type = nodes[i].type;
    profiles_[i].depth = nodes[i].depth;
    profiles_[i].params = nodes[i].params;
  }
  const auto& records = recorder_->records();
  const auto owners = tree_->attribute(records);
  for (std::size_t r = 0; r < records.size(); ++r) {
    for (int m = owners[r]; m >= 0; m = nodes[m].parent) {
      profiles_[m].flops += records[r].flops;
      profiles_[m].macs += records[r].macs;
      profiles_[m].seconds += records[r].seconds;
    }
  }
  recorder_->clear();
}

void FlopsProfiler::end_profile() {
  recorder_->stop();
  recorder_->clear();
  profiles_.clear();
  tree_.reset();
  started_ = false;
}

int64_t FlopsProfiler::get_total_flops() const { return profiles_.empty() ? 0 : profiles_[0].flops; }
int64_t FlopsProfiler::get_total_macs() const { return profiles_.empty() ? 0 : profiles_[0].macs; }
int64_t FlopsProfiler::get_total_params() const { return profiles_.empty() ? 0 : profiles_[0].params; }
double FlopsProfiler::get_total_duration() const { return profiles_.empty() ? 0.0 : profiles_[0].seconds; }
const std::vector<ModuleProfile>& FlopsProfiler::module_profiles() const { return profiles_; }

void FlopsProfiler::print_model_profile(std::ostream& out, const ProfilePrintOptions& options,
                                        const std::optional<ProfileContext>& context) const {
  if (profiles_.empty() || !tree_) return;  // as DeepSpeed: nothing before a profile
  flops::print_profile(out, *tree_, profiles_, options, context, recompute_fwd_factor_);
  out.flush();
}

}  // namespace deepspeed
