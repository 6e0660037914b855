// The error-compensated 1-bit all-reduce of DeepSpeed's 1-bit Adam, 0/1 Adam and 1-bit LAMB
// (DeepSpeed's compressed_allreduce), over a ProcessGroup: Gloo on CPUs, NCCL on GPUs.
//
// Each of the N ranks sends one bit per element and one scale instead of 32 bits per element:
//   worker phase:  x = buffer (zero-padded to compressed_length) + worker_error
//                  s = ||x|| / sqrt(len(x));  worker_error = x - s·sign(x)
//                  sign(x) is packed 8 per byte, cut into N chunks; chunk r goes to rank r
//                  (all-to-all), the scales to everyone (all-gather)
//   server phase:  rank r averages its chunk over the ranks, m = Σ_i s_i·sign_i[r] / N,
//                  adds server_error (its chunk's), and compresses m the same way
//                  (scale ||m|| / sqrt(len(m)), server_error = m - scale·sign(m))
//   all-gather:    every rank gathers each rank's server signs and scale; the result is
//                  their concatenation, cut back to the buffer's length and shape.
// sign(v) is +1 where v >= 0 (and for NaN), -1 where v < 0: one bit cannot hold zero.
// Every rank gets the same result. The error tensors carry what compression lost into the
// next call: keep them per buffer, made by make_compression_errors for that buffer's length.
// Collective: every rank of the group calls it with a buffer of the same length.
// Bytes sent per rank: about len/8 (signs) + len/(8N) (server signs) + 8 (scales), against
// 4·len for an fp32 all-reduce.
#pragma once

#include <cstdint>

#include <torch/types.h>

#include <deepspeed/comm.h>

namespace deepspeed::comm {

// The buffer's length padded to a multiple of N·lcm(N, 8): every rank's chunk is whole bytes
// and the server chunk divides evenly (DeepSpeed's corrected_tensor_size).
int64_t compressed_length(int64_t numel, int64_t world_size);

// Worker error (compressed_length elements) and server error (compressed_length / N), zero.
struct CompressionErrors {
  torch::Tensor worker;
  torch::Tensor server;
};
CompressionErrors make_compression_errors(int64_t numel, int64_t world_size, torch::Device device);

// The all-reduced average of `buffer` (any shape, fp32) over `group`, compressed as above;
// updates `errors` in place. `buffer` itself is not changed. A group of one returns a copy.
torch::Tensor compressed_allreduce(ProcessGroup& group, const torch::Tensor& buffer, CompressionErrors& errors);

// One bit per element, eight to a byte, the first element in the highest bit (numpy's
// packbits): 1 where the value is >= 0 (or NaN). `values`: 1-D, length a multiple of 8.
torch::Tensor pack_signs(const torch::Tensor& values);
// The inverse: +1.0 / -1.0 (fp32) for each of the 8·len(packed) bits.
torch::Tensor unpack_signs(const torch::Tensor& packed);

}  // namespace deepspeed::comm
