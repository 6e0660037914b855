#include "environment_report.h"

#include <fmt/format.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <set>
#include <sstream>

#include "cpu/common/simd_level.h"
#include "deepspeed/version.h"

#if DEEPSPEED_HAVE_NCCL_BUILD && __has_include(<nccl.h>)
#include <nccl.h>
#endif

namespace deepspeed::report {
namespace {

// stdout of a shell command, "" if it fails (ds_report only reads: nvidia-smi, nvcc).
std::string command_output(const std::string& cmd, int* status = nullptr) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen((cmd + " 2>/dev/null").c_str(), "r"), ::pclose);
  if (!pipe) return {};
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe.get())) > 0) out.append(buf.data(), n);
  int rc = ::pclose(pipe.release());
  if (status) *status = rc;
  return rc == 0 ? out : std::string();
}

std::string trim(std::string s) {
  const char* ws = " \t\r\n";
  s.erase(0, s.find_first_not_of(ws));
  s.erase(s.find_last_not_of(ws) + 1);
  return s;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string or_none(const char* s) { return s && *s ? std::string(s) : std::string("None"); }

// The SIMD level the CPU optimizer ops (cpu_adam, cpu_adagrad, cpu_lion) run at here, asked
// of their own dispatcher so that it cannot disagree with what they do.
std::string cpu_ops_simd() {
  const std::string built = "built: " + ops::join(ops::built_simd_levels());
  try {
    const char* forced = std::getenv(ops::kSimdLevelEnv);
    const bool overridden = forced && *forced;
    return fmt::format("{} ({}{})", ops::to_string(ops::selected_simd_level()),
                       overridden ? fmt::format("{}={}; ", ops::kSimdLevelEnv, forced) : "", built);
  } catch (const ops::SimdError& e) {
    return fmt::format("[FAIL] {} ({})", e.what(), built);
  }
}

std::string self_dir() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("unknown") : p.parent_path().string();
}

}  // namespace

std::vector<std::string> simd_features(const std::string& cpuinfo) {
  static const std::array<const char*, 22> kInteresting = {
      "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
      "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "asimd", "asimdhp", "asimddp", "sve", "sve2", "bf16",
      "i8mm", "sme"};
  std::set<std::string> present;
  std::istringstream lines(cpuinfo);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("flags", 0) != 0 && line.rfind("Features", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') == std::string::npos ? line.size() : line.find(':') + 1));
    std::string w;
    while (words >> w) present.insert(w);
    break;  // every CPU lists the same flags
  }
  std::vector<std::string> out;
  for (const char* f : kInteresting)
    if (present.count(f)) out.push_back(f);
  return out;
}

EnvironmentReport environment_report() {
  EnvironmentReport r;
  auto add = [&](std::string name, std::string value) { r.lines.emplace_back(std::move(name), std::move(value)); };

  add("torch install path", fmt::format("['{}']", DS_REPORT_TORCH_DIR));
  add("torch version", DEEPSPEED_TORCH_VERSION);
  add("deepspeed install path", fmt::format("['{}']", self_dir()));
  add("deepspeed info", fmt::format("{}, {}, {}", DEEPSPEED_VERSION, DEEPSPEED_GIT_HASH, DEEPSPEED_GIT_BRANCH));
  add("deepspeed compiler", DEEPSPEED_CXX_COMPILER);
  {
    std::string abi = DS_REPORT_TORCH_ABI;
    add("C++ ABI (_GLIBCXX_USE_CXX11_ABI)", abi.empty() ? std::to_string(_GLIBCXX_USE_CXX11_ABI) : abi.substr(abi.find('=') + 1));
  }
  const bool cuda = DEEPSPEED_HAVE_CUDA_BUILD;
  add("torch cuda version", cuda ? or_none(DS_REPORT_CUDA_VERSION) : "None");
  add("cudnn version", cuda ? or_none(DS_REPORT_CUDNN_VERSION) : "None");
#if defined(NCCL_MAJOR)
  add("nccl version", fmt::format("{}.{}.{}", NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH));
#else
  add("nccl version", DEEPSPEED_HAVE_NCCL_BUILD ? "built with NCCL (version unknown)" : "None");
#endif
  add("gloo", DEEPSPEED_HAVE_GLOO_BUILD ? "yes" : "no (no Gloo headers at build time: no CPU collectives)");
  {
    const std::string nvcc = command_output("nvcc --version");
    std::smatch m;
    static const std::regex kRelease("release ([0-9.]+)");
    if (std::regex_search(nvcc, m, kRelease)) {
      add("nvcc version", m[1].str());
    } else {
      add("nvcc version", "[FAIL] nvcc missing");
    }
  }
  add("deepspeed wheel compiled w.", fmt::format("torch {}, cuda {}", DEEPSPEED_TORCH_VERSION,
                                                 cuda ? or_none(DS_REPORT_CUDA_VERSION) : "None"));

  // GPUs: name, memory and compute capability from nvidia-smi; the /dev count otherwise.
  {
    const std::string smi = command_output("nvidia-smi --query-gpu=index,name,memory.total,compute_cap --format=csv,noheader");
    std::istringstream lines(smi);
    std::string line;
    while (std::getline(lines, line)) {
      if (trim(line).empty()) continue;
      ++r.gpu_count;
      add(fmt::format("gpu {}", r.gpu_count - 1), trim(line.substr(line.find(',') + 1)));
    }
    if (r.gpu_count == 0) {
      int devs = 0;
      std::error_code ec;
      static const std::regex kDev("nvidia[0-9]+");
      for (const auto& e : std::filesystem::directory_iterator("/dev", ec))
        if (std::regex_match(e.path().filename().string(), kDev)) ++devs;
      r.gpu_count = devs;
      add("gpus", devs ? fmt::format("{} (/dev/nvidia*; nvidia-smi unavailable)", devs) : "none found");
    }
  }

  // CPU.
  {
    const std::string cpuinfo = read_file("/proc/cpuinfo");
    std::smatch m;
    static const std::regex kModel("model name\\s*:\\s*([^\\n]+)");
    add("cpu", std::regex_search(cpuinfo, m, kModel) ? trim(m[1].str()) : "unknown");
    const auto feats = simd_features(cpuinfo);
    std::string joined;
    for (const auto& f : feats) joined += (joined.empty() ? "" : " ") + f;
    add("cpu simd features", joined.empty() ? "none of interest" : joined);
    add("cpu simd", cpu_ops_simd());
    add("cpus online", std::to_string(::sysconf(_SC_NPROCESSORS_ONLN)));
    const char* omp = std::getenv("OMP_NUM_THREADS");
    add("OpenMP threads", omp ? fmt::format("{} (OMP_NUM_THREADS)", omp)
                              : fmt::format("{} (OMP_NUM_THREADS unset: one per online cpu)", ::sysconf(_SC_NPROCESSORS_ONLN)));
  }

  // Shared memory: dataloaders and NCCL need it; DeepSpeed warns below 512 MiB.
  {
    struct statvfs st {};
    if (::statvfs("/dev/shm", &st) == 0) {
      const double bytes = static_cast<double>(st.f_frsize) * static_cast<double>(st.f_blocks);
      add("shared memory (/dev/shm) size", fmt::format("{:.2f} GB", bytes / (1024.0 * 1024.0 * 1024.0)));
      if (bytes < 512.0 * 1024 * 1024)
        r.warnings.push_back("/dev/shm size is less than 512 MiB; this may cause collectives or data loading to fail "
                             "(docker: --shm-size)");
    } else {
      add("shared memory (/dev/shm) size", "unavailable");
    }
  }
  return r;
}

}  // namespace deepspeed::report
