// ds_config CONFIG [--world_size N] [--schedule STEPS]
//
// Prints the config fully resolved (every default filled in, batch sizes derived for the
// world size) as JSON on stdout, or with --schedule the LR schedule as step,lr,momentum CSV.
// Warnings go to stderr; an invalid config prints its error to stderr and exits 1.
#include <iostream>

#include <CLI/CLI.hpp>

#include <deepspeed/config.h>
#include <deepspeed/errors.h>

#include "schedule_csv.h"

int main(int argc, char** argv) {
  CLI::App app{"Reads a DeepSpeed config (ds_config.json) as deepspeed-cpp does and prints it resolved."};
  std::string config_path;
  int64_t world_size = 1;
  int64_t schedule_steps = 0;
  app.add_option("config", config_path, "ds_config.json (or the JSON itself)")->required();
  app.add_option("--world_size", world_size, "data-parallel world size for the batch arithmetic")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  auto* schedule = app.add_option("--schedule", schedule_steps, "print STEPS rows of step,lr,momentum CSV instead")
                       ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  try {
    const deepspeed::DeepSpeedConfig config = deepspeed::load_config(config_path, world_size);
    for (const std::string& warning : config.warnings) std::cerr << "ds_config: warning: " << warning << "\n";
    if (schedule->count() > 0) {
      deepspeed::write_schedule_csv(config, schedule_steps, std::cout, std::cerr);
    } else {
      std::cout << config.to_json().dump(2) << "\n";
    }
  } catch (const deepspeed::Error& e) {
    std::cerr << "ds_config: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {  // e.g. a LibTorch error while building the schedule
    std::cerr << "ds_config: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
