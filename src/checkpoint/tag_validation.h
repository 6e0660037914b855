// checkpoint.tag_validation (docs/checkpointing.md, "Tag validation"): ranks compare a hash
// of the tag, because a tag
// that differs across ranks (one holding the rank, a timestamp, a per-rank loss) scatters
// one checkpoint over several folders, which cannot be loaded on another world size.
#pragma once

#include <string>

#include <deepspeed/comm.h>

namespace deepspeed::checkpoint {

enum class TagValidation { Ignore, Warn, Fail };

// "IGNORE" | "WARN" | "FAIL" as the config reader normalised it.
TagValidation parse_tag_validation(const std::string& mode);

// DeepSpeed's message: "[rank=R] The checkpoint tag name '<tag>' is not consistent across
// all ranks. Including rank unique information in checkpoint tag could cause issues when
// restoring with different world sizes."
std::string inconsistent_tag_message(int64_t rank, const std::string& tag);

// True when every rank passed the same tag. Collective unless mode is Ignore (which
// returns true without communicating, as DeepSpeed skips the check). Fail: throws
// CheckpointError with the message on every rank; Warn: returns false (the caller warns).
bool validate_tag(comm::ProcessGroup& group, const std::string& tag, TagValidation mode);

}  // namespace deepspeed::checkpoint
