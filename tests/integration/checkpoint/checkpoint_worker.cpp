// One rank of a training run that saves and resumes checkpoints, started by
// checkpoint_test.cpp through the multi-process harness. Its loop is the tutorial's
// "Model checkpointing" loop: load_checkpoint at the start (with --load), client_sd["step"]
// saved with every checkpoint, the data loader resuming where it stopped.
//
// Prints, on every rank: "loss <micro step> <mean loss over ranks, %a>" per micro batch,
// "loaded <path> step <client step> epoch <e> next_batch <b>" after a load,
// "final_lr <%a>" at the end; rank 0 saves parameters and optimizer state to --out.
//
// Fault injection: DS_TEST_CRASH_IN_SAVE="<rank>:<file name>:<global step>" makes that rank
// die (SIGKILL) half-way through writing <file name> during the save at <global step>,
// leaving a torn temporary file, as a power cut or an OOM kill would. It goes through the
// CheckpointStorage seam, so the library itself has no test hooks. DS_TEST_HANG_IN_SAVE (same
// form) makes it stop there instead (half the file written, then asleep), for a test that
// kills it from outside; DS_TEST_FULL_DISK_IN_SAVE (same form) makes that one write fail as
// on a full disk (ENOSPC), the process going on.
//
// Faults for tests/integration/fault: --pid_dir writes <dir>/rank<R>.pid at start;
// --step_delay_ms sleeps after every step (a job long enough to be killed mid-run);
// --fsize_limit B --fsize_limit_at_step S sets RLIMIT_FSIZE to B bytes before the save at
// global step S (a disk that fills up), with SIGXFSZ ignored as Python ignores it, so that
// writes fail with EFBIG instead of killing the process.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

#include <deepspeed/deepspeed.h>
#include <torch/torch.h>

namespace {

struct Mlp : torch::nn::Module {
  explicit Mlp(double dropout) : dropout(dropout) {
    fc1 = register_module("fc1", torch::nn::Linear(8, 16));
    fc2 = register_module("fc2", torch::nn::Linear(16, 4));
  }
  torch::Tensor forward(torch::Tensor x) {
    // Dropout draws from the CPU generator, so a resume is only exact if RNG state is restored.
    return fc2->forward(torch::dropout(torch::tanh(fc1->forward(x)), dropout, is_training()));
  }
  double dropout;
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};

class SyntheticData : public torch::data::datasets::Dataset<SyntheticData> {
 public:
  explicit SyntheticData(int64_t n) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(1234);
    x_ = torch::randn({n, 8}, gen);
    auto w = torch::randn({8, 4}, gen);
    y_ = torch::matmul(x_, w) + 0.1 * torch::randn({n, 4}, gen);
  }
  torch::data::Example<> get(size_t i) override {
    return {x_[static_cast<int64_t>(i)], y_[static_cast<int64_t>(i)]};
  }
  torch::optional<size_t> size() const override { return static_cast<size_t>(x_.size(0)); }

 private:
  torch::Tensor x_, y_;
};

// What happens to the one write a FaultyStorage is armed for.
enum class Fault { kCrash, kHang, kFullDisk };

// Writes half of one file and dies (or hangs), or fails that write as a full disk does, when
// armed for this rank and file.
class FaultyStorage : public deepspeed::CheckpointStorage {
 public:
  FaultyStorage(int64_t rank, const std::string& spec, Fault fault) : fault_(fault) {
    const auto a = spec.find(':'), b = spec.rfind(':');
    if (a == std::string::npos || a == b) throw std::runtime_error("DS_TEST_*_IN_SAVE: expected rank:file:step");
    active_ = std::stoll(spec.substr(0, a)) == rank;
    file_ = spec.substr(a + 1, b - a - 1);
    step_ = std::stoll(spec.substr(b + 1));
  }
  void arm(int64_t global_step) { armed_ = active_ && global_step == step_; }
  void write_file(const std::filesystem::path& path, std::span<const char> bytes) override {
    if (armed_ && path.filename() == file_ && fault_ == Fault::kFullDisk) {
      std::ofstream(path.string() + ".tmp", std::ios::binary);
      throw deepspeed::CheckpointError("checkpoint: cannot write " + path.string() +
                                       ".tmp: No space left on device");
    }
    if (armed_ && path.filename() == file_) {
      std::ofstream(path.string() + ".tmp", std::ios::binary).write(bytes.data(), bytes.size() / 2);
      if (fault_ == Fault::kHang) {
        std::cout << "hanging while writing " << path.string() << std::endl;
        std::this_thread::sleep_for(std::chrono::hours(1));
      }
      std::cout << "crashing while writing " << path.string() << std::endl;
      std::raise(SIGKILL);
    }
    deepspeed::CheckpointStorage::write_file(path, bytes);
  }

