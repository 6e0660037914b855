// One rank of the Megatron-layer checks, started by the tests' multi-process harness: each
// tensor-parallel layer against the unsplit LibTorch layer it stands for, on the same weights
// and inputs (drawn from one seed on every rank): the outputs, the input gradients and this
// rank's part of the weight gradients must equal the unsplit layer's. Exits non-zero, naming
// the check, when one differs. And the comms logger's counts and bytes are the analytic ones: a
// column -> row pair runs one all-reduce forward (the output) and one backward (the input
// gradient); a DistributedAttention runs four all-to-alls forward and four backward.
#include <iostream>
#include <map>

#include <deepspeed/comms_logger.h>
#include <deepspeed/deepspeed.h>
#include <deepspeed/sequence.h>
#include <deepspeed/tensor_parallel.h>
#include <torch/torch.h>

namespace {

namespace ds = deepspeed;
namespace tp = deepspeed::tensor_parallel;

int failures = 0;

void check_count(bool ok, const std::string& what) {
  if (!ok) {
    std::cerr << "MISMATCH " << what << "\n";
    ++failures;
  }
}

// Per message size: how many operations named `op` the logger saw.
std::map<int64_t, int64_t> logged(const ds::comm::CommsLogger& logger, const std::string& op) {
  std::map<int64_t, int64_t> out;
  for (const auto& [name, sizes] : logger.records()) {
    if (name != op) continue;
    for (const auto& [bytes, entry] : sizes) out[bytes] += entry.count;
  }
  return out;
}

void check(const torch::Tensor& got, const torch::Tensor& want, const std::string& what) {
  // fp32 sums in another order: relative to the largest element (a small one of a sum with
  // large terms carries the large terms' rounding).
  const double scale = want.numel() ? want.abs().max().item<double>() : 0.0;
  if (got.sizes() != want.sizes() || !torch::allclose(got, want, 1e-5, 1e-5 * scale + 1e-7)) {
    std::cerr << "MISMATCH " << what << "\n got " << got << "\n want " << want << "\n";
    ++failures;
  }
}

torch::Tensor part(const torch::Tensor& whole, int64_t dim, const ds::comm::ProcessGroup& g) {
  return whole.chunk(g.size(), dim)[static_cast<size_t>(g.rank())];
}

}  // namespace

