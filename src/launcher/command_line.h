// The `deepspeed` command line. One binary, three modes:
//   deepspeed [runner flags] PROGRAM [ARGS...]           the runner (DeepSpeed's runner.py)
//   deepspeed --launch --world_info=B64 --node_rank=N ... PROGRAM [ARGS...]
//                                                        the node launcher (launch.py);
//                                                        what the runner runs on each node
//   deepspeed --mpi_helper=mpich PROGRAM [ARGS...]       sets RANK/LOCAL_RANK from the MPI
//                                                        runtime's variables, then execs
// Everything after PROGRAM is the program's, untouched. Flags DeepSpeed has that
// deepspeed-cpp does not support (--autotuning, --elastic_training, ...) are errors that
// say so. CLI errors are LaunchErrors.
#pragma once

#include <string>
#include <vector>

#include "launcher/environment_exports.h"
#include "launcher/local_launcher.h"
#include "launcher/runner_options.h"

namespace deepspeed::launcher {

enum class Mode { kRunner, kLaunch, kMpiHelper, kHelp };

struct CommandLine {
  Mode mode = Mode::kRunner;
  RunnerOptions runner;        // kRunner
  LocalLaunchOptions launch;   // kLaunch
  std::string mpi_flavour;     // kMpiHelper
  std::vector<std::string> program_argv;  // kMpiHelper: PROGRAM ARGS
  std::string help_text;       // kHelp
};

CommandLine parse_command_line(const std::vector<std::string>& args);  // args without argv[0]

// --mpi_helper: the environment changes for one MPI-started rank (LaunchError when the
// runtime's variables are missing or disagree).
std::vector<std::pair<std::string, std::string>> mpi_rank_environment(const std::string& flavour,
                                                                      const Environ& environ);

// Sets mpi_rank_environment() and execs the program; returns only by throwing.
[[noreturn]] void run_mpi_helper(const CommandLine& cl);

}  // namespace deepspeed::launcher
