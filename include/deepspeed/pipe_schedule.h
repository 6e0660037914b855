// The pipeline engine's schedules as data (DeepSpeed's deepspeed/runtime/pipe/schedule.py):
// for one stage of a pipeline, the list of steps it runs for one batch, each step a list of
// instructions. TrainSchedule is DeepSpeed's synchronous 1F1B: forward and backward passes
// alternate once the pipeline is full, so a stage holds at most (stages - stage_id)
// micro batches' activations. InferenceSchedule runs forward passes only, over two buffers.
//
// Pure functions of (micro_batches, stages, stage_id): the engine runs exactly what these
// return, and `ds_pipe_plan schedule` prints it. Each step is atomic: a barrier could sit
// between two steps without a deadlock, because every send of a step has its receive in the
// same step of the neighbouring stage.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace deepspeed::pipe {

// DeepSpeed's instruction classes. The buffer instructions name a pipeline buffer; the three
// at the end of a training batch do not.
enum class Op {
  LoadMicroBatch,
  ForwardPass,
  BackwardPass,
  SendActivation,
  RecvActivation,
  SendGrad,
  RecvGrad,
  ReduceTiedGrads,
  ReduceGrads,
  OptimizerStep,
};

struct Instruction {
  Op op;
  int64_t buffer_id = -1;  // -1 for the instructions without a buffer
  bool operator==(const Instruction&) const = default;
};

// DeepSpeed's class name of the instruction ("ForwardPass").
std::string_view op_name(Op op);
// Whether the instruction carries a buffer id (DeepSpeed's BufferOpInstruction).
bool has_buffer(Op op);

struct Schedule {
  int64_t num_pipe_buffers = 0;
  std::vector<std::vector<Instruction>> steps;
};

// Throws std::invalid_argument unless micro_batches >= 1, stages >= 1 and
// 0 <= stage_id < stages.
Schedule train_schedule(int64_t micro_batches, int64_t stages, int64_t stage_id);
Schedule inference_schedule(int64_t micro_batches, int64_t stages, int64_t stage_id);

}  // namespace deepspeed::pipe
