// Faults a real job meets, each ending in a clear error, a non-zero exit and no lost work:
// a rank killed with SIGKILL mid-step or in the middle of a save, SIGINT to the launcher, a
// disk that fills up during a save, a rank that stops answering, a NaN/inf loss. Jobs run
// as users run them, through build/bin/deepspeed (2 CPU ranks over Gloo on loopback), or,
// where each rank's own exit matters, through the multi-process harness. docs/reliability.md
// lists what each fault gets.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "multiprocess.h"
#include "gloo_ranks_test.h"
#include "processes.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using deepspeed::testing::alive;
using deepspeed::testing::free_port;
using deepspeed::testing::live_members_of_groups;
using deepspeed::testing::RankResult;
using deepspeed::testing::read_file;
using deepspeed::testing::run_ranks;
using deepspeed::testing::RunOptions;
using deepspeed::testing::spawn_background;
using deepspeed::testing::TempDir;
using deepspeed::testing::wait_for_exit;
using deepspeed::testing::wait_for_pid_files;
using deepspeed::testing::wait_until;
using deepspeed::testing::write_file;

namespace {

const std::string kLauncher = DS_BINARY_DIR "/bin/deepspeed";
const std::string kCheckpointWorker = DS_BINARY_DIR "/bin/ds_test_checkpoint_worker";
const std::string kTrainWorker = DS_BINARY_DIR "/bin/ds_test_train_worker";
// Gloo even on a GPU machine: these tests are about processes, not devices.
const std::map<std::string, std::string> kCpuRanks = {{"DS_ACCELERATOR", "cpu"}, {"OMP_NUM_THREADS", "1"}};
// Generous bounds for a loaded 2-core machine; the waits poll, so a fast run stays fast.
constexpr auto kStartup = 45s;
constexpr auto kExitAfterFault = 30s;  // the promise under test: a job ends within this

std::string config(const std::string& extra = "") {
  return R"({"train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 1, "steps_per_print": 100,
             "optimizer": {"type": "AdamW", "params": {"lr": 0.01}})" +
         extra + "}";
}

// The global step in <ckpt>/latest ("global_step6" -> 6), or -1 when there is none yet.
int64_t latest_step(const std::string& ckpt_dir) {
  const std::string tag = read_file(ckpt_dir + "/latest");
  if (tag.rfind("global_step", 0) != 0) return -1;
  return std::stoll(tag.substr(11));
}

// A job started through the launcher, its output in a file.
struct LauncherJob {
  pid_t pid = -1;
  std::string output_file;
  std::string output() const { return read_file(output_file); }
};

LauncherJob launch(TempDir& dir, const std::string& worker, const std::vector<std::string>& worker_args,
                   std::map<std::string, std::string> env = {}) {
  const std::string cfg = dir.file("ds_config.json");
  if (!fs::exists(cfg)) write_file(cfg, config());
  std::vector<std::string> argv = {kLauncher, "--num_gpus", "2", "--master_port", std::to_string(free_port()),
                                   "--term_grace", "5", worker, "--deepspeed_config", cfg};
  argv.insert(argv.end(), worker_args.begin(), worker_args.end());
  env.insert(kCpuRanks.begin(), kCpuRanks.end());
  LauncherJob job;
  job.output_file = dir.file("launcher.log");
  job.pid = spawn_background(argv, job.output_file, env);
  return job;
}

// A checkpoint-worker job through the launcher whose ranks write their pids to <dir>/pids,
// once both ranks have started (`ranks` holds fewer than 2 pids if they did not in time).
struct StartedJob {
  LauncherJob job;
  std::vector<pid_t> ranks;
};
StartedJob launch_and_wait_for_ranks(TempDir& dir, std::vector<std::string> worker_args,
                                     std::map<std::string, std::string> env = {}) {
  const std::string pids = dir.file("pids");
  fs::create_directory(pids);
  worker_args.insert(worker_args.end(), {"--pid_dir", pids});
  StartedJob started;
  started.job = launch(dir, kCheckpointWorker, worker_args, std::move(env));
  started.ranks = wait_for_pid_files(pids, 2, kStartup);
  return started;
}

// `world_size` ranks of `worker` with <dir>/ds_config.json, through the multi-process harness
// (no launcher: each rank's own exit code is seen), on the CPU; `env` adds or overrides.
std::vector<RankResult> run_worker(TempDir& dir, const std::string& worker, int world_size,
                                   std::vector<std::string> args, const std::map<std::string, std::string>& env = {}) {
  RunOptions options;
  options.env = kCpuRanks;
  for (const auto& [key, value] : env) options.env[key] = value;
  args.insert(args.begin(), {"--deepspeed_config", dir.file("ds_config.json")});
  return run_ranks(world_size, worker, args, options);
}

