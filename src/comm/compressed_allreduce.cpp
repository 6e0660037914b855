#include "comm/compressed_allreduce.h"

#include <cmath>
#include <numeric>

#include <deepspeed/errors.h>

namespace deepspeed::comm {
namespace {

// Bit weights of one byte, highest first.
torch::Tensor bit_weights(torch::Device device) {
  return torch::tensor({128, 64, 32, 16, 8, 4, 2, 1}, torch::TensorOptions().dtype(torch::kUInt8).device(device));
}

// Splits x into scale·sign(x) and what that leaves over (the error carried to the next call).
struct Compressed {
  torch::Tensor scale;  // 1 element, fp32
  torch::Tensor signs;  // packed
  torch::Tensor error;
};
Compressed compress(const torch::Tensor& x) {
  Compressed c;
  c.scale = (x.norm() / std::sqrt(static_cast<double>(x.numel()))).reshape({1});
  const auto sign = x.lt(0).to(torch::kFloat32).mul_(-2.0f).add_(1.0f);
  c.error = x - c.scale * sign;
  c.signs = pack_signs(x);
  return c;
}

}  // namespace

int64_t compressed_length(int64_t numel, int64_t world_size) {
  const int64_t divider = std::lcm(world_size, int64_t{8});
  const int64_t unit = world_size * divider;
  return (numel + unit - 1) / unit * unit;
}

CompressionErrors make_compression_errors(int64_t numel, int64_t world_size, torch::Device device) {
  const int64_t length = compressed_length(numel, world_size);
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  return {torch::zeros({length}, options), torch::zeros({length / world_size}, options)};
}

torch::Tensor pack_signs(const torch::Tensor& values) {
  TORCH_CHECK(values.dim() == 1 && values.numel() % 8 == 0, "pack_signs: expected a 1-D tensor of a multiple of 8");
  const auto bits = values.lt(0).logical_not().to(torch::kUInt8).view({-1, 8});
  return bits.mul(bit_weights(values.device())).sum(1, /*keepdim=*/false, torch::kUInt8);
}

torch::Tensor unpack_signs(const torch::Tensor& packed) {
  const auto bits = packed.reshape({-1, 1}).bitwise_and(bit_weights(packed.device())).ne(0);
  return bits.reshape({-1}).to(torch::kFloat32).mul_(2.0f).sub_(1.0f);
}

torch::Tensor compressed_allreduce(ProcessGroup& group, const torch::Tensor& buffer, CompressionErrors& errors) {
  const int64_t n = group.size();
  const int64_t numel = buffer.numel();
  const int64_t length = compressed_length(numel, n);
  if (errors.worker.numel() != length || errors.server.numel() != length / n) {
    throw CommError("compressed_allreduce: error buffers of " + std::to_string(errors.worker.numel()) + " and " +
                    std::to_string(errors.server.numel()) + " elements do not fit a buffer of " +
                    std::to_string(numel) + " elements over " + std::to_string(n) + " ranks (expected " +
                    std::to_string(length) + " and " + std::to_string(length / n) + ")");
  }
  torch::NoGradGuard no_grad;
  if (n == 1) return buffer.detach().clone();
  const auto device = group.device();
  auto x = torch::zeros({length}, buffer.options().dtype(torch::kFloat32).device(device));
  x.narrow(0, 0, numel).copy_(buffer.detach().reshape({-1}));
  x.add_(errors.worker);

  // Worker phase: this rank's signs, chunk r to rank r, and its scale to every rank.
  const auto worker = compress(x);
  errors.worker.copy_(worker.error);
  auto received = torch::empty_like(worker.signs);
  group.all_to_all_single(received, worker.signs);
  auto scales = torch::zeros({n}, x.options());
  scales.narrow(0, group.rank(), 1).copy_(worker.scale);
  group.wait(group.all_gather_async(scales), "all_gather");

  // Server phase: the average of this rank's chunk over the ranks, compressed again.
  const int64_t chunk = length / n;
  auto server_m = unpack_signs(received).view({n, chunk}).mul_(scales.div(static_cast<double>(n)).view({n, 1})).sum(0);
  server_m.add_(errors.server);
  const auto server = compress(server_m);
  errors.server.copy_(server.error);

  // Every rank's averaged chunk, to every rank.
  const int64_t chunk_bytes = chunk / 8;
  auto all_signs = torch::zeros({n * chunk_bytes}, server.signs.options());
  all_signs.narrow(0, group.rank() * chunk_bytes, chunk_bytes).copy_(server.signs);
  auto server_scales = torch::zeros({n}, x.options());
  server_scales.narrow(0, group.rank(), 1).copy_(server.scale);
  group.wait(group.all_gather_async(all_signs), "all_gather");
  group.wait(group.all_gather_async(server_scales), "all_gather");

  auto result = unpack_signs(all_signs).view({n, chunk}).mul_(server_scales.view({n, 1})).reshape({-1});
  return result.narrow(0, 0, numel).reshape(buffer.sizes()).to(buffer.device());
}

}  // namespace deepspeed::comm
