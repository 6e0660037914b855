// Records the ATen operators that run on this thread between start() and stop(), through a
// thread-local at::RecordFunction callback: LibTorch modules have no forward hooks, but every
// operator call passes through the dispatcher, which reports it with its inputs and outputs.
//
// For each top-level operator -- one the model's code called itself, not one that another
// operator called -- a record keeps its name, the tensors it was given (so that the module
// whose parameters they are can be found), its wall time, and the FLOPs and MACs of the
// outermost operators with a formula inside it (op_cost.h), itself included.
//
// Costs nothing until start(); between start() and stop() every operator on this thread
// pays for the bookkeeping (meant for one profiled forward pass).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <ATen/record_function.h>

#include "runtime/flops_profiler/op_cost.h"

namespace deepspeed::flops {

struct OpRecord {
  std::string name;                  // "aten::linear"
  std::vector<const void*> tensors;  // TensorImpl* and StorageImpl* of its tensor inputs
  int64_t flops = 0;
  int64_t macs = 0;
  double seconds = 0;
};

class OpRecorder {
 public:
  // synchronize: waits for the device (GPU), so that an operator's time is its work and not
  // only its launch; empty on the CPU.
  explicit OpRecorder(std::function<void()> synchronize = {});
  ~OpRecorder();
  OpRecorder(const OpRecorder&) = delete;
  OpRecorder& operator=(const OpRecorder&) = delete;

  // Throws deepspeed::Error when another recorder is recording on this thread.
  void start();
  void stop();
  bool recording() const { return handle_ != 0; }
  const std::vector<OpRecord>& records() const { return records_; }
  void clear() { records_.clear(); }

 private:
  struct Frame {
    bool covered = false;   // this op or one that called it has a formula: count nothing more
    bool counting = false;  // this op has the formula
    std::vector<InputInfo> inputs;
  };
  static std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn);
  static void on_end(const at::RecordFunction& fn, at::ObserverContext* ctx);
  void begin_op(const at::RecordFunction& fn);
  void end_op(const at::RecordFunction& fn);

  std::function<void()> synchronize_;
  at::CallbackHandle handle_ = 0;
  std::vector<Frame> frames_;
  std::vector<OpRecord> records_;
  std::chrono::steady_clock::time_point top_started_;
};

}  // namespace deepspeed::flops