// Waits for the launcher to exit; on a hang kills its whole job so the test ends.
int expect_exit_within(const LauncherJob& job, std::chrono::seconds limit, const std::vector<pid_t>& ranks = {}) {
  const auto code = wait_for_exit(job.pid, limit);
  if (!code) {
    ADD_FAILURE() << "the launcher still runs " << limit.count() << " s after the fault:\n" << job.output();
    ::kill(job.pid, SIGKILL);
    for (pid_t r : ranks) ::kill(r, SIGKILL);
    wait_for_exit(job.pid, 10s);
    return -1;
  }
  return *code;
}

// No rank process, and nothing a rank started (each rank has its own process group), is left.
void expect_nothing_left(const std::vector<pid_t>& ranks) {
  const bool gone = wait_until(
      [&] {
        for (pid_t r : ranks) {
          if (alive(r)) return false;
        }
        return live_members_of_groups(ranks).empty();
      },
      5s);
  EXPECT_TRUE(gone) << live_members_of_groups(ranks).size() << " processes of the job's ranks outlived it";
}

std::string all_output(const std::vector<RankResult>& ranks) {
  std::string s;
  for (const auto& r : ranks) s += "--- rank " + std::to_string(r.rank) + " (exit " + std::to_string(r.exit_code) + ")\n" + r.output;
  return s;
}

// Resumes from the latest checkpoint of `ckpt` on 2 ranks for two more steps; every rank
// must load the checkpoint `latest` names and finish.
void expect_resumes_from(TempDir& dir, const std::string& ckpt, int64_t step) {
  const auto ranks =
      run_worker(dir, kCheckpointWorker, 2, {"--save_dir", ckpt, "--load", "--steps", std::to_string(step + 2)});
  const std::string expected = "global_step" + std::to_string(step) + "/mp_rank_00_model_states.pt step " +
                               std::to_string(step) + " global_steps " + std::to_string(step);
  for (const auto& r : ranks) {
    EXPECT_EQ(r.exit_code, 0) << all_output(ranks);
    EXPECT_NE(r.output.find(expected), std::string::npos) << "rank " << r.rank << " did not resume:\n" << r.output;
  }
}

}  // namespace

using FaultKill = deepspeed::testing::GlooRanksTest;
using FaultSignal = deepspeed::testing::GlooRanksTest;
using FaultDisk = deepspeed::testing::GlooRanksTest;
using FaultHang = deepspeed::testing::GlooRanksTest;
using FaultNan = deepspeed::testing::GlooRanksTest;
using FaultPort = deepspeed::testing::GlooRanksTest;

// kill -9 of one rank in the middle of training: the launcher stops the other rank and
// exits non-zero at once, nothing is left running, and the last complete checkpoint resumes.
TEST_F(FaultKill, SigkillOfARankMidStepEndsTheJobAndTrainingResumes) {
  TempDir dir;
  const std::string ckpt = dir.file("ckpt");
  const auto [job, ranks] =
      launch_and_wait_for_ranks(dir, {"--steps", "100000", "--save_dir", ckpt, "--save_every", "3", "--step_delay_ms", "20"});
  ASSERT_EQ(ranks.size(), 2u) << job.output();
  // Two checkpoints written, training under way: kill rank 1 between two steps' work.
  ASSERT_TRUE(wait_until([&] { return latest_step(ckpt) >= 6; }, kStartup)) << job.output();
  ASSERT_EQ(::kill(ranks[1], SIGKILL), 0);
  const auto t0 = std::chrono::steady_clock::now();
  const int code = expect_exit_within(job, kExitAfterFault, ranks);
  EXPECT_NE(code, 0) << job.output();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, kExitAfterFault);
  EXPECT_NE(job.output().find("exits with return code = "), std::string::npos) << job.output();
  expect_nothing_left(ranks);
  // Whatever `latest` names now is complete (a save interrupted by the kill never moves it).
  expect_resumes_from(dir, ckpt, latest_step(ckpt));
}

