// What the runner carries to other nodes' environments (docs/launcher.md, "Environment
// propagation"): variables whose names
// start with one of DeepSpeed's exported prefixes (NCCL, PYTHON, UCX, MV2, MLFLOW, the
// AzureML/Nebula list), then the KEY=VALUE lines of ~/.deepspeed_env and ./.deepspeed_env
// (file name from DS_ENV_FILE, which may be an absolute path), later entries overriding
// earlier ones. Values are stripped, as DeepSpeed does; quoting is left to each runner
// (shell_quote for pdsh/ssh command strings, raw for argv-based mpirun/srun).
//
// Differences from DeepSpeed: blank lines and lines starting with '#' in .deepspeed_env are
// skipped (DeepSpeed fails on them); any other line without '=' is an error naming the
// file and line.
#pragma once

#include <istream>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace deepspeed::launcher {

// Ordered KEY=VALUE list; set() replaces an existing key in place.
class EnvList {
 public:
  void set(const std::string& key, const std::string& value);
  const std::string* find(const std::string& key) const;
  const std::vector<std::pair<std::string, std::string>>& items() const { return items_; }
  bool empty() const { return items_.empty(); }

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

using Environ = std::map<std::string, std::string>;

// Parses one .deepspeed_env file (`path` for messages); appends to `out`.
void parse_deepspeed_env(std::istream& in, const std::string& path, EnvList& out);

// Reads <home>/<name> then <cwd>/<name> where they exist (regular files), later lines
// overriding earlier ones; name = DS_ENV_FILE from `environ`, ".deepspeed_env" when unset.
// Exactly DeepSpeed's runner.py: a relative DS_ENV_FILE (even "dir/file") is looked up in both
// directories, an absolute one is the one file (DeepSpeed reads it twice, to the same
// effect), a set-but-empty one reads nothing. No other file is read by the runner (the
// node launcher reads /dlts-runtime/env/pod.env: pod_env.h).
EnvList read_deepspeed_env_files(const Environ& environ, const std::string& home,
                                 const std::string& cwd);

// The exported variables of `environ` (prefix rules above, AISC_JOB_NAME exclusions), with
// PYTHONPATH prefixed by cwd as DeepSpeed does.
EnvList exported_environment(const Environ& environ, const std::string& cwd);

// The process's environment as a map.
Environ current_environ();

}  // namespace deepspeed::launcher
