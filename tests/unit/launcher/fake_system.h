// A SystemProbe for planner tests: no GPUs unless told, programs present as listed (their
// output scripted), ssh answers scripted, cwd/home are temporary directories, one fixed run id.
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "launcher/system_probe.h"
#include "test_util.h"

namespace deepspeed::launcher::testing {

class FakeSystem : public SystemProbe {
 public:
  Environ env;
  TempDir cwd_dir, home_dir;
  int gpus = 0;
  std::set<std::string> programs = {"pdsh", "ssh", "ompi_info", "mpirun", "mpiname", "sinfo"};
  bool reachable = true;
  std::string address = "10.1.2.3";
  mutable int ssh_calls = 0;
  // argv joined by spaces -> {exit code, stdout}; anything else exits 127.
  std::map<std::string, std::pair<int, std::string>> outputs = {{"mpiname", {0, "MVAPICH2-GDR 2.3.7\n"}}};
  NumaTopology numa;
  std::vector<int> cores = {0, 1, 2, 3};
  std::string run_id = "5eed0123456789ab";

  Environ environ() const override { return env; }
  std::string cwd() const override { return cwd_dir.path().string(); }
  std::string home() const override { return home_dir.path().string(); }
  std::string self_exe() const override { return "/opt/ds/bin/deepspeed"; }
  int runner_pid() const override { return 4242; }
  int local_gpu_count() const override { return gpus; }
  bool have_program(const std::string& name) const override { return programs.count(name) > 0; }
  int run_program(const std::vector<std::string>& argv, std::string& output) const override {
    std::string key;
    for (const auto& a : argv) key += (key.empty() ? "" : " ") + a;
    auto it = outputs.find(key);
    if (it == outputs.end()) return 127;
    output = it->second.second;
    return it->second.first;
  }
  NumaTopology numa_topology() const override { return numa; }
  std::vector<int> default_cores() const override { return cores; }
  bool ssh_reachable(const std::string&, int, const std::vector<std::string>&) const override {
    ++ssh_calls;
    return reachable;
  }
  std::string ssh_first_address(const std::string&, int, const std::vector<std::string>&) const override {
    ++ssh_calls;
    return address;
  }
  std::string new_run_id() const override { return run_id; }
};

}  // namespace deepspeed::launcher::testing