// kill -9 of a rank while it writes its checkpoint shard (ZeRO-1: every rank writes one): the
// job ends, `latest` still names the previous checkpoint, which loads.
TEST_F(FaultKill, SigkillDuringSaveKeepsThePreviousCheckpoint) {
  TempDir dir;
  write_file(dir.file("ds_config.json"), config(R"(, "zero_optimization": {"stage": 1})"));
  const std::string ckpt = dir.file("ckpt");
  const auto [job, ranks] = launch_and_wait_for_ranks(dir, {"--steps", "100", "--save_dir", ckpt, "--save_every", "3"},
                                                      {{"DS_TEST_HANG_IN_SAVE", "1:zero_pp_rank_1_mp_rank_00_optim_states.pt:6"}});
  ASSERT_EQ(ranks.size(), 2u) << job.output();
  ASSERT_TRUE(wait_until([&] { return job.output().find("hanging while writing") != std::string::npos; }, kStartup))
      << job.output();
  ASSERT_EQ(::kill(ranks[1], SIGKILL), 0);
  EXPECT_NE(expect_exit_within(job, kExitAfterFault, ranks), 0) << job.output();
  expect_nothing_left(ranks);
  EXPECT_EQ(read_file(ckpt + "/latest"), "global_step3");
  EXPECT_FALSE(fs::exists(ckpt + "/global_step6"));
  expect_resumes_from(dir, ckpt, 3);
}

// Ctrl-C: SIGINT to the launcher stops every rank (exit 1, as DeepSpeed's launcher), leaves
// no process behind, and the checkpoints written so far load.
TEST_F(FaultSignal, SigintToTheLauncherStopsCleanly) {
  TempDir dir;
  const std::string ckpt = dir.file("ckpt");
  const auto [job, ranks] =
      launch_and_wait_for_ranks(dir, {"--steps", "100000", "--save_dir", ckpt, "--save_every", "3", "--step_delay_ms", "20"});
  ASSERT_EQ(ranks.size(), 2u) << job.output();
  ASSERT_TRUE(wait_until([&] { return latest_step(ckpt) >= 3; }, kStartup)) << job.output();
  ASSERT_EQ(::kill(job.pid, SIGINT), 0);
  EXPECT_EQ(expect_exit_within(job, kExitAfterFault, ranks), 1) << job.output();
  EXPECT_NE(job.output().find("Main process received SIGINT, exiting"), std::string::npos) << job.output();
  expect_nothing_left(ranks);
  expect_resumes_from(dir, ckpt, latest_step(ckpt));
}

// A disk that fills up during a save (RLIMIT_FSIZE from step 6; SIGXFSZ ignored, as Python
// does, so writes fail with EFBIG as they would with ENOSPC): a clear error naming the file,
// every rank exits, and the previous checkpoint is still `latest` and loads.
TEST_F(FaultDisk, FullDiskDuringSaveKeepsThePreviousCheckpoint) {
  TempDir dir;
  const std::string ckpt = dir.file("ckpt");
  auto job = launch(dir, kCheckpointWorker,
                    {"--steps", "9", "--save_dir", ckpt, "--save_every", "3", "--fsize_limit", "512",
                     "--fsize_limit_at_step", "6"});
  EXPECT_EQ(expect_exit_within(job, kStartup + kExitAfterFault), 1) << job.output();
  const std::string out = job.output();
  EXPECT_NE(out.find("mp_rank_00_model_states.pt.tmp: File too large"), std::string::npos) << out;
  EXPECT_NE(out.find("checkpoint: rank 0 failed while writing its checkpoint files"), std::string::npos) << out;
  EXPECT_EQ(read_file(ckpt + "/latest"), "global_step3");
  EXPECT_FALSE(fs::exists(ckpt + "/global_step6"));
  expect_resumes_from(dir, ckpt, 3);
}

