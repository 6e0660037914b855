#include "comm/backend_factory.h"

#include <cstdlib>

#if defined(DS_HAVE_GLOO)
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if defined(DS_HAVE_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <deepspeed/errors.h>

namespace deepspeed::comm {
namespace {

[[maybe_unused]] bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

compat::BackendPtr make_gloo([[maybe_unused]] const c10::intrusive_ptr<c10d::Store>& store,
                             [[maybe_unused]] int64_t rank, [[maybe_unused]] int64_t size,
                             [[maybe_unused]] const std::string& master_addr,
                             [[maybe_unused]] std::chrono::milliseconds timeout) {
#if defined(DS_HAVE_GLOO)
  auto opts = c10d::ProcessGroupGloo::Options::create();
  opts->timeout = timeout;
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname) {
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
  } else if (is_loopback(master_addr)) {
    // Every rank is on this host: talk over loopback, whatever the host name resolves to.
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  } else {
    opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, static_cast<int>(rank), static_cast<int>(size), opts);
#else
  throw CommError("this build of deepspeed-cpp has no Gloo backend (its LibTorch ships no Gloo "
                  "headers); use the nccl backend on GPUs");
#endif
}

compat::BackendPtr make_nccl([[maybe_unused]] const c10::intrusive_ptr<c10d::Store>& store,
                             [[maybe_unused]] int64_t rank, [[maybe_unused]] int64_t size,
                             [[maybe_unused]] std::chrono::milliseconds timeout) {
#if defined(DS_HAVE_NCCL)
  auto opts = c10d::ProcessGroupNCCL::Options::create();
  opts->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, static_cast<int>(rank), static_cast<int>(size), opts);
#else
  throw CommError("this build of deepspeed-cpp has no NCCL backend (built without CUDA/NCCL)");
#endif
}

}  // namespace

compat::BackendPtr make_backend(const std::string& backend_name, const c10::intrusive_ptr<c10d::Store>& store,
                                int64_t rank, int64_t size, const std::string& master_addr,
                                std::chrono::milliseconds timeout) {
  if (backend_name == "nccl") return make_nccl(store, rank, size, timeout);
  return make_gloo(store, rank, size, master_addr, timeout);
}

}  // namespace deepspeed::comm
