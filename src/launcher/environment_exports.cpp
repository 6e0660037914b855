#include "launcher/environment_exports.h"

#include <fmt/format.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <string_view>

#include "deepspeed/errors.h"

extern char** environ;

namespace deepspeed::launcher {
namespace {

// DeepSpeed's EXPORT_ENVS plus the CUDA accelerator's export_envs() ("NCCL"). Prefixes.
constexpr std::array<std::string_view, 24> kExportPrefixes = {
    "MLFLOW", "PYTHON", "MV2", "UCX", "NCCL",
    "DLTS_JOB_ID", "DLTS_NUM_WORKER", "NEBULA_PERSISTENT_STORAGE_PATH",
    "NEBULA_PERSISTENT_TIME_INTERVAL", "AML_RUN_ID", "AZUREML_RUN_TOKEN",
    "AZUREML_WORKSPACE_SCOPE", "AZUREML_EXPERIMENT_SCOPE", "AZUREML_RUN_HISTORY_SERVICE_ENDPOINT",
    "AZUREML_RUN_ID", "NEBULA_MEMORY_BUFFER_SIZE", "AZUREML_PARAMETER_ITPJOB_NAME",
    "FC_TASKROLE_NAME", "FC_TASK_INDEX", "MASTER_HOST", "LOCAL_HOST",
    "AZUREML_BLOB_ACCOUNT_NAME", "AZUREML_BLOB_ACCOUNT_KEY", "DS_"};
// Note: "DS_" is ours, not DeepSpeed's: deepspeed-cpp's own knobs (DS_ACCELERATOR, ...)
// should reach remote ranks like NCCL_* do.

std::string strip(std::string_view s) {
  const char* ws = " \t\r\n\f\v";
  auto b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(ws);
  return std::string(s.substr(b, e - b + 1));
}

}  // namespace

void EnvList::set(const std::string& key, const std::string& value) {
  for (auto& kv : items_) {
    if (kv.first == key) {
      kv.second = value;
      return;
    }
  }
  items_.emplace_back(key, value);
}

const std::string* EnvList::find(const std::string& key) const {
  for (const auto& kv : items_)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

void parse_deepspeed_env(std::istream& in, const std::string& path, EnvList& out) {
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    const std::string stripped = strip(line);
    if (stripped.empty() || stripped[0] == '#') continue;
    auto eq = line.find('=');
    if (eq == std::string::npos) {
      throw LaunchError(fmt::format("{}:{}: expected KEY=VALUE, got '{}'", path, line_no, stripped));
    }
    std::string key = strip(std::string_view(line).substr(0, eq));
    if (key.empty()) throw LaunchError(fmt::format("{}:{}: empty variable name", path, line_no));
    out.set(key, strip(std::string_view(line).substr(eq + 1)));
  }
}

EnvList read_deepspeed_env_files(const Environ& environ, const std::string& home,
                                 const std::string& cwd) {
  namespace fs = std::filesystem;
  auto it = environ.find("DS_ENV_FILE");
  const std::string name = it != environ.end() ? it->second : ".deepspeed_env";
  // DeepSpeed joins each directory with the name: an empty DS_ENV_FILE names the
  // directories themselves, which are not files, so nothing is read.
  if (name.empty()) return {};
  std::vector<fs::path> paths;
  if (fs::path(name).is_absolute()) {
    paths.push_back(name);
  } else {
    if (!home.empty()) paths.push_back(fs::path(home) / name);
    paths.push_back(fs::path(cwd) / name);
  }
  EnvList out;
  std::error_code ec;
  for (size_t i = 0; i < paths.size(); ++i) {
    // ~ and . may be the same directory; read it once.
    if (i > 0 && fs::equivalent(paths[i], paths[0], ec)) continue;
    if (!fs::is_regular_file(paths[i], ec)) continue;
    std::ifstream in(paths[i]);
    if (!in) throw LaunchError(fmt::format("{}: cannot read", paths[i].string()));
    parse_deepspeed_env(in, paths[i].string(), out);
  }
  return out;
}

EnvList exported_environment(const Environ& environ, const std::string& cwd) {
  const bool aisc = environ.count("AISC_JOB_NAME") > 0;
  EnvList out;
  for (const auto& [key, value] : environ) {
    bool exported = false;
    for (auto prefix : kExportPrefixes) exported = exported || key.rfind(prefix, 0) == 0;
    if (!exported) continue;
    if (aisc && (key == "NCCL_IB_HCA" || key == "UCX_NET_DEVICES")) continue;
    if (key == "DS_ENV_FILE") continue;  // a path on this machine, meaningless there
    out.set(key, strip(value));
  }
  // DeepSpeed makes the launch directory importable on every node.
  auto py = environ.find("PYTHONPATH");
  out.set("PYTHONPATH", py == environ.end() ? cwd : cwd + ":" + strip(py->second));
  return out;
}

Environ current_environ() {
  Environ out;
  for (char** e = ::environ; e && *e; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    out.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return out;
}

}  // namespace deepspeed::launcher