// A disk that fills up exactly at `latest` (rank 0 wrote every checkpoint file of step 6, but
// not `latest.tmp`): the save fails as a whole on every rank, with messages that say so (none
// calls the new checkpoint damaged), its folder is removed to free the space, and `latest`
// still names step 3, which resumes.
TEST_F(FaultDisk, FullDiskAtLatestFailsTheSaveAsAWhole) {
  TempDir dir;
  const std::string ckpt = dir.file("ckpt");
  auto job = launch(dir, kCheckpointWorker, {"--steps", "9", "--save_dir", ckpt, "--save_every", "3"},
                    {{"DS_TEST_FULL_DISK_IN_SAVE", "0:latest:6"}});
  EXPECT_EQ(expect_exit_within(job, kStartup + kExitAfterFault), 1) << job.output();
  const std::string out = job.output();
  EXPECT_NE(out.find("[rank0]: error: save_checkpoint: " + ckpt + "/latest could not be updated to name "
                     "'global_step6' (checkpoint: cannot write " + ckpt + "/latest.tmp: No space left on device); "
                     "the save failed as a whole: " + ckpt + "/global_step6, complete but named by nothing, was "
                     "removed to free its space, and " + ckpt + "/latest still names 'global_step3'"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("[rank1]: error: checkpoint: rank 0 failed while committing the checkpoint " + ckpt +
                     "/global_step6 (its own error says why); the save failed as a whole: `latest` and the "
                     "checkpoint it names are unchanged"),
            std::string::npos)
      << out;
  EXPECT_EQ(read_file(ckpt + "/latest"), "global_step3");
  EXPECT_FALSE(fs::exists(ckpt + "/global_step6"));
  EXPECT_FALSE(fs::exists(ckpt + "/global_step6.partial"));
  expect_resumes_from(dir, ckpt, 3);
}

// A rank that stops answering (asleep before step 3): after the collective timeout the
// others fail with an error naming the collective and the rank, and the job ends.
TEST_F(FaultHang, SilentRankBecomesATimeoutErrorNamingTheCollective) {
  TempDir dir;
  // 8 s, not less: the timeout also bounds the rendezvous, which ranks that start a few
  // seconds apart on a loaded machine must still complete.
  auto job = launch(dir, kTrainWorker,
                    {"--steps", "10", "--comm_timeout_ms", "8000", "--fault", "hang", "--fault_rank", "1",
                     "--fault_at_step", "3"});
  const int code = expect_exit_within(job, kStartup + kExitAfterFault);
  EXPECT_NE(code, 0);
  const std::string out = job.output();
  EXPECT_NE(out.find("hanging before global step 3"), std::string::npos) << out;
  EXPECT_NE(out.find("all_reduce on rank 0 of 2 timed out after 8 s"), std::string::npos) << out;
}

// A rank that never arrives (here: WORLD_SIZE says 2, one process starts): the rendezvous
// fails after the timeout with an error that says where it waited.
TEST_F(FaultHang, MissingRankFailsTheRendezvousAfterTheTimeout) {
  TempDir dir;
  write_file(dir.file("ds_config.json"), config());
  const auto ranks = run_worker(dir, kTrainWorker, 1, {"--comm_timeout_ms", "2000"}, {{"WORLD_SIZE", "2"}});
  EXPECT_EQ(ranks[0].exit_code, 1) << ranks[0].output;
  const std::string& out = ranks[0].output;
  EXPECT_NE(out.find("error: rank 0: the rendezvous at 127.0.0.1:"), std::string::npos) << out;
  EXPECT_NE(out.find("did not complete within 2 s: not all 2 ranks (WORLD_SIZE) joined"), std::string::npos) << out;
  EXPECT_EQ(out.find("frame #0"), std::string::npos) << "LibTorch's C++ backtrace reached the user:\n" << out;
}

// Two jobs started together with the same --master_port, 10 times: one rank 0 hosts the
// store, the other cannot bind the port. The launcher gives each job its own run id
// (DEEPSPEED_RUN_ID), so each job's ranks meet only each other, although the loser's rank 1
// reaches the winner's store: the winner always trains to the end, and the loser fails with
// an error naming the port. The winner holds the port (--hold_until) until the loser has
// ended, so that on a loaded machine it cannot finish before the loser even starts.
TEST_F(FaultPort, TwoJobsOnOnePortNeverPair) {
  TempDir dir;
  write_file(dir.file("ds_config.json"), config());
  for (int trial = 0; trial < 10; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    const std::string port = std::to_string(free_port());
    const std::string loser_ended = dir.file("trial" + std::to_string(trial) + ".loser_ended");
    LauncherJob jobs[2];
    for (int j = 0; j < 2; ++j) {
      jobs[j].output_file = dir.file("trial" + std::to_string(trial) + "_job" + std::to_string(j) + ".log");
      jobs[j].pid = spawn_background({kLauncher, "--num_gpus", "2", "--master_port", port, "--term_grace", "5",
                                      kTrainWorker, "--deepspeed_config", dir.file("ds_config.json"), "--steps", "2",
                                      "--samples", "16", "--comm_timeout_ms", "30000", "--hold_until", loser_ended},
                                     jobs[j].output_file, kCpuRanks);
    }
    // The first job to end is the loser (the winner waits for loser_ended).
    int loser = -1, loser_code = -1;
    wait_until(
        [&] {
          for (int j = 0; j < 2 && loser < 0; ++j) {
            if (const auto code = wait_for_exit(jobs[j].pid, 0ms)) {
              loser = j;
              loser_code = *code;
            }
          }
          return loser >= 0;
        },
        kStartup + kExitAfterFault);
    write_file(loser_ended, "");
    if (loser < 0) {
      ADD_FAILURE() << "neither job ended:\n--- job 0\n" << jobs[0].output() << "--- job 1\n" << jobs[1].output();
      for (const auto& job : jobs) ::kill(job.pid, SIGKILL);
      for (const auto& job : jobs) wait_for_exit(job.pid, 10s);
      continue;
    }
    const LauncherJob& winner = jobs[1 - loser];
    EXPECT_EQ(expect_exit_within(winner, kStartup + kExitAfterFault), 0) << winner.output();
    const std::string won = winner.output(), lost = jobs[loser].output();
    EXPECT_NE(won.find("[rank0]: parameters finite"), std::string::npos) << won;
    EXPECT_NE(won.find("[rank1]: parameters finite"), std::string::npos) << won;
    EXPECT_NE(loser_code, 0) << lost;
    EXPECT_NE(lost.find("[rank0]: error: rank 0: cannot host the rendezvous store on port " + port + ": port " + port +
                        " is already in use"),
              std::string::npos)
        << lost;
  }
}

// Without a launcher that stops the job (mpirun, srun, the harness), a rank that dies still
// turns into an error on the others, naming the collective, at once rather than at the timeout.
TEST_F(FaultKill, DeadPeerIsAnErrorOnTheOthersWithoutTheLauncher) {
  TempDir dir;
  write_file(dir.file("ds_config.json"), config());
  const auto t0 = std::chrono::steady_clock::now();
  const auto ranks = run_worker(dir, kTrainWorker, 2,
                                {"--steps", "10", "--fault", "die", "--fault_rank", "1", "--fault_at_step", "3"});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 60s);
  EXPECT_EQ(ranks[1].exit_code, 128 + SIGKILL) << all_output(ranks);
  EXPECT_EQ(ranks[0].exit_code, 1) << all_output(ranks);
  EXPECT_NE(ranks[0].output.find("all_reduce on rank 0 of 2 failed: another rank's connection closed"),
            std::string::npos)
      << ranks[0].output;
}

