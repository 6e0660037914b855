// One rank of the comms logger test: sets up the process group from the launcher's
// environment, logs a known sequence of collectives, prints what was recorded as
// "record <name>|<bytes>|<count>" lines, then DeepSpeed's log_summary table.
//   comms_worker [--prof_ops all_reduce] [--debug]
#include <cstring>
#include <iostream>
#include <memory>

#include <deepspeed/comm.h>
#include <deepspeed/comms_logger.h>
#include <torch/torch.h>

int main(int argc, char** argv) {
  deepspeed::CommsLoggerConfig config;
  config.enabled = true;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--debug") == 0) config.debug = true;
    if (std::strcmp(argv[i], "--prof_ops") == 0 && i + 1 < argc) {
      config.prof_all = false;
      config.prof_ops.push_back(argv[++i]);
    }
  }
  try {
    auto group = deepspeed::comm::init_distributed();
    auto logger = std::make_shared<deepspeed::comm::CommsLogger>(config, group->size(), group->rank());
    group->set_comms_logger(logger);
    for (int i = 0; i < 3; ++i) {
      auto t = torch::ones({1000});
      group->all_reduce(t);
      if (t[0].item<float>() != static_cast<float>(group->size())) throw std::runtime_error("bad all_reduce");
    }
    for (int i = 0; i < 2; ++i) {
      auto t = torch::full({10}, static_cast<float>(group->rank()));
      group->broadcast(t, 0);
    }
    std::vector<torch::Tensor> gathered(group->size(), torch::empty({5}));
    group->all_gather(gathered, torch::full({5}, static_cast<float>(group->rank())));
    auto flat = torch::zeros({4 * group->size()});
    group->all_gather_async(flat)->wait();
    auto grads = torch::ones({4 * group->size()});
    group->reduce_scatter_async(grads)->wait();
    // bf16 (which Gloo lacks) arrives bit for bit, NaN and infinity patterns included: part j
    // of rank r holds the bits 0x7f7e + 2r + j.
    const int64_t n = group->size();
    auto bits = torch::arange(n, torch::kInt16).add_(0x7f7e + 2 * group->rank()).repeat_interleave(4);
    auto received = torch::empty({4 * n}, torch::kBFloat16);
    group->all_to_all_single(received, bits.view(torch::kBFloat16));
    auto expected = (torch::arange(n, torch::kInt16) * 2).add_(0x7f7e + group->rank()).repeat_interleave(4);
    if (!torch::equal(received.view(torch::kInt16), expected)) throw std::runtime_error("bad bf16 all_to_all_single");
    group->barrier();
    std::cout << "ops " << logger->total_operations() << "\n";
    for (const auto& [name, sizes] : logger->records()) {
      for (const auto& [bytes, entry] : sizes) std::cout << "record " << name << "|" << bytes << "|" << entry.count << "\n";
    }
    std::cout.flush();
    deepspeed::comm::log_summary(*group);
    std::cout << "ops after summary " << logger->total_operations() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "comms_worker: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
