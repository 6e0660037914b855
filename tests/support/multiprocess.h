// Runs one program as N ranks on this machine through the launcher's environment contract
// (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_SIZE, MASTER_ADDR, MASTER_PORT), as DeepSpeed's
// DistributedTest does: a hang becomes a failure that names the rank, never a stuck test.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace deepspeed::testing {

struct RankResult {
  int rank = 0;
  int exit_code = -1;      // -1: killed
  bool timed_out = false;
  std::string output;      // stdout and stderr together
};

struct RunOptions {
  std::chrono::seconds timeout{120};
  // After a rank exits non-zero, how long the others may take before they are killed.
  std::chrono::seconds failure_grace{10};
  std::map<std::string, std::string> env;  // extra variables for every rank
  // Ranks per node as the environment describes it (LOCAL_SIZE, LOCAL_RANK = rank mod it),
  // for code that reads the node layout (ZeRO++'s qgZ); 0: every rank on one node.
  int local_size = 0;
};

std::vector<RankResult> run_ranks(int world_size, const std::string& program,
                                  const std::vector<std::string>& args, const RunOptions& options = {});

// A TCP port on 127.0.0.1 that was free a moment ago, below the kernel's ephemeral range so that
// no other socket is handed it before a rank listens on it.
int free_port();

// A fresh directory under the system's temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Writes text to a file (creating or truncating it).
void write_file(const std::string& path, const std::string& text);
std::string read_file(const std::string& path);

}  // namespace deepspeed::testing
