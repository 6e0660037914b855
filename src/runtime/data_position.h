// Where the training data loader stands, saved as the model-states entry
// "ds_cpp_data_position" (DeepSpeed's "data_sampler" is None but with curriculum learning, and
// its loader would hand ours to a curriculum sampler) and restored on any world size.
//
// The position is counted in samples of the epoch's shuffled order, not in this rank's
// batches: ranks take interleaved slices of one global order (DistributedSampler), so
// after B batches of b samples on each of W ranks exactly the first B*b*W samples of the
// order were used, whatever W. A load with another world size or micro batch resumes at
// the same sample (rounded down to a whole batch, with a note when that repeats samples).
//
// A batch counts as taken once the loop has handed it out: save_checkpoint is called in
// the loop's body after step(), as in the tutorial, and the resumed loop starts with the
// next batch. A finished epoch resumes at the start of the next one.
#pragma once

#include <optional>
#include <string>

#include <ATen/core/ivalue.h>

#include <deepspeed/data_loader.h>

namespace deepspeed {

// {"epoch", "consumed_samples", "micro_batch_size", "world_size", "batches_taken"}
c10::IValue loader_position(const DataLoader& loader);

// Sets the loader's next epoch and offset. Returns a note for the log when the saved
// position does not fall on a batch boundary of this loader (samples are repeated).
std::optional<std::string> restore_loader_position(DataLoader& loader, const c10::IValue& saved,
                                                   const std::string& file);

}  // namespace deepspeed
