// A rank program that really communicates: init_distributed() from whatever environment the
// launcher gave (deepspeed's, or Open MPI's), then an all-reduce of rank + 1. Prints
// "ALLREDUCE rank=R world=W source=S sum=X"; every rank must print the same sum.
#include <cstdio>

#include <deepspeed/comm.h>
#include <deepspeed/errors.h>
#include <torch/torch.h>

int main() {
  try {
    auto group = deepspeed::comm::init_distributed();
    auto t = torch::full({4}, static_cast<double>(group->rank() + 1), torch::TensorOptions().device(group->device()));
    group->all_reduce(t);
    std::printf("ALLREDUCE rank=%ld world=%ld source=%s sum=%.0f\n", static_cast<long>(group->rank()),
                static_cast<long>(group->size()), group->environment().source.c_str(), t[0].item<double>());
    group->barrier();
    return 0;
  } catch (const deepspeed::Error& e) {
    std::fprintf(stderr, "allreduce_probe: %s\n", e.what());
    return 1;
  }
}
