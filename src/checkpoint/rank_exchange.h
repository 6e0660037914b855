// The collectives a checkpoint needs beyond the engine's: ranks agreeing that a phase
// succeeded everywhere (so one rank's failure stops every rank with an error, instead of
// leaving the others waiting in a barrier), and small byte strings gathered from all ranks.
// Contract as comm::ProcessGroup's: every rank calls these in the same order.
#pragma once

#include <exception>
#include <string>
#include <vector>

#include <deepspeed/comm.h>

namespace deepspeed::checkpoint {

// Also a barrier. When some rank's `local_error` is set, every rank throws: a rank with an
// error rethrows its own, the others throw CheckpointError("... rank R failed while <phase>").
void agree_on_success(comm::ProcessGroup& group, std::exception_ptr local_error, const std::string& phase);

// Runs `work` and then agree_on_success: a phase that fails anywhere fails everywhere.
template <typename Work>
void run_phase(comm::ProcessGroup& group, const std::string& phase, Work&& work) {
  std::exception_ptr error;
  try {
    work();
  } catch (...) {
    error = std::current_exception();
  }
  agree_on_success(group, error, phase);
}

// Every rank's `bytes`, in rank order, on every rank (any lengths).
std::vector<std::string> all_gather_bytes(comm::ProcessGroup& group, const std::string& bytes);

}  // namespace deepspeed::checkpoint
