#include "runtime/data_position.h"

#include <deepspeed/errors.h>

#include "checkpoint/ivalue_conversion.h"

namespace deepspeed {
namespace {

using checkpoint::int_at;
using checkpoint::make_string_dict;

}  // namespace


c10::IValue loader_position(const DataLoader& loader) {
  int64_t epoch = std::max<int64_t>(loader.epoch(), 0);
  // The iterator's offset is the batch being handed out; it counts once handed out.
  const int64_t taken = loader.epoch() < 0 ? 0 : std::min(loader.batches_taken() + 1, loader.size());
  const auto& o = loader.options();
  auto d = make_string_dict();
  d.insert("epoch", epoch);
  d.insert("batches_taken", taken);
  d.insert("micro_batch_size", o.batch_size);
  d.insert("world_size", o.world_size);
  d.insert("consumed_samples", taken * o.batch_size * o.world_size);
  return d;
}

std::optional<std::string> restore_loader_position(DataLoader& loader, const c10::IValue& saved,
                                                   const std::string& file) {
  const std::string where = file + ": data_sampler";
  if (!saved.isGenericDict()) throw CheckpointError(where + " should be a dict, found " + saved.tagKind());
  const auto d = saved.toGenericDict();
  int64_t epoch = int_at(d, "epoch", where);
  const int64_t consumed = int_at(d, "consumed_samples", where);
  const auto& o = loader.options();
  const int64_t per_batch = o.batch_size * o.world_size;
  int64_t offset = consumed / per_batch;
  std::optional<std::string> note;
  if (consumed % per_batch != 0) {
    note = "the checkpoint's data position (" + std::to_string(consumed) + " samples into epoch " +
           std::to_string(epoch) + ") is not a multiple of this run's " + std::to_string(per_batch) +
           " samples per batch over all ranks; resuming at sample " + std::to_string(offset * per_batch);
  }
  if (offset >= loader.size()) {
    ++epoch;
    offset = 0;
  }
  loader.set_position(epoch, offset);
  return note;
}

}  // namespace deepspeed
