// What one rank holds, in bytes: the engine's memory report (Engine::memory_report()), which
// each optimizer wrapper fills in for what it manages.
#pragma once

#include <cstdint>

namespace deepspeed {

// What this rank holds, in bytes (Engine::memory_report()). With ZeRO the master weights,
// their gradients and the optimizer state are this rank's partitions only.
struct MemoryReport {
  int64_t parameters = 0;             // the module's trainable parameters (model dtype) held now
  // The most `parameters` reached during the last forward and backward (ZeRO-3 gathers and
  // releases them as operations need them; otherwise the same as parameters).
  int64_t parameters_peak = 0;
  int64_t gradients = 0;              // .grad of the parameters now held, plus fp32 master gradients
  int64_t master_weights = 0;         // fp32 masters (fp16/bf16, or ZeRO's partitions)
  int64_t optimizer_states = 0;       // per-element state (exp_avg, ...); step counters excluded
  int64_t communication_buffers = 0;  // gradient buckets currently allocated
  int64_t buffers = 0;                // the module's buffers
};

}  // namespace deepspeed
