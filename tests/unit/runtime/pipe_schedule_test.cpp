// The schedules equal DeepSpeed's: the expected strings were printed by DeepSpeed's own
// TrainSchedule / InferenceSchedule classes (deepspeed/runtime/pipe/schedule.py) for each
// shape, one "|"-separated entry per step, each instruction as its class name and buffer id.
#include <deepspeed/pipe_schedule.h>

#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

namespace pipe_schedule_test {

using deepspeed::pipe::Schedule;

std::string render(const Schedule& s) {
  std::string out;
  for (size_t i = 0; i < s.steps.size(); ++i) {
    if (i) out += " | ";
    std::string step;
    for (const auto& c : s.steps[i]) {
      if (!step.empty()) step += ' ';
      step += deepspeed::pipe::op_name(c.op);
      if (deepspeed::pipe::has_buffer(c.op)) step += std::to_string(c.buffer_id);
    }
    out += step;
  }
  return out;
}

struct Expected {
  const char* kind;
  int64_t micro_batches, stages, stage_id, buffers;
  const char* steps;
};

const Expected kDeepSpeed[] = {
    {"train", 1, 1, 0, 2,
     "LoadMicroBatch0 ForwardPass0 | BackwardPass0 ReduceTiedGrads ReduceGrads OptimizerStep"},
    {"train", 4, 2, 0, 2,
     "LoadMicroBatch0 ForwardPass0 | SendActivation0 | LoadMicroBatch1 ForwardPass1 | RecvGrad0 SendActivation1 BackwardPass0 | LoadMicroBatch0 ForwardPass0 | RecvGrad1 SendActivation0 BackwardPass1 | LoadMicroBatch1 ForwardPass1 | RecvGrad0 SendActivation1 BackwardPass0 |  | RecvGrad1 BackwardPass1 ReduceTiedGrads ReduceGrads OptimizerStep"},
    {"train", 4, 2, 1, 2,
     " | RecvActivation0 LoadMicroBatch0 ForwardPass0 | BackwardPass0 | SendGrad0 RecvActivation1 LoadMicroBatch1 ForwardPass1 | BackwardPass1 | SendGrad1 RecvActivation0 LoadMicroBatch0 ForwardPass0 | BackwardPass0 | SendGrad0 RecvActivation1 LoadMicroBatch1 ForwardPass1 | BackwardPass1 | SendGrad1 ReduceTiedGrads ReduceGrads OptimizerStep"},
    {"train", 8, 4, 0, 4,
     "LoadMicroBatch0 ForwardPass0 | SendActivation0 | LoadMicroBatch1 ForwardPass1 | SendActivation1 | LoadMicroBatch2 ForwardPass2 | SendActivation2 | LoadMicroBatch3 ForwardPass3 | RecvGrad0 SendActivation3 BackwardPass0 | LoadMicroBatch0 ForwardPass0 | RecvGrad1 SendActivation0 BackwardPass1 | LoadMicroBatch1 ForwardPass1 | RecvGrad2 SendActivation1 BackwardPass2 | LoadMicroBatch2 ForwardPass2 | RecvGrad3 SendActivation2 BackwardPass3 | LoadMicroBatch3 ForwardPass3 | RecvGrad0 SendActivation3 BackwardPass0 |  | RecvGrad1 BackwardPass1 |  | RecvGrad2 BackwardPass2 |  | RecvGrad3 BackwardPass3 ReduceTiedGrads ReduceGrads OptimizerStep"},
    {"train", 8, 4, 1, 3,
     " | RecvActivation0 ForwardPass0 | SendActivation0 | RecvActivation1 ForwardPass1 | SendActivation1 | RecvActivation2 ForwardPass2 | RecvGrad0 SendActivation2 BackwardPass0 | SendGrad0 RecvActivation0 ForwardPass0 | RecvGrad1 SendActivation0 BackwardPass1 | SendGrad1 RecvActivation1 ForwardPass1 | RecvGrad2 SendActivation1 BackwardPass2 | SendGrad2 RecvActivation2 ForwardPass2 | RecvGrad0 SendActivation2 BackwardPass0 | SendGrad0 RecvActivation0 ForwardPass0 | RecvGrad1 SendActivation0 BackwardPass1 | SendGrad1 RecvActivation1 ForwardPass1 | RecvGrad2 SendActivation1 BackwardPass2 | SendGrad2 | RecvGrad0 BackwardPass0 | SendGrad0 | RecvGrad1 BackwardPass1 | SendGrad1 ReduceTiedGrads ReduceGrads OptimizerStep"},
    {"train", 8, 4, 2, 2,
     " |  | RecvActivation0 ForwardPass0 | SendActivation0 | RecvActivation1 ForwardPass1 | RecvGrad0 SendActivation1 BackwardPass0 | SendGrad0 RecvActivation0 ForwardPass0 | RecvGrad1 SendActivation0 BackwardPass1 | SendGrad1 RecvActivation1 ForwardPass1 | RecvGrad0 SendActivation1 BackwardPass0 | SendGrad0 RecvActivation0 ForwardPass0 | RecvGrad1 SendActivation0 BackwardPass1 | SendGrad1 RecvActivation1 ForwardPass1 | RecvGrad0 SendActivation1 BackwardPass0 | SendGrad0 RecvActivation0 ForwardPass0 | RecvGrad1 SendActivation0 BackwardPass1 | SendGrad1 RecvActivation1 ForwardPass1 | RecvGrad0 SendActivation1 BackwardPass0 | SendGrad0 | RecvGrad1 BackwardPass1 | SendGrad1 | ReduceTiedGrads ReduceGrads OptimizerStep"},
    {"train", 8, 4, 3, 2,
     " |  |  | RecvActivation0 LoadMicroBatch0 ForwardPass0 | BackwardPass0 | SendGrad0 RecvActivation1 LoadMicroBatch1 ForwardPass1 | BackwardPass1 | SendGrad1 RecvActivation0 LoadMicroBatch0 ForwardPass0 | BackwardPass0 | SendGrad0 RecvActivation1 LoadMicroBatch1 ForwardPass1 | BackwardPass1 | SendGrad1 RecvActivation0 LoadMicroBatch0 ForwardPass0 | BackwardPass0 | SendGrad0 RecvActivation1 LoadMicroBatch1 ForwardPass1 | BackwardPass1 | SendGrad1 RecvActivation0 LoadMicroBatch0 ForwardPass0 | BackwardPass0 | SendGrad0 RecvActivation1 LoadMicroBatch1 ForwardPass1 | BackwardPass1 | SendGrad1 |  | ReduceTiedGrads ReduceGrads OptimizerStep"},
    {"train", 3, 4, 0, 3,
     "LoadMicroBatch0 ForwardPass0 | SendActivation0 | LoadMicroBatch1 ForwardPass1 | SendActivation1 | LoadMicroBatch2 ForwardPass2 | SendActivation2 |  | RecvGrad0 BackwardPass0 |  | RecvGrad1 BackwardPass1 |  | RecvGrad2 BackwardPass2 ReduceTiedGrads ReduceGrads OptimizerStep"},
    {"train", 3, 4, 1, 3,
     " | RecvActivation0 ForwardPass0 | SendActivation0 | RecvActivation1 ForwardPass1 | SendActivation1 | RecvActivation2 ForwardPass2 | RecvGrad0 SendActivation2 BackwardPass0 | SendGrad0 | RecvGrad1 BackwardPass1 | SendGrad1 | RecvGrad2 BackwardPass2 | SendGrad2 ReduceTiedGrads ReduceGrads OptimizerStep"},
    {"train", 3, 4, 2, 2,
     " |  | RecvActivation0 ForwardPass0 | SendActivation0 | RecvActivation1 ForwardPass1 | RecvGrad0 SendActivation1 BackwardPass0 | SendGrad0 RecvActivation0 ForwardPass0 | RecvGrad1 SendActivation0 BackwardPass1 | SendGrad1 | RecvGrad0 BackwardPass0 | SendGrad0 | ReduceTiedGrads ReduceGrads OptimizerStep"},
    {"train", 3, 4, 3, 2,
     " |  |  | RecvActivation0 LoadMicroBatch0 ForwardPass0 | BackwardPass0 | SendGrad0 RecvActivation1 LoadMicroBatch1 ForwardPass1 | BackwardPass1 | SendGrad1 RecvActivation0 LoadMicroBatch0 ForwardPass0 | BackwardPass0 | SendGrad0 |  | ReduceTiedGrads ReduceGrads OptimizerStep"},
    {"train", 5, 3, 0, 3,
     "LoadMicroBatch0 ForwardPass0 | SendActivation0 | LoadMicroBatch1 ForwardPass1 | SendActivation1 | LoadMicroBatch2 ForwardPass2 | RecvGrad0 SendActivation2 BackwardPass0 | LoadMicroBatch0 ForwardPass0 | RecvGrad1 SendActivation0 BackwardPass1 | LoadMicroBatch1 ForwardPass1 | RecvGrad2 SendActivation1 BackwardPass2 |  | RecvGrad0 BackwardPass0 |  | RecvGrad1 BackwardPass1 ReduceTiedGrads ReduceGrads OptimizerStep"},
    {"train", 5, 3, 1, 2,
     " | RecvActivation0 ForwardPass0 | SendActivation0 | RecvActivation1 ForwardPass1 | RecvGrad0 SendActivation1 BackwardPass0 | SendGrad0 RecvActivation0 ForwardPass0 | RecvGrad1 SendActivation0 BackwardPass1 | SendGrad1 RecvActivation1 ForwardPass1 | RecvGrad0 SendActivation1 BackwardPass0 | SendGrad0 RecvActivation0 ForwardPass0 | RecvGrad1 SendActivation0 BackwardPass1 | SendGrad1 | RecvGrad0 BackwardPass0 | SendGrad0 ReduceTiedGrads ReduceGrads OptimizerStep"},
    {"train", 5, 3, 2, 2,
     " |  | RecvActivation0 LoadMicroBatch0 ForwardPass0 | BackwardPass0 | SendGrad0 RecvActivation1 LoadMicroBatch1 ForwardPass1 | BackwardPass1 | SendGrad1 RecvActivation0 LoadMicroBatch0 ForwardPass0 | BackwardPass0 | SendGrad0 RecvActivation1 LoadMicroBatch1 ForwardPass1 | BackwardPass1 | SendGrad1 RecvActivation0 LoadMicroBatch0 ForwardPass0 | BackwardPass0 | SendGrad0 | ReduceTiedGrads ReduceGrads OptimizerStep"},
    {"train", 2, 2, 0, 2,
     "LoadMicroBatch0 ForwardPass0 | SendActivation0 | LoadMicroBatch1 ForwardPass1 | RecvGrad0 SendActivation1 BackwardPass0 |  | RecvGrad1 BackwardPass1 ReduceTiedGrads ReduceGrads OptimizerStep"},
    {"train", 2, 2, 1, 2,
     " | RecvActivation0 LoadMicroBatch0 ForwardPass0 | BackwardPass0 | SendGrad0 RecvActivation1 LoadMicroBatch1 ForwardPass1 | BackwardPass1 | SendGrad1 ReduceTiedGrads ReduceGrads OptimizerStep"},
    {"inference", 1, 1, 0, 2,
     "LoadMicroBatch0 ForwardPass0"},
    {"inference", 4, 2, 0, 2,
     "LoadMicroBatch0 ForwardPass0 | LoadMicroBatch1 SendActivation0 ForwardPass1 | LoadMicroBatch0 SendActivation1 ForwardPass0 | LoadMicroBatch1 SendActivation0 ForwardPass1 | SendActivation1"},
    {"inference", 4, 2, 1, 2,
     " | LoadMicroBatch0 RecvActivation0 ForwardPass0 | LoadMicroBatch1 RecvActivation1 ForwardPass1 | LoadMicroBatch0 RecvActivation0 ForwardPass0 | LoadMicroBatch1 RecvActivation1 ForwardPass1"},
    {"inference", 8, 4, 0, 2,
     "LoadMicroBatch0 ForwardPass0 | LoadMicroBatch1 SendActivation0 ForwardPass1 | LoadMicroBatch0 SendActivation1 ForwardPass0 | LoadMicroBatch1 SendActivation0 ForwardPass1 | LoadMicroBatch0 SendActivation1 ForwardPass0 | LoadMicroBatch1 SendActivation0 ForwardPass1 | LoadMicroBatch0 SendActivation1 ForwardPass0 | LoadMicroBatch1 SendActivation0 ForwardPass1 | SendActivation1 |  | "},
    {"inference", 8, 4, 1, 2,
     " | RecvActivation0 ForwardPass0 | RecvActivation1 SendActivation0 ForwardPass1 | RecvActivation0 SendActivation1 ForwardPass0 | RecvActivation1 SendActivation0 ForwardPass1 | RecvActivation0 SendActivation1 ForwardPass0 | RecvActivation1 SendActivation0 ForwardPass1 | RecvActivation0 SendActivation1 ForwardPass0 | RecvActivation1 SendActivation0 ForwardPass1 | SendActivation1 | "},
    {"inference", 8, 4, 2, 2,
     " |  | RecvActivation0 ForwardPass0 | SendActivation0 RecvActivation1 ForwardPass1 | SendActivation1 RecvActivation0 ForwardPass0 | SendActivation0 RecvActivation1 ForwardPass1 | SendActivation1 RecvActivation0 ForwardPass0 | SendActivation0 RecvActivation1 ForwardPass1 | SendActivation1 RecvActivation0 ForwardPass0 | SendActivation0 RecvActivation1 ForwardPass1 | SendActivation1"},
    {"inference", 8, 4, 3, 2,
     " |  |  | LoadMicroBatch0 RecvActivation0 ForwardPass0 | LoadMicroBatch1 RecvActivation1 ForwardPass1 | LoadMicroBatch0 RecvActivation0 ForwardPass0 | LoadMicroBatch1 RecvActivation1 ForwardPass1 | LoadMicroBatch0 RecvActivation0 ForwardPass0 | LoadMicroBatch1 RecvActivation1 ForwardPass1 | LoadMicroBatch0 RecvActivation0 ForwardPass0 | LoadMicroBatch1 RecvActivation1 ForwardPass1"},
    {"inference", 3, 4, 0, 2,
     "LoadMicroBatch0 ForwardPass0 | LoadMicroBatch1 SendActivation0 ForwardPass1 | LoadMicroBatch0 SendActivation1 ForwardPass0 | SendActivation0 |  | "},
    {"inference", 3, 4, 1, 2,
     " | RecvActivation0 ForwardPass0 | RecvActivation1 SendActivation0 ForwardPass1 | RecvActivation0 SendActivation1 ForwardPass0 | SendActivation0 | "},
    {"inference", 3, 4, 2, 2,
     " |  | RecvActivation0 ForwardPass0 | SendActivation0 RecvActivation1 ForwardPass1 | SendActivation1 RecvActivation0 ForwardPass0 | SendActivation0"},
    {"inference", 3, 4, 3, 2,
     " |  |  | LoadMicroBatch0 RecvActivation0 ForwardPass0 | LoadMicroBatch1 RecvActivation1 ForwardPass1 | LoadMicroBatch0 RecvActivation0 ForwardPass0"},
    {"inference", 5, 3, 0, 2,
     "LoadMicroBatch0 ForwardPass0 | LoadMicroBatch1 SendActivation0 ForwardPass1 | LoadMicroBatch0 SendActivation1 ForwardPass0 | LoadMicroBatch1 SendActivation0 ForwardPass1 | LoadMicroBatch0 SendActivation1 ForwardPass0 | SendActivation0 | "},
    {"inference", 5, 3, 1, 2,
     " | RecvActivation0 ForwardPass0 | RecvActivation1 SendActivation0 ForwardPass1 | RecvActivation0 SendActivation1 ForwardPass0 | RecvActivation1 SendActivation0 ForwardPass1 | RecvActivation0 SendActivation1 ForwardPass0 | SendActivation0"},
    {"inference", 5, 3, 2, 2,
     " |  | LoadMicroBatch0 RecvActivation0 ForwardPass0 | LoadMicroBatch1 RecvActivation1 ForwardPass1 | LoadMicroBatch0 RecvActivation0 ForwardPass0 | LoadMicroBatch1 RecvActivation1 ForwardPass1 | LoadMicroBatch0 RecvActivation0 ForwardPass0"},
    {"inference", 2, 2, 0, 2,
     "LoadMicroBatch0 ForwardPass0 | LoadMicroBatch1 SendActivation0 ForwardPass1 | SendActivation1"},
    {"inference", 2, 2, 1, 2,
     " | LoadMicroBatch0 RecvActivation0 ForwardPass0 | LoadMicroBatch1 RecvActivation1 ForwardPass1"},
};

TEST(PipeSchedule, EqualsDeepSpeedsForEachShape) {
  for (const auto& e : kDeepSpeed) {
    const auto s = std::string(e.kind) == "train"
                       ? deepspeed::pipe::train_schedule(e.micro_batches, e.stages, e.stage_id)
                       : deepspeed::pipe::inference_schedule(e.micro_batches, e.stages, e.stage_id);
    SCOPED_TRACE(std::string(e.kind) + " M=" + std::to_string(e.micro_batches) + " S=" + std::to_string(e.stages) +
                 " stage=" + std::to_string(e.stage_id));
    EXPECT_EQ(s.num_pipe_buffers, e.buffers);
    EXPECT_EQ(render(s), e.steps);
  }
}

// Every stage runs each micro batch's forward and backward exactly once, and every send has
// its receive on the neighbour in the same step (the property that makes steps atomic).
TEST(PipeSchedule, SendsPairWithReceivesStepByStep) {
  using deepspeed::pipe::Op;
  for (int64_t stages : {2, 3, 4}) {
    for (int64_t m : {1, 2, 5, 8}) {
      std::vector<Schedule> all;
      for (int64_t s = 0; s < stages; ++s) all.push_back(deepspeed::pipe::train_schedule(m, stages, s));
      for (int64_t s = 0; s < stages; ++s) {
        int forwards = 0, backwards = 0;
        for (size_t step = 0; step < all[s].steps.size(); ++step) {
          for (const auto& c : all[s].steps[step]) {
            forwards += c.op == Op::ForwardPass;
            backwards += c.op == Op::BackwardPass;
            auto count = [&](int64_t stage, Op op) {
              int n = 0;
              for (const auto& d : all[stage].steps[step]) n += d.op == op;
              return n;
            };
            if (c.op == Op::SendActivation) {
              EXPECT_EQ(count(s + 1, Op::RecvActivation), 1);
            }
            if (c.op == Op::SendGrad) {
              EXPECT_EQ(count(s - 1, Op::RecvGrad), 1);
            }
          }
        }
        EXPECT_EQ(forwards, m);
        EXPECT_EQ(backwards, m);
      }
    }
  }
}

TEST(PipeSchedule, RefusesImpossibleShapes) {
  EXPECT_THROW(deepspeed::pipe::train_schedule(0, 2, 0), std::invalid_argument);
  EXPECT_THROW(deepspeed::pipe::train_schedule(4, 2, 2), std::invalid_argument);
  EXPECT_THROW(deepspeed::pipe::inference_schedule(4, 0, 0), std::invalid_argument);
  EXPECT_THROW(deepspeed::pipe::inference_schedule(4, 2, -1), std::invalid_argument);
}

}  // namespace pipe_schedule_test
