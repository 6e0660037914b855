// A tensor whose memory comes and goes while the tensor stays: ZeRO-3's parameters between
// gathers, and the fp32 gradient partitions between optimizer steps. The tensor (shape,
// dtype, autograd identity, every view of it) is untouched; only its storage is emptied and
// refilled, so whoever holds the tensor sees the new memory. Reading an emptied tensor is a
// bug of the caller (its data pointer is null).
#pragma once

#include <cstdint>

#include <c10/core/DeviceGuard.h>
#include <c10/core/StorageImpl.h>
#include <torch/torch.h>

namespace deepspeed {

// Gives the storage's memory back (to the caching allocator); returns the bytes freed.
inline int64_t free_storage(const torch::Tensor& t) {
  auto* s = t.storage().unsafeGetStorageImpl();
  const auto bytes = static_cast<int64_t>(s->nbytes());
  if (bytes == 0) return 0;
  s->set_data_ptr_noswap(c10::DataPtr(nullptr, t.device()));
  s->set_nbytes(0);
  return bytes;
}

// Allocates the storage again, for the tensor's elements (contents undefined); returns the
// bytes allocated (0 when it already had memory). Needs a storage with an allocator: not one
// made by from_blob.
inline int64_t allocate_storage(const torch::Tensor& t) {
  auto* s = t.storage().unsafeGetStorageImpl();
  if (s->nbytes() > 0) return 0;
  const size_t bytes = static_cast<size_t>(t.numel()) * t.element_size();
  // The CUDA allocator allocates on the current device, which need not be the tensor's.
  const c10::DeviceGuard on_device(t.device());
  s->set_data_ptr_noswap(s->allocator()->allocate(bytes));
  s->set_nbytes(bytes);
  return static_cast<int64_t>(bytes);
}

}  // namespace deepspeed
