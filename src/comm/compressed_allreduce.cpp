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

// The CPU path: the same arithmetic in one or two passes over memory, where the expressions
// above make a dozen (on a slow link the compression is what a 1-bit step spends its time on).

// x holds the values to compress; afterwards it holds the error x - scale·sign(x). Returns the scale.
float compress_in_place(float* x, int64_t length, uint8_t* packed) {
  double sum[4] = {0.0, 0.0, 0.0, 0.0};
  for (int64_t i = 0; i < length; i += 4) {
    for (int k = 0; k < 4; ++k) sum[k] += static_cast<double>(x[i + k]) * x[i + k];
  }
  const double norm = std::sqrt((sum[0] + sum[1]) + (sum[2] + sum[3]));
  const auto scale = static_cast<float>(norm / std::sqrt(static_cast<double>(length)));
  for (int64_t b = 0; b < length / 8; ++b) {
    float* v = x + 8 * b;
    unsigned bits = 0;
    for (int k = 0; k < 8; ++k) {
      const bool negative = v[k] < 0.0f;
      bits |= static_cast<unsigned>(!negative) << (7 - k);
      v[k] -= negative ? -scale : scale;
    }
    packed[b] = static_cast<uint8_t>(bits);
  }
  return scale;
}

// out[i] += (bit i ? weight : -weight) for the 8·bytes bits of `packed`.
void add_signs(const uint8_t* packed, int64_t bytes, float weight, float* out) {
  for (int64_t b = 0; b < bytes; ++b) {
    const unsigned byte = packed[b];
    for (int k = 0; k < 8; ++k) out[8 * b + k] += ((byte >> (7 - k)) & 1u) ? weight : -weight;
  }
}

bool cpu_path(const torch::Tensor& buffer, const CompressionErrors& errors) {
  return buffer.device().is_cpu() && errors.worker.device().is_cpu() && errors.worker.is_contiguous() &&
         errors.server.is_contiguous() && errors.worker.scalar_type() == torch::kFloat32 &&
         errors.server.scalar_type() == torch::kFloat32;
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

namespace {

// The algorithm of compressed_allreduce below, on CPU fp32 buffers, with the kernels above.
torch::Tensor compressed_allreduce_cpu(ProcessGroup& group, const torch::Tensor& buffer, CompressionErrors& errors) {
  const int64_t n = group.size();
  const int64_t numel = buffer.numel();
  const int64_t length = errors.worker.numel();
  const int64_t chunk = length / n;
  const int64_t chunk_bytes = chunk / 8;
  const auto in = buffer.detach().reshape({-1}).to(torch::kFloat32).contiguous();
  float* x = errors.worker.data_ptr<float>();
  const float* v = in.data_ptr<float>();
  for (int64_t i = 0; i < numel; ++i) x[i] += v[i];  // the padding adds zeros

  const auto bytes = torch::TensorOptions().dtype(torch::kUInt8);
  auto signs = torch::empty({length / 8}, bytes);
  auto scales = torch::zeros({n});
  scales.data_ptr<float>()[group.rank()] = compress_in_place(x, length, signs.data_ptr<uint8_t>());
  auto received = torch::empty_like(signs);
  group.all_to_all_single(received, signs);
  group.wait(group.all_gather_async(scales), "all_gather");

  float* m = errors.server.data_ptr<float>();
  auto average = torch::zeros({chunk});
  float* a = average.data_ptr<float>();
  const float* s = scales.data_ptr<float>();
  for (int64_t r = 0; r < n; ++r) {
    add_signs(received.data_ptr<uint8_t>() + r * chunk_bytes, chunk_bytes, s[r] / static_cast<float>(n), a);
  }
  for (int64_t i = 0; i < chunk; ++i) m[i] = a[i] + m[i];

  auto all_signs = torch::empty({n * chunk_bytes}, bytes);
  auto server_scales = torch::zeros({n});
  server_scales.data_ptr<float>()[group.rank()] =
      compress_in_place(m, chunk, all_signs.data_ptr<uint8_t>() + group.rank() * chunk_bytes);
  group.wait(group.all_gather_async(all_signs), "all_gather");
  group.wait(group.all_gather_async(server_scales), "all_gather");

  auto result = torch::zeros({length});
  float* out = result.data_ptr<float>();
  const float* ss = server_scales.data_ptr<float>();
  for (int64_t r = 0; r < n; ++r) {
    // Zeros plus ±scale: each element is written exactly once.
    add_signs(all_signs.data_ptr<uint8_t>() + r * chunk_bytes, chunk_bytes, ss[r], out + r * chunk);
  }
  return result.narrow(0, 0, numel).view(buffer.sizes()).to(buffer.scalar_type());
}

}  // namespace

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
  if (cpu_path(buffer, errors)) return compressed_allreduce_cpu(group, buffer, errors);
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
