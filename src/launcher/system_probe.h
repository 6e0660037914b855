// The runner's view of the machine and the network, behind an interface so tests can
// replace it (c10d-style seam): environment, directories, GPUs, cores and NUMA nodes,
// installed programs (and their output), the two ssh queries DeepSpeed's runner makes, and a
// fresh run id for each job.
#pragma once

#include <string>
#include <vector>

#include "launcher/environment_exports.h"
#include "launcher/numa_binding.h"

namespace deepspeed::launcher {

class SystemProbe {
 public:
  virtual ~SystemProbe() = default;
  virtual Environ environ() const = 0;
  virtual std::string cwd() const = 0;
  virtual std::string home() const = 0;
  // Absolute path of the deepspeed binary (what other nodes run in --launch mode).
  virtual std::string self_exe() const = 0;
  virtual int runner_pid() const = 0;
  // GPUs of this machine: /dev/nvidia[0-9]* entries, else lines of `nvidia-smi -L`.
  virtual int local_gpu_count() const = 0;
  virtual bool have_program(const std::string& name) const = 0;
  // Runs argv (stdin /dev/null, stderr discarded): its exit code (-1: could not run) and stdout.
  virtual int run_program(const std::vector<std::string>& argv, std::string& output) const = 0;
  // `numactl --hardware`'s nodes; empty without numactl.
  virtual NumaTopology numa_topology() const = 0;
  // The cores --bind_cores_to_rank shares out without --bind_core_list (default_core_list()).
  virtual std::vector<int> default_cores() const = 0;
  // `ssh -o PasswordAuthentication=no [-p port] <ssh_args> host hostname` succeeds.
  virtual bool ssh_reachable(const std::string& host, int port, const std::vector<std::string>& ssh_args) const = 0;
  // First address of `ssh [-p port] <ssh_args> host hostname -I`; empty on failure.
  virtual std::string ssh_first_address(const std::string& host, int port, const std::vector<std::string>& ssh_args) const = 0;
  // A new job identity for the rendezvous (DEEPSPEED_RUN_ID): different for every call, in
  // every process, on every machine (16 random hex digits).
  virtual std::string new_run_id() const = 0;
};

class RealSystemProbe : public SystemProbe {
 public:
  Environ environ() const override;
  std::string cwd() const override;
  std::string home() const override;
  std::string self_exe() const override;
  int runner_pid() const override;
  int local_gpu_count() const override;
  bool have_program(const std::string& name) const override;
  int run_program(const std::vector<std::string>& argv, std::string& output) const override;
  NumaTopology numa_topology() const override;
  std::vector<int> default_cores() const override;
  bool ssh_reachable(const std::string& host, int port, const std::vector<std::string>& ssh_args) const override;
  std::string ssh_first_address(const std::string& host, int port, const std::vector<std::string>& ssh_args) const override;
  std::string new_run_id() const override;
};

// Runs argv (PATH lookup), stdin from /dev/null; returns the exit code (-1 if it could not
// run) and fills `output` with its stdout, and its stderr too when include_stderr (else
// stderr is discarded).
int run_and_capture(const std::vector<std::string>& argv, std::string& output, bool include_stderr = false);

}  // namespace deepspeed::launcher
