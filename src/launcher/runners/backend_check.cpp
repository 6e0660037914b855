// Whether a multi-node backend is installed, checked as DeepSpeed's backend_exists() does.
#include <fmt/format.h>

#include "deepspeed/errors.h"
#include "launcher/runners/multinode_runner.h"

namespace deepspeed::launcher {

std::string backend_probe_program(const std::string& launcher) {
  if (launcher == "openmpi") return "ompi_info";
  if (launcher == "mpich" || launcher == "impi") return "mpirun";
  if (launcher == "mvapich") return "mpiname";
  if (launcher == "slurm") return "sinfo";
  return launcher;  // pdsh, ssh
}

void check_backend_installed(const std::string& launcher, const SystemProbe& system) {
  const std::string probe = backend_probe_program(launcher);
  if (!system.have_program(probe)) {
    const char* why = launcher == "mvapich" ? "; mvapich is not installed properly" : "";
    throw LaunchError(fmt::format("--launcher={}: launcher '{}' not installed ({} not found in PATH{}).", launcher,
                                  launcher, probe, why));
  }
  if (launcher != "mvapich") return;
  // DeepSpeed's MVAPICHRunner only runs on MVAPICH2-GDR (the CUDA-aware build); `mpiname`
  // names the MPI library, e.g. "MVAPICH2-GDR 2.3.7 ...".
  std::string output;
  const int rc = system.run_program({"mpiname"}, output);
  const auto b = output.find_first_not_of(" \t\r\n");
  const std::string stripped =
      b == std::string::npos ? "" : output.substr(b, output.find_last_not_of(" \t\r\n") - b + 1);
  if (rc != 0)
    throw LaunchError(
        fmt::format("--launcher=mvapich: launcher 'mvapich' not installed (`mpiname` failed with exit code {}).", rc));
  if (stripped.find("MVAPICH2-GDR") == std::string::npos)
    throw LaunchError(fmt::format("--launcher=mvapich: launcher 'mvapich' not installed: expected MVAPICH2-GDR as "
                                  "return for mpiname but received '{}'.", stripped));
}

}  // namespace deepspeed::launcher