int main() {
  try {
    auto world = ds::comm::init_distributed();
    auto& g = *world;
    torch::manual_seed(3);
    const int64_t in = 6, hidden = 8, out = 4, vocab = 12;
    auto x = torch::randn({3, 5, in});
    auto w1 = torch::randn({hidden, in}), b1 = torch::randn({hidden});
    auto w2 = torch::randn({out, hidden}), b2 = torch::randn({out});
    auto table = torch::randn({vocab, in});
    auto tokens = torch::randint(0, vocab, {3, 5});
    auto target = torch::randint(0, vocab, {3, 5});

    // Column then row: the Megatron MLP.
    {
      auto ref_x = x.clone().requires_grad_(true);
      auto rw1 = w1.clone().requires_grad_(true), rb1 = b1.clone().requires_grad_(true);
      auto rw2 = w2.clone().requires_grad_(true), rb2 = b2.clone().requires_grad_(true);
      auto ref = torch::linear(torch::gelu(torch::linear(ref_x, rw1, rb1)), rw2, rb2);
      ref.pow(2).sum().backward();

      tp::ColumnParallelLinear column(in, hidden, world);
      tp::RowParallelLinear row(hidden, out, world);
      column->load_unsplit(w1, b1);
      row->load_unsplit(w2, b2);
      auto px = x.clone().requires_grad_(true);
      auto y = row(torch::gelu(column(px)));
      y.pow(2).sum().backward();
      check(y, ref, "column -> row output");
      check(px.grad(), ref_x.grad(), "column -> row input gradient");
      check(column->weight.grad(), part(rw1.grad(), 0, g), "column weight gradient");
      check(column->bias.grad(), part(rb1.grad(), 0, g), "column bias gradient");
      check(row->weight.grad(), part(rw2.grad(), 1, g), "row weight gradient");
      check(row->bias.grad(), rb2.grad(), "row bias gradient");
    }
    // gather_output and a row layer that splits its own input.
    {
      auto ref_x = x.clone().requires_grad_(true);
      auto ref = torch::linear(torch::linear(ref_x, w1, b1), w2);
      ref.sum().backward();
      tp::ColumnParallelLinear column(in, hidden, world, true, /*gather_output=*/true);
      tp::RowParallelLinear row(hidden, out, world, false, /*input_is_parallel=*/false);
      column->load_unsplit(w1, b1);
      row->load_unsplit(w2);
      auto px = x.clone().requires_grad_(true);
      auto y = row(column(px));
      y.sum().backward();
      check(y, ref, "gathered column -> scattering row output");
      check(px.grad(), ref_x.grad(), "gathered column -> scattering row input gradient");
    }
    // The vocabulary-parallel embedding and cross-entropy.
    {
      auto rt = table.clone().requires_grad_(true);
      auto rw = w1.clone().requires_grad_(true);
      auto ref_logits_w = torch::randn({vocab, hidden});
      auto rlw = ref_logits_w.clone().requires_grad_(true);
      auto ref_h = torch::linear(torch::embedding(rt, tokens), rw);
      auto ref_loss = torch::cross_entropy_loss(torch::linear(ref_h, rlw).reshape({-1, vocab}), target.reshape({-1}),
                                                {}, at::Reduction::None)
                          .reshape({3, 5});
      ref_loss.mean().backward();

      tp::VocabParallelEmbedding embedding(vocab, in, world);
      embedding->load_unsplit(table);
      auto pw = w1.clone().requires_grad_(true);
      tp::ColumnParallelLinear logits_layer(hidden, vocab, world, false);
      logits_layer->load_unsplit(ref_logits_w);
      auto h = torch::linear(embedding(tokens), pw);
      auto loss = tp::vocab_parallel_cross_entropy(logits_layer(h), target, g);
      loss.mean().backward();
      check(loss, ref_loss, "vocab-parallel cross-entropy");
      check(embedding->weight.grad(), part(rt.grad(), 0, g), "vocab-parallel embedding gradient");
      check(pw.grad(), rw.grad(), "gradient through the vocab-parallel loss and embedding");
      check(logits_layer->weight.grad(), part(rlw.grad(), 0, g), "output layer gradient");
    }
    // The comms logger's counts: one column -> row pair, then one DistributedAttention.
    {
      ds::CommsLoggerConfig logging;
      logging.enabled = true;
      auto logger = std::make_shared<ds::comm::CommsLogger>(logging, g.size(), g.rank(), [](const std::string&) {});
      g.set_comms_logger(logger);
      tp::ColumnParallelLinear column(in, hidden, world);
      tp::RowParallelLinear row(hidden, out, world);
      auto px = x.clone().requires_grad_(true);
      row(torch::gelu(column(px))).sum().backward();
      const int64_t out_bytes = x.size(0) * x.size(1) * out * 4, in_bytes = x.numel() * 4;
      const auto reduces = logged(*logger, "all_reduce");
      check_count(reduces == std::map<int64_t, int64_t>{{out_bytes, 1}, {in_bytes, 1}} ||
                      (out_bytes == in_bytes && reduces == std::map<int64_t, int64_t>{{out_bytes, 2}}),
                  "all-reduces of a column -> row pair (one forward of the output, one backward of the input gradient)");
      logger->reset();

      const int64_t heads = 2 * g.size();
      ds::sequence::DistributedAttention attention(
          [](const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) { return q * k + v; }, world);
      auto q = torch::randn({2, 3, heads, 4}).requires_grad_(true);
      auto k = torch::randn({2, 3, heads, 4}).requires_grad_(true);
      auto v = torch::randn({2, 3, heads, 4}).requires_grad_(true);
      attention(q, k, v).sum().backward();
      const auto exchanges = logged(*logger, "all_to_all_single");
      check_count(exchanges == std::map<int64_t, int64_t>{{q.numel() * 4, 8}},
                  "all-to-alls of a DistributedAttention (4 forward and 4 backward of the q/k/v/context size)");
      g.set_comms_logger(nullptr);
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  if (failures) return 2;
  std::cout << "tensor-parallel layers equal the unsplit ones\n";
  return 0;
}