// NaN in the loss of one rank, fp32: by default every rank stops with an error naming the
// step and whose loss it was; nothing was updated.
TEST_F(FaultNan, NanLossInFp32IsAnErrorOnEveryRank) {
  TempDir dir;
  write_file(dir.file("ds_config.json"), config());
  const auto ranks = run_worker(dir, kTrainWorker, 2, {"--steps", "10", "--bad_loss_at", "4", "--bad_loss_rank", "1"});
  for (const auto& r : ranks) {
    EXPECT_EQ(r.exit_code, 1) << all_output(ranks);
    EXPECT_NE(r.output.find("error: global step 5: the gradients hold NaN or inf"), std::string::npos) << r.output;
  }
  EXPECT_NE(ranks[1].output.find("rank 1's loss was nan at micro step 4"), std::string::npos) << ranks[1].output;
  EXPECT_NE(ranks[0].output.find("rank 0's losses in this step were finite"), std::string::npos) << ranks[0].output;
}

// "nonfinite_gradients": "skip" (here with ZeRO-1 and an inf loss on every rank): the step is
// skipped and counted, training goes on, the weights stay finite.
TEST_F(FaultNan, InfLossIsSkippedWhenConfigured) {
  TempDir dir;
  write_file(dir.file("ds_config.json"),
             config(R"(, "nonfinite_gradients": "skip", "zero_optimization": {"stage": 1})"));
  const auto ranks = run_worker(dir, kTrainWorker, 2,
                                {"--steps", "6", "--bad_loss_at", "2", "--bad_loss_value", "inf", "--bad_loss_rank", "-1"});
  for (const auto& r : ranks) {
    EXPECT_EQ(r.exit_code, 0) << all_output(ranks);
    EXPECT_NE(r.output.find("skipped 1 "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("parameters finite"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("global step 3: the gradients hold NaN or inf (rank " + std::to_string(r.rank) +
                            "'s loss was inf at micro step 2); skipping this step"),
              std::string::npos)
        << r.output;
  }
}

// "apply" is DeepSpeed's fp32 stage-0 behaviour: the update is applied and the weights are NaN.
TEST_F(FaultNan, ApplyKeepsDeepSpeedsBehaviour) {
  TempDir dir;
  write_file(dir.file("ds_config.json"), config(R"(, "nonfinite_gradients": "apply")"));
  const auto ranks = run_worker(dir, kTrainWorker, 1, {"--steps", "3", "--bad_loss_at", "1"});
  EXPECT_EQ(ranks[0].exit_code, 0) << ranks[0].output;
  EXPECT_NE(ranks[0].output.find("skipped 0 "), std::string::npos) << ranks[0].output;
  EXPECT_NE(ranks[0].output.find("parameters NOT finite"), std::string::npos) << ranks[0].output;
}
