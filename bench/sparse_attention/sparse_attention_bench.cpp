// sparse_attention_bench: forward + backward time and peak memory of the sparse attention op
// (bf16 or fp16, batch 1) for the layouts of docs/PERFORMANCE.md at each sequence length; its
// peer, bench/peers/sparse_attention_peer.py, times dense scaled_dot_product_attention on the
// same shapes. One line of JSON per case: the median of --iters timed steps, the layout's
// density, and the peak of memory allocated during a step beyond q, k, v and the output gradient.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <sstream>
#include <vector>

#include <CLI/CLI.hpp>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <deepspeed/config.h>
#include <deepspeed/sparse_attention.h>

namespace {

using namespace deepspeed::ops::sparse_attention;

// The layouts measured: each sparse_attention section (plus the head count given on the
// command line), at most 12.5 % dense at seq 16384.
const std::vector<std::pair<std::string, std::string>>& layouts() {
  static const std::vector<std::pair<std::string, std::string>> l = {
      {"fixed", R"({"mode": "fixed", "block": 64, "num_local_blocks": 16, "num_global_blocks": 1})"},
      {"bigbird", R"({"mode": "bigbird", "block": 64, "num_random_blocks": 8, "num_sliding_window_blocks": 15,
                      "num_global_blocks": 4})"},
  };
  return l;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Forward + backward of the sparse attention op's kernels"};
  int warmup = 3, iters = 10;
  int64_t heads = 16, head_dim = 64;
  std::vector<int64_t> seqs = {4096, 8192, 16384};
  std::string dtype_name = "bf16";
  app.add_option("--warmup", warmup, "untimed steps first");
  app.add_option("--iters", iters, "timed steps");
  app.add_option("--heads", heads);
  app.add_option("--head_dim", head_dim);
  app.add_option("--seq", seqs, "sequence lengths");
  app.add_option("--dtype", dtype_name, "bf16 or fp16");
  CLI11_PARSE(app, argc, argv);
  if (!torch::cuda::is_available()) {
    std::cerr << "sparse_attention_bench: no CUDA GPU\n";
    return 1;
  }
  const auto dtype = dtype_name == "fp16" ? torch::kHalf : torch::kBFloat16;
  const auto opts = torch::TensorOptions().device(torch::kCUDA).dtype(dtype);
  namespace alloc = c10::cuda::CUDACachingAllocator;
  const auto device = c10::cuda::current_device();
  for (const auto& [name, section] : layouts()) {
    const auto config = make_sparsity_config(deepspeed::read_sparse_attention_config(nlohmann::json::parse(section)),
                                             heads);
    for (int64_t seq : seqs) {
      SparseSelfAttention op(config, SparseSelfAttentionOptions{.max_seq_length = seq});
      const double density = op->get_layout(seq).density();
      torch::manual_seed(0);
      auto q = torch::randn({1, heads, seq, head_dim}, opts).requires_grad_();
      auto k = torch::randn({1, heads, seq, head_dim}, opts).requires_grad_();
      auto v = torch::randn({1, heads, seq, head_dim}, opts).requires_grad_();
      const auto g = torch::randn({1, heads, seq, head_dim}, opts);
      auto step = [&] {
        q.mutable_grad() = k.mutable_grad() = v.mutable_grad() = torch::Tensor();
        op->forward(q, k, v).backward(g);
      };
      for (int i = 0; i < warmup; ++i) step();
      torch::cuda::synchronize();
      q.mutable_grad() = k.mutable_grad() = v.mutable_grad() = torch::Tensor();
      const int64_t before = alloc::getDeviceStats(device).allocated_bytes[0].current;
      alloc::resetPeakStats(device);
      std::vector<double> ms;
      for (int i = 0; i < iters; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        step();
        torch::cuda::synchronize();
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      }
      const int64_t peak = alloc::getDeviceStats(device).allocated_bytes[0].peak - before;
      std::cout << "{\"impl\": \"deepspeed-cpp\", \"layout\": \"" << name << "\", \"seq\": " << seq
                << ", \"heads\": " << heads << ", \"head_dim\": " << head_dim << ", \"dtype\": \"" << dtype_name
                << "\", \"density\": " << density << ", \"ms\": " << median(ms)
                << ", \"peak_mib\": " << static_cast<double>(peak) / (1 << 20) << "}" << std::endl;
    }
  }
  return 0;
}
