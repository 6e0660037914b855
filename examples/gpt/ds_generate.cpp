// ds_generate: text (or token ids) from a checkpoint of the GPT example (gpt_train --save_dir)
// through deepspeed::init_inference.
//
//   ds_generate --checkpoint ckpt --model tiny --prompt "Hello" --max_new_tokens 32
//   ds_generate --checkpoint ckpt --model 124M --prompt_ids 50256,464 --dtype bf16 --kernel_inject
//
// The example has no BPE tokenizer (it trains on token files that nanoGPT or llm.c wrote): a
// text prompt is read as bytes, one token per byte, which fits a model trained on byte tokens;
// --prompt_ids takes the ids themselves. Prints the new token ids, and for a text prompt the
// text they spell (bytes; an id above 255 as <id>).
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <deepspeed/inference.h>
#include <torch/torch.h>

#include "gpt_model.h"

namespace {

std::vector<int64_t> parse_ids(const std::string& text) {
  std::vector<int64_t> ids;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || v < 0) {
      throw std::invalid_argument("--prompt_ids: \"" + item + "\" is not a token id (expected e.g. 1,2,3)");
    }
    ids.push_back(v);
  }
  if (ids.empty()) throw std::invalid_argument("--prompt_ids: no token ids");
  return ids;
}

std::string spell(const std::vector<int64_t>& ids) {
  std::string out;
  for (auto id : ids) out += id < 256 ? std::string(1, static_cast<char>(id)) : "<" + std::to_string(id) + ">";
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Generate from a checkpoint of the GPT example through deepspeed::init_inference"};
  std::string checkpoint, tag, model = "tiny", prompt, prompt_ids, stop_ids, dtype = "fp32";
  int64_t seq_len = 0, n_layer = 0, n_head = 0, d_model = 0, vocab_size = 0;
  deepspeed::inference::GenerationOptions g;
  bool kernel_inject = false, cuda_graph = false;
  app.add_option("--checkpoint", checkpoint, "the folder gpt_train --save_dir wrote (holding `latest`)")->required();
  app.add_option("--tag", tag, "checkpoint tag (default: the one in <checkpoint>/latest)");
  app.add_option("--model", model, "the size it was trained at (gpt_train --model)");
  app.add_option("--seq_len", seq_len, "gpt_train --seq_len")->check(CLI::PositiveNumber);
  app.add_option("--n_layer", n_layer, "gpt_train --n_layer")->check(CLI::PositiveNumber);
  app.add_option("--n_head", n_head, "gpt_train --n_head")->check(CLI::PositiveNumber);
  app.add_option("--d_model", d_model, "gpt_train --d_model")->check(CLI::PositiveNumber);
  app.add_option("--vocab_size", vocab_size, "gpt_train --vocab_size")->check(CLI::PositiveNumber);
  auto* text = app.add_option("--prompt", prompt, "prompt text (one token per byte)");
  auto* ids = app.add_option("--prompt_ids", prompt_ids, "prompt token ids, comma-separated");
  text->excludes(ids);
  app.add_option("--max_new_tokens", g.max_new_tokens, "tokens to generate (default: 32)")->check(CLI::PositiveNumber);
  app.add_option("--min_new_tokens", g.min_new_tokens, "no stop token before this many")->check(CLI::NonNegativeNumber);
  app.add_flag("--do_sample", g.do_sample, "sample instead of greedy decoding");
  app.add_option("--temperature", g.temperature, "sampling temperature (default: 1)")->check(CLI::PositiveNumber);
  app.add_option("--top_k", g.top_k, "sample among the k most likely (default: 0, off)")->check(CLI::NonNegativeNumber);
  app.add_option("--top_p", g.top_p, "nucleus sampling (default: 1, off)")->check(CLI::Range(0.0, 1.0));
  app.add_option("--seed", g.seed, "sampling seed (default: 0)");
  app.add_option("--stop_ids", stop_ids, "token ids that end the generation, comma-separated");
  app.add_option("--dtype", dtype, "fp32, bf16 or fp16 (default: fp32)")->check(CLI::IsMember({"fp32", "bf16", "fp16"}));
  app.add_flag("--kernel_inject", kernel_inject, "replace_with_kernel_inject: the fused CUDA kernels");
  app.add_flag("--cuda_graph", cuda_graph, "enable_cuda_graph (with --kernel_inject on a GPU)");
  CLI11_PARSE(app, argc, argv);
  if (prompt.empty() && prompt_ids.empty()) {
    std::fprintf(stderr, "ds_generate: give --prompt TEXT or --prompt_ids 1,2,3\n");
    return 2;
  }
  try {
    auto config = gpt::preset(model);
    if (seq_len) config.seq_len = seq_len;
    if (n_layer) config.n_layer = n_layer;
    if (n_head) config.n_head = n_head;
    if (d_model) config.d_model = d_model;
    if (vocab_size) config.vocab_size = vocab_size;
    std::vector<int64_t> tokens;
    if (!prompt.empty()) {
      for (unsigned char c : prompt) tokens.push_back(c);
    } else {
      tokens = parse_ids(prompt_ids);
    }
    if (!stop_ids.empty()) g.stop_tokens = parse_ids(stop_ids);
    auto net = gpt::Gpt(config);
    nlohmann::json checkpoint_section = {{"checkpoint_dir", checkpoint}};
    if (!tag.empty()) checkpoint_section["tag"] = tag;
    const nlohmann::json ds_config = {{"dtype", dtype},
                                      {"replace_with_kernel_inject", kernel_inject},
                                      {"enable_cuda_graph", cuda_graph},
                                      {"max_out_tokens", config.seq_len},
                                      {"checkpoint", checkpoint_section},
                                      {"config", {{"num_attention_heads", config.n_head}}}};
    auto engine = deepspeed::init_inference(net.ptr(), ds_config);
    const auto out = engine->generate({tokens}, g)[0];
    std::string line;
    for (auto id : out) line += (line.empty() ? "" : ",") + std::to_string(id);
    std::printf("tokens: %s\n", line.c_str());
    if (!prompt.empty()) std::printf("text: %s%s\n", prompt.c_str(), spell(out).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ds_generate: %s\n", e.what());
    return 1;
  }
  return 0;
}
