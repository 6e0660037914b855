// deepspeed: start a program once per slot, on this machine or on the hosts of a hostfile.
// See src/launcher/command_line.h for the three modes and docs/launcher.md for the flags.
#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "deepspeed/errors.h"
#include "launcher/command_line.h"
#include "launcher/launch_plan.h"
#include "launcher/local_launcher.h"
#include "launcher/system_probe.h"

namespace dl = deepspeed::launcher;

namespace {

// docs/launcher.md where it is: installed beside this program (<prefix>/bin/deepspeed,
// <prefix>/<DS_INSTALL_DOCDIR>/docs/launcher.md), or in the sources it was built from.
std::string launcher_guide() {
  std::error_code ec;
  std::vector<std::filesystem::path> candidates;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back(exe.parent_path().parent_path() / DS_INSTALL_DOCDIR / "docs" / "launcher.md");
  candidates.push_back(std::filesystem::path(DS_SOURCE_DIR) / "docs" / "launcher.md");
  for (const auto& path : candidates) {
    if (std::filesystem::exists(path, ec)) return path.lexically_normal().string();
  }
  return "docs/launcher.md in deepspeed-cpp's sources";
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::vector<std::string> args(argv + 1, argv + argc);
    const dl::CommandLine cl = dl::parse_command_line(args);
    switch (cl.mode) {
      case dl::Mode::kHelp:
        std::cout << cl.help_text << "The launcher's guide: " << launcher_guide() << "\n";
        return 0;
      case dl::Mode::kLaunch:
        return dl::run_local_launch(cl.launch);
      case dl::Mode::kMpiHelper:
        dl::run_mpi_helper(cl);
      case dl::Mode::kRunner:
        break;
    }
    dl::RealSystemProbe system;
    const dl::LaunchPlan plan = dl::plan_launch(cl.runner, system);
    if (cl.runner.dry_run) {
      std::cout << dl::plan_to_json(plan, cl.runner, system).dump(2) << std::endl;
      return 0;
    }
    return dl::execute_plan(plan, cl.runner);
  } catch (const deepspeed::Error& e) {
    std::cerr << "deepspeed: error: " << e.what() << std::endl;
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "deepspeed: error: " << e.what() << std::endl;
    return 1;
  }
}
