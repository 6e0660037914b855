// ds_to_fp32 CHECKPOINT_DIR OUTPUT [-t TAG]
// Consolidates the checkpoint CHECKPOINT_DIR/<TAG> (TAG from CHECKPOINT_DIR/latest unless
// given) into one fp32 state dict: OUTPUT ending in .safetensors gets the safetensors
// format, anything else torch's (torch.load reads it); an existing folder gets
// pytorch_model.bin inside. Every file read is checked against the checkpoint's manifest.
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <torch/torch.h>

#include <deepspeed/checkpoint.h>
#include <deepspeed/errors.h>

#include "checkpoint/atomic_file.h"
#include "checkpoint/checkpoint_reader.h"
#include "checkpoint/consolidate.h"
#include "checkpoint/pickle_io.h"
#include "checkpoint/safetensors.h"

namespace ck = deepspeed::checkpoint;

int main(int argc, char** argv) {
  CLI::App app{"Consolidate a deepspeed-cpp checkpoint into one fp32 state dict"};
  std::string checkpoint_dir, output, tag;
  app.add_option("checkpoint_dir", checkpoint_dir, "the folder save_checkpoint wrote (holding `latest`)")->required();
  app.add_option("output", output, "output file (.safetensors, or torch's format otherwise) or folder")->required();
  app.add_option("-t,--tag", tag, "checkpoint tag (default: the one in CHECKPOINT_DIR/latest)");
  CLI11_PARSE(app, argc, argv);
  try {
    deepspeed::CheckpointStorage storage;
    if (tag.empty()) {
      auto latest = ck::read_latest_tag(storage, checkpoint_dir);
      if (!latest) throw deepspeed::CheckpointError(ck::missing_latest_message(checkpoint_dir));
      tag = *latest;
    }
    const ck::CheckpointReader reader(storage, checkpoint_dir, tag);
    std::cout << "Processing checkpoint " << reader.dir().string() << " (ZeRO stage " << reader.manifest().zero_stage
              << ", saved on " << reader.manifest().dp_world_size << " ranks)\n";
    const auto tensors = ck::fp32_state_dict(reader);

    std::filesystem::path out(output);
    if (std::filesystem::is_directory(out)) out /= "pytorch_model.bin";
    std::vector<char> bytes;
    if (out.extension() == ".safetensors") {
      bytes = ck::safetensors_bytes(tensors);
    } else {
      c10::impl::GenericDict dict(c10::StringType::get(), c10::TensorType::get());
      for (const auto& [name, t] : tensors) dict.insert(name, t);
      bytes = ck::to_pickle_bytes(dict);
    }
    int64_t numel = 0;
    for (const auto& [name, t] : tensors) numel += t.numel();
    std::cout << fmt::format("Saving fp32 state dict to {} ({} tensors, {} elements)\n", out.string(), tensors.size(),
                             numel);
    ck::write_file_atomically(out, bytes);
  } catch (const deepspeed::Error& e) {
    std::cerr << "ds_to_fp32: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
