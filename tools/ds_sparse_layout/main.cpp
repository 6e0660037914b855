// ds_sparse_layout --config JSON --seq_len N
//
// Prints the block layout a sparse_attention config gives for a sequence of N tokens, as JSON
// [heads][row_blocks][col_blocks] of 0/1 (docs/sparse_attention.md). JSON is the
// "sparse_attention" section plus "num_heads", written inline or as a file path:
//   ds_sparse_layout --config '{"mode": "fixed", "num_heads": 4, "block": 16}' --seq_len 256
// The sparse attention op builds its layout with the same code. A bad config or sequence
// length prints the error to stderr and exits 1.
#include <fstream>
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <deepspeed/config.h>
#include <deepspeed/errors.h>
#include <deepspeed/sparsity_config.h>

namespace {

nlohmann::json read_config(const std::string& text_or_path) {
  const auto first = text_or_path.find_first_not_of(" \t\r\n");
  std::string text = text_or_path;
  if (first == std::string::npos || text_or_path[first] != '{') {
    std::ifstream in(text_or_path);
    if (!in) throw deepspeed::ConfigError("--config", "cannot read file \"" + text_or_path + "\"");
    std::stringstream buffer;
    buffer << in.rdbuf();
    text = buffer.str();
  }
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw deepspeed::ConfigError("--config", std::string("not valid JSON: ") + e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Prints the block-sparse attention layout of a sparse_attention config as JSON."};
  std::string config_arg;
  int64_t seq_len = 0;
  app.add_option("--config", config_arg, "the sparse_attention section plus num_heads (JSON text or a file)")
      ->required();
  app.add_option("--seq_len", seq_len, "sequence length in tokens (a multiple of the block)")->required();
  CLI11_PARSE(app, argc, argv);

  try {
    nlohmann::json config = read_config(config_arg);
    if (!config.is_object()) throw deepspeed::ConfigError("--config", "expected a JSON object");
    if (!config.contains("num_heads")) throw deepspeed::ConfigError("num_heads", "required (the layer's head count)");
    const nlohmann::json heads = config["num_heads"];
    if (!heads.is_number_integer()) throw deepspeed::ConfigError("num_heads", "expected an integer, got " + heads.dump());
    config.erase("num_heads");
    const auto section = deepspeed::read_sparse_attention_config(config, "sparse_attention");
    const auto sparsity = deepspeed::ops::sparse_attention::make_sparsity_config(section, heads.get<int64_t>());
    std::cout << sparsity->make_layout(seq_len).to_json();
  } catch (const deepspeed::Error& e) {
    std::cerr << "ds_sparse_layout: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
