// One rank that builds the job's groups for the sizes given and prints, for each kind, the
// job-wide ranks of its group: "<kind> r0,r1,..." (the test compares them with DeepSpeed's
// layout), then "allreduce <kind> <sum>" after an all-reduce of the rank over each group.
#include <iostream>

#include <deepspeed/deepspeed.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

int main(int argc, char** argv) {
  CLI::App app{"deepspeed-cpp groups test worker"};
  deepspeed::ParallelSizes sizes;
  int64_t ep_size = 0;
  app.add_option("--pipe", sizes.pipe);
  app.add_option("--tensor", sizes.tensor);
  app.add_option("--sequence", sizes.sequence);
  app.add_option("--ep_size", ep_size, "also make expert groups of this size");
  CLI11_PARSE(app, argc, argv);
  try {
    auto world = deepspeed::comm::init_distributed();
    auto groups = deepspeed::Groups::create(world, sizes);
    std::vector<std::pair<std::string, std::shared_ptr<deepspeed::comm::ProcessGroup>>> kinds{
        {"data", groups->data_parallel()},         {"tensor", groups->tensor_parallel()},
        {"pipe", groups->pipe_parallel()},         {"model", groups->model_parallel()},
        {"sequence", groups->sequence_parallel()}, {"sequence_data", groups->sequence_data_parallel()}};
    if (ep_size > 0) {
      groups->create_expert_groups(ep_size);
      kinds.emplace_back("expert", groups->expert_parallel(ep_size));
      kinds.emplace_back("expert_data", groups->expert_data_parallel(ep_size));
    }
    std::string text;
    for (const auto& [kind, g] : kinds) text += fmt::format("{} {}\n", kind, fmt::join(g->ranks(), ","));
    // Each group really connects its members: the sum of their job-wide ranks.
    for (const auto& [kind, g] : kinds) {
      auto t = torch::full({1}, static_cast<double>(world->rank()), torch::kFloat64);
      g->all_reduce(t);
      text += fmt::format("allreduce {} {}\n", kind, static_cast<int64_t>(t.item<double>()));
    }
    std::cout << text << std::flush;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