 private:
  Fault fault_;
  bool active_ = false, armed_ = false;
  std::string file_;
  int64_t step_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"deepspeed-cpp checkpoint test worker"};
  int64_t steps = 20, samples = 96, save_every = 0;
  double dropout = 0.0;
  bool load = false, rank_in_tag = false;
  std::string save_dir, out;
  app.add_option("--steps", steps, "train until this global step");
  app.add_option("--samples", samples);
  app.add_option("--dropout", dropout);
  app.add_option("--save_dir", save_dir);
  app.add_option("--save_every", save_every, "save when global_steps is a multiple of this");
  app.add_flag("--load", load, "load the latest checkpoint of --save_dir first");
  app.add_flag("--rank_in_tag", rank_in_tag, "use a tag that differs across ranks");
  app.add_option("--out", out);
  int64_t start_epoch = -1;
  app.add_option("--start_epoch", start_epoch,
                 "after a load, start the loader at this epoch (a DeepSpeed checkpoint has no data position)");
  std::string save_16bit_dir;
  app.add_option("--save_16bit", save_16bit_dir, "call save_16bit_model(DIR) at the end");
  std::string pid_dir;
  int64_t step_delay_ms = 0, fsize_limit = 0, fsize_limit_at_step = -1;
  app.add_option("--pid_dir", pid_dir, "write <dir>/rank<R>.pid at start");
  app.add_option("--step_delay_ms", step_delay_ms, "sleep after every step");
  app.add_option("--fsize_limit", fsize_limit, "RLIMIT_FSIZE in bytes ...");
  app.add_option("--fsize_limit_at_step", fsize_limit_at_step, "... set before the save at this global step");
  deepspeed::add_config_arguments(app);
  CLI11_PARSE(app, argc, argv);
  try {
    const int64_t rank = std::atoll(std::getenv("RANK") ? std::getenv("RANK") : "0");
    if (!pid_dir.empty()) {
      std::ofstream(pid_dir + "/rank" + std::to_string(rank) + ".pid") << ::getpid() << "\n";
    }
    torch::manual_seed(42 + rank);
    auto net = std::make_shared<Mlp>(dropout);
    auto [engine, optimizer, loader, scheduler] =
        deepspeed::initialize(app, net, net->parameters(), SyntheticData(samples));
    std::shared_ptr<FaultyStorage> faulty;
    if (const char* spec = std::getenv("DS_TEST_CRASH_IN_SAVE")) {
      faulty = std::make_shared<FaultyStorage>(rank, spec, Fault::kCrash);
    } else if (const char* spec = std::getenv("DS_TEST_HANG_IN_SAVE")) {
      faulty = std::make_shared<FaultyStorage>(rank, spec, Fault::kHang);
    } else if (const char* spec = std::getenv("DS_TEST_FULL_DISK_IN_SAVE")) {
      faulty = std::make_shared<FaultyStorage>(rank, spec, Fault::kFullDisk);
    }
    if (faulty) engine->set_checkpoint_storage(faulty);

    deepspeed::ClientState client_sd;
    if (load) {
      auto [load_path, loaded_sd] = engine->load_checkpoint(save_dir);
      if (load_path) {
        client_sd = loaded_sd;
        std::cout << "loaded " << *load_path << " step " << client_sd.at("step").to<int64_t>() << " global_steps "
                  << engine->global_steps() << " note " << client_sd.at("note").as_string() << std::endl;
      } else {
        std::cout << "nothing to load" << std::endl;
      }
      if (start_epoch >= 0) loader->set_epoch(start_epoch);
    }
    auto group = engine->process_group();
    while (engine->global_steps() < steps) {
      for (auto batch : *loader) {
        auto loss = torch::mse_loss(
            engine->forward(batch.data.to(engine->device(), engine->model_dtype())).to(torch::kFloat32),
            batch.target.to(engine->device()));
        engine->backward(loss);
        engine->step();
        auto mean = loss.detach().clone().to(engine->device());
        group->all_reduce(mean);
        std::printf("loss %lld %a\n", static_cast<long long>(engine->micro_steps()),
                    mean.item<double>() / static_cast<double>(group->size()));
        if (engine->was_step_applied() && save_every > 0 && engine->global_steps() % save_every == 0) {
          client_sd["step"] = engine->global_steps();
          client_sd["note"] = "saved at epoch " + std::to_string(loader->epoch());
          client_sd["history"] = deepspeed::StateList{1, 2.5, "three", torch::ones({2})};
          if (faulty) faulty->arm(engine->global_steps());
          if (engine->global_steps() == fsize_limit_at_step) {
            std::signal(SIGXFSZ, SIG_IGN);
            const rlimit limit{static_cast<rlim_t>(fsize_limit), static_cast<rlim_t>(fsize_limit)};
            if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) throw std::runtime_error("setrlimit(RLIMIT_FSIZE) failed");
            std::cout << "file size limit " << fsize_limit << " bytes from global step " << fsize_limit_at_step
                      << std::endl;
          }
          std::optional<std::string> tag;
          if (rank_in_tag) tag = "step" + std::to_string(engine->global_steps()) + "_rank" + std::to_string(rank);
          engine->save_checkpoint(save_dir, tag, client_sd);
        }
        if (step_delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(step_delay_ms));
        if (engine->global_steps() >= steps) break;
      }
    }
    std::fflush(stdout);
    std::printf("final_lr %a\n", engine->get_lr().at(0));
    if (!save_16bit_dir.empty()) {
      const bool saved = engine->save_16bit_model(save_16bit_dir);
      std::printf("save_16bit_model %s\n", saved ? "true" : "false");
    }
    // ZeRO-3: the weights whole on every rank (a collective), so that rank 0 can read them.
    const auto whole = engine->gathered_parameters();
    if (!out.empty() && rank == 0) {
      std::vector<torch::Tensor> state;
      for (auto& p : net->parameters()) state.push_back(p.detach().cpu().clone());
      // What the optimizer steps: the fp32 masters with bf16/fp16, the partitions with ZeRO.
      for (const auto& g : optimizer->param_groups()) {
        for (const auto& p : g.params) state.push_back(p.detach().cpu().clone());
      }
      for (const auto& per_tensor : optimizer->state()) {
        for (const auto& [key, t] : per_tensor) state.push_back(t.cpu().clone());
      }
      torch::save(state, out);
    }
  } catch (const deepspeed::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
