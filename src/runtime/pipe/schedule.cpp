// DeepSpeed's TrainSchedule and InferenceSchedule, step by step. The step → micro batch
// mapping below is DeepSpeed's; every quantity in it is non-negative before the subtraction,
// so C++'s truncating division equals Python's floor division.
#include <deepspeed/pipe_schedule.h>

#include <stdexcept>
#include <string>

namespace deepspeed::pipe {
namespace {

bool is_even(int64_t x) { return x % 2 == 0; }

void check_shape(const char* what, int64_t micro_batches, int64_t stages, int64_t stage_id) {
  if (micro_batches < 1 || stages < 1 || stage_id < 0 || stage_id >= stages) {
    throw std::invalid_argument(std::string(what) + ": need micro_batches >= 1, stages >= 1 and 0 <= stage_id < stages, "
                                "got micro_batches=" + std::to_string(micro_batches) + ", stages=" +
                                std::to_string(stages) + ", stage_id=" + std::to_string(stage_id));
  }
}

struct TrainShape {
  int64_t micro_batches, stages, stage_id, buffers;
  bool valid_micro_batch(int64_t id) const { return id >= 0 && id < micro_batches; }
  bool valid_stage(int64_t id) const { return id >= 0 && id < stages; }
  int64_t buffer(int64_t micro_batch) const { return micro_batch % buffers; }

  // Which micro batch a step works on, and whether it is a forward step (even stages run
  // forward on even steps, odd stages on odd ones).
  std::pair<int64_t, bool> micro_batch_of(int64_t step) const {
    if (is_even(step) && is_even(stage_id)) return {step / 2 - stage_id / 2, true};
    if (!is_even(step) && !is_even(stage_id)) return {(step - 1) / 2 - stage_id / 2, true};
    if (is_even(step) && !is_even(stage_id)) return {step / 2 - stages + (stage_id + 1) / 2, false};
    return {((step - 1) / 2) - stages + 1 + stage_id / 2, false};
  }
};

}  // namespace

std::string_view op_name(Op op) {
  switch (op) {
    case Op::LoadMicroBatch: return "LoadMicroBatch";
    case Op::ForwardPass: return "ForwardPass";
    case Op::BackwardPass: return "BackwardPass";
    case Op::SendActivation: return "SendActivation";
    case Op::RecvActivation: return "RecvActivation";
    case Op::SendGrad: return "SendGrad";
    case Op::RecvGrad: return "RecvGrad";
    case Op::ReduceTiedGrads: return "ReduceTiedGrads";
    case Op::ReduceGrads: return "ReduceGrads";
    case Op::OptimizerStep: return "OptimizerStep";
  }
  return "?";
}

bool has_buffer(Op op) { return op != Op::ReduceTiedGrads && op != Op::ReduceGrads && op != Op::OptimizerStep; }

Schedule train_schedule(int64_t micro_batches, int64_t stages, int64_t stage_id) {
  check_shape("train_schedule", micro_batches, stages, stage_id);
  // As many buffers as forward passes can be in flight (the distance to the last stage), at
  // least two.
  const TrainShape s{micro_batches, stages, stage_id, std::max<int64_t>(2, std::min(stages - stage_id, micro_batches))};
  Schedule out;
  out.num_pipe_buffers = s.buffers;
  const int64_t total_steps = 2 * (micro_batches + stages - 1);
  const bool prev_stage = s.valid_stage(stage_id - 1), next_stage = s.valid_stage(stage_id + 1);
  int64_t prev_micro_batch = -1;
  for (int64_t step = 0; step < total_steps; ++step) {
    const auto [micro_batch, is_forward] = s.micro_batch_of(step);
    const bool prev_valid = s.valid_micro_batch(prev_micro_batch), curr_valid = s.valid_micro_batch(micro_batch);
    std::vector<Instruction> cmds;
    if (is_forward) {
      if (prev_valid && prev_stage) cmds.push_back({Op::SendGrad, s.buffer(prev_micro_batch)});
      if (curr_valid && prev_stage) cmds.push_back({Op::RecvActivation, s.buffer(micro_batch)});
    } else {
      if (curr_valid && next_stage) cmds.push_back({Op::RecvGrad, s.buffer(micro_batch)});
      if (prev_valid && next_stage) cmds.push_back({Op::SendActivation, s.buffer(prev_micro_batch)});
    }
    if ((stage_id == 0 || stage_id == stages - 1) && is_forward && curr_valid) {
      cmds.push_back({Op::LoadMicroBatch, s.buffer(micro_batch)});
    }
    if (curr_valid) cmds.push_back({is_forward ? Op::ForwardPass : Op::BackwardPass, s.buffer(micro_batch)});
    if (step == total_steps - 1) {
      cmds.push_back({Op::ReduceTiedGrads});
      cmds.push_back({Op::ReduceGrads});
      cmds.push_back({Op::OptimizerStep});
    }
    prev_micro_batch = micro_batch;
    out.steps.push_back(std::move(cmds));
  }
  return out;
}

Schedule inference_schedule(int64_t micro_batches, int64_t stages, int64_t stage_id) {
  check_shape("inference_schedule", micro_batches, stages, stage_id);
  Schedule out;
  out.num_pipe_buffers = 2;
  const auto valid_micro_batch = [&](int64_t id) { return id >= 0 && id < micro_batches; };
  const bool prev_stage = stage_id > 0, next_stage = stage_id + 1 < stages;
  const int64_t total_steps = micro_batches + stages - 1;
  for (int64_t step = 0; step < total_steps; ++step) {
    std::vector<Instruction> cmds;
    const int64_t micro_batch = step - stage_id;
    // Receive and send alternate between the two buffers, in opposite phase on neighbours.
    const int64_t recv_buf = is_even(stage_id) ? step % 2 : (step + 1) % 2;
    const int64_t send_buf = is_even(stage_id) ? (step + 1) % 2 : step % 2;
    if ((stage_id == 0 || stage_id == stages - 1) && valid_micro_batch(micro_batch)) {
      cmds.push_back({Op::LoadMicroBatch, recv_buf});
    }
    const bool send = next_stage && valid_micro_batch(micro_batch - 1);
    const bool recv = prev_stage && valid_micro_batch(micro_batch);
    // Even stages send first and odd stages receive first, so neighbours pair up.
    if (is_even(stage_id)) {
      if (send) cmds.push_back({Op::SendActivation, send_buf});
      if (recv) cmds.push_back({Op::RecvActivation, recv_buf});
    } else {
      if (recv) cmds.push_back({Op::RecvActivation, recv_buf});
      if (send) cmds.push_back({Op::SendActivation, send_buf});
    }
    if (valid_micro_batch(micro_batch)) cmds.push_back({Op::ForwardPass, recv_buf});
    out.steps.push_back(std::move(cmds));
  }
  return out;
}

}  // namespace deepspeed::pipe
