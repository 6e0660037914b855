#include "runtime/zero/nvme_shard_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <c10/util/irange.h>
#include <fmt/format.h>

#include <deepspeed/errors.h>

namespace deepspeed {
namespace {

// mkdir -p, with an error naming the folder (std::filesystem is avoided: a PyTorch wheel's
// libtorch exports its own copy; see checkpoint/atomic_file.h).
void make_directories(const std::string& path) {
  std::string prefix;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    prefix = path.substr(0, pos);
    if (prefix.empty() || ::mkdir(prefix.c_str(), 0777) == 0 || errno == EEXIST) continue;
    throw ConfigError("zero_optimization.offload_param.nvme_path",
                      fmt::format("cannot create {}: {}", prefix, std::strerror(errno)));
  }
}

}  // namespace

NvmeShardStore::NvmeShardStore(const std::string& nvme_path, int64_t rank, torch::ScalarType dtype,
                               const AioConfig& aio, const std::vector<torch::Tensor>& masters)
    : dir_(fmt::format("{}/zero_stage_3/rank{}", nvme_path, rank)), dtype_(dtype), aio_(aio) {
  make_directories(dir_);
  for (const auto g : c10::irange(masters.size())) {
    files_.push_back(fmt::format("{}/group{}.{}.swp", dir_, g, c10::toString(dtype)));
  }
  write(masters);
}

NvmeShardStore::~NvmeShardStore() {
  try {
    aio_.wait();
  } catch (...) {  // nothing is read any more; the files go anyway
  }
  for (const auto& f : files_) ::unlink(f.c_str());
  ::rmdir(dir_.c_str());
}

void NvmeShardStore::write(const std::vector<torch::Tensor>& masters) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> staged;
  for (const auto g : c10::irange(masters.size())) {
    if (masters[g].numel() == 0) continue;
    auto buffer = aio_.new_cpu_locked_tensor(masters[g].numel(), torch::empty({0}, torch::TensorOptions().dtype(dtype_)));
    buffer.copy_(masters[g].reshape(-1));
    aio_.async_pwrite(buffer, files_[g]);
    staged.push_back(buffer);
  }
  aio_.wait();
}

torch::Tensor NvmeShardStore::read(int64_t group, int64_t offset, int64_t length) {
  auto buffer = aio_.new_cpu_locked_tensor(length, torch::empty({0}, torch::TensorOptions().dtype(dtype_)));
  if (length > 0) aio_.sync_pread(buffer, files_.at(group), offset * static_cast<int64_t>(buffer.element_size()));
  return buffer;
}

}  // namespace deepspeed
