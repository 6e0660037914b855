// ds_pipe_plan schedule --kind train|inference --micro_batches M --stages S --stage_id I
// ds_pipe_plan partition --method uniform --num_items N --num_parts P
// ds_pipe_plan partition --method balanced --weights W1,W2,... --num_parts P
//
// Prints what the pipeline engine will run, as JSON on stdout: a stage's schedule
// ({"num_pipe_buffers": B, "steps": [[{"op": "LoadMicroBatch", "buffer_id": 0}, ...], ...]},
// one list per step, each instruction by DeepSpeed's class name, buffer_id on buffer
// instructions only), or the part boundaries of a partition ([0, ..., N]). Bad input prints
// its error to stderr and exits 1.
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <deepspeed/pipe_partition.h>
#include <deepspeed/pipe_schedule.h>

namespace {

namespace pipe = deepspeed::pipe;

nlohmann::ordered_json schedule_json(const pipe::Schedule& schedule) {
  auto steps = nlohmann::ordered_json::array();
  for (const auto& step : schedule.steps) {
    auto cmds = nlohmann::ordered_json::array();
    for (const auto& c : step) {
      nlohmann::ordered_json cmd = {{"op", std::string(pipe::op_name(c.op))}};
      if (pipe::has_buffer(c.op)) cmd["buffer_id"] = c.buffer_id;
      cmds.push_back(cmd);
    }
    steps.push_back(cmds);
  }
  nlohmann::ordered_json out;
  out["num_pipe_buffers"] = schedule.num_pipe_buffers;
  out["steps"] = steps;
  return out;
}

std::vector<int64_t> parse_weights(const std::string& text) {
  std::vector<int64_t> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    int64_t value = 0;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size()) {
      throw std::invalid_argument("--weights: '" + item + "' is not an integer (expected W1,W2,...)");
    }
    out.push_back(value);
  }
  if (out.empty()) throw std::invalid_argument("--weights: no weights given");
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Prints the pipeline engine's schedule for a stage, or a partition of layers, as JSON."};
  app.require_subcommand(1);

  auto* schedule = app.add_subcommand("schedule", "the instructions one stage runs for one batch");
  std::string kind = "train";
  int64_t micro_batches = 0, stages = 0, stage_id = 0;
  schedule->add_option("--kind", kind, "train (1F1B) or inference")->check(CLI::IsMember({"train", "inference"}));
  schedule->add_option("--micro_batches", micro_batches, "micro batches per batch")->required();
  schedule->add_option("--stages", stages, "pipeline stages")->required();
  schedule->add_option("--stage_id", stage_id, "the stage whose schedule to print")->required();

  auto* partition = app.add_subcommand("partition", "part boundaries of layers over stages");
  std::string method;
  int64_t num_items = -1, num_parts = 0;
  std::string weights;
  partition->add_option("--method", method, "uniform or balanced")
      ->required()
      ->check(CLI::IsMember({"uniform", "balanced"}));
  partition->add_option("--num_items", num_items, "items to cut (uniform)");
  partition->add_option("--weights", weights, "comma-separated item weights (balanced)");
  partition->add_option("--num_parts", num_parts, "parts")->required();

  CLI11_PARSE(app, argc, argv);
  try {
    if (schedule->parsed()) {
      const auto s = kind == "train" ? pipe::train_schedule(micro_batches, stages, stage_id)
                                     : pipe::inference_schedule(micro_batches, stages, stage_id);
      std::cout << schedule_json(s).dump() << "\n";
    } else if (method == "uniform") {
      if (num_items < 0) throw std::invalid_argument("--method uniform needs --num_items N (N >= 0)");
      if (!weights.empty()) throw std::invalid_argument("--weights is for --method balanced");
      std::cout << nlohmann::json(pipe::partition_uniform(num_items, num_parts)).dump() << "\n";
    } else {
      if (num_items >= 0) throw std::invalid_argument("--num_items is for --method uniform; give --weights");
      if (weights.empty()) throw std::invalid_argument("--method balanced needs --weights W1,W2,...");
      std::cout << nlohmann::json(pipe::partition_balanced(parse_weights(weights), num_parts)).dump() << "\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "ds_pipe_plan: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
