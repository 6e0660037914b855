// One rank of the rendezvous tests: init_distributed from the launcher's environment with
// --timeout_ms (else DEEPSPEED_TIMEOUT's), timed from the call. Prints
// "rendezvous ok after <ms> ms" and runs one all_reduce, or "rendezvous failed after <ms> ms"
// and "error: <message>" and exits 1.
//   rendezvous_worker [--timeout_ms MS]
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include <deepspeed/comm.h>
#include <deepspeed/errors.h>
#include <torch/torch.h>

int main(int argc, char** argv) {
  deepspeed::comm::InitOptions options;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--timeout_ms") == 0) options.timeout = std::chrono::milliseconds(std::atoll(argv[++i]));
  }
  const auto started = std::chrono::steady_clock::now();
  auto elapsed_ms = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  };
  try {
    auto group = deepspeed::comm::init_distributed(options);
    std::cout << "rendezvous ok after " << elapsed_ms() << " ms" << std::endl;
    auto t = torch::ones({4});
    group->all_reduce(t);
    if (t[0].item<float>() != static_cast<float>(group->size())) throw std::runtime_error("bad all_reduce");
    std::cout << "all_reduce ok" << std::endl;
  } catch (const deepspeed::Error& e) {
    std::cout << "rendezvous failed after " << elapsed_ms() << " ms" << std::endl;
    std::cerr << "error: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
