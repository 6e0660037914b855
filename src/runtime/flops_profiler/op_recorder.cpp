#include "runtime/flops_profiler/op_recorder.h"

#include <ATen/core/ivalue.h>

#include <deepspeed/errors.h>

namespace deepspeed::flops {
namespace {

// RecordFunction callbacks are plain function pointers without a user-data argument, so the
// callback finds its recorder here. Thread-local and set only between start() and stop() of
// one recorder: the callback itself is registered for this thread only.
thread_local OpRecorder* tl_recorder = nullptr;

InputInfo describe(const c10::IValue& v) {
  InputInfo info;
  if (v.isTensor()) {
    const auto& t = v.toTensor();
    if (t.defined()) {
      info.kind = InputInfo::Kind::Tensor;
      info.sizes = t.sizes().vec();
    } else {
      info.kind = InputInfo::Kind::None;
    }
  } else if (v.isNone()) {
    info.kind = InputInfo::Kind::None;
  } else if (v.isBool()) {
    info.kind = InputInfo::Kind::Bool;
    info.flag = v.toBool();
  }
  return info;
}

void add_identity(std::vector<const void*>& out, const at::Tensor& t) {
  if (!t.defined()) return;
  out.push_back(t.unsafeGetTensorImpl());
  // Views of a parameter (weight.t() inside linear) share its storage.
  if (t.has_storage()) out.push_back(t.storage().unsafeGetStorageImpl());
}

}  // namespace

OpRecorder::OpRecorder(std::function<void()> synchronize) : synchronize_(std::move(synchronize)) {}

OpRecorder::~OpRecorder() { stop(); }

void OpRecorder::start() {
  if (recording()) return;
  if (tl_recorder) throw Error("flops profiler: another profile is already being recorded on this thread");
  tl_recorder = this;
  frames_.clear();
  handle_ = at::addThreadLocalCallback(at::RecordFunctionCallback(&OpRecorder::on_start, &OpRecorder::on_end)
                                           .needsInputs(true)
                                           .needsOutputs(true)
                                           .scopes({at::RecordScope::FUNCTION}));
}

void OpRecorder::stop() {
  if (!recording()) return;
  at::removeCallback(handle_);
  handle_ = 0;
  if (tl_recorder == this) tl_recorder = nullptr;
  frames_.clear();
}

// Exceptions must not leave a callback (RecordFunction would log and swallow them).
std::unique_ptr<at::ObserverContext> OpRecorder::on_start(const at::RecordFunction& fn) {
  if (tl_recorder) {
    try {
      tl_recorder->begin_op(fn);
    } catch (...) {
    }
  }
  return nullptr;
}

void OpRecorder::on_end(const at::RecordFunction& fn, at::ObserverContext*) {
  if (tl_recorder) {
    try {
      tl_recorder->end_op(fn);
    } catch (...) {
    }
  }
}

void OpRecorder::begin_op(const at::RecordFunction& fn) {
  const bool top = frames_.empty();
  Frame frame;
  frame.covered = !top && frames_.back().covered;
  if (!frame.covered && has_formula(fn.name())) {
    frame.counting = frame.covered = true;
    for (const auto& v : fn.inputs()) frame.inputs.push_back(describe(v));
  }
  if (top) {
    OpRecord record;
    record.name = fn.name();
    for (const auto& v : fn.inputs()) {
      if (v.isTensor()) {
        add_identity(record.tensors, v.toTensor());
      } else if (v.isTensorList()) {  // e.g. the weights of aten::lstm
        for (const auto& element : v.toTensorList()) {
          const at::Tensor t = element;
          add_identity(record.tensors, t);
        }
      }
    }
    records_.push_back(std::move(record));
    if (synchronize_) synchronize_();
    top_started_ = std::chrono::steady_clock::now();
  }
  frames_.push_back(std::move(frame));
}

void OpRecorder::end_op(const at::RecordFunction& fn) {
  if (frames_.empty()) return;  // began before start()
  Frame frame = std::move(frames_.back());
  frames_.pop_back();
  OpRecord& record = records_.back();
  if (frame.counting) {
    std::vector<int64_t> output;
    const auto& outputs = fn.outputs();
    if (!outputs.empty() && outputs[0].isTensor() && outputs[0].toTensor().defined()) {
      output = outputs[0].toTensor().sizes().vec();
    } else if (!outputs.empty() && outputs[0].isTuple()) {  // (values, indices) of max_pool...
      const auto& elements = outputs[0].toTupleRef().elements();
      if (!elements.empty() && elements[0].isTensor()) output = elements[0].toTensor().sizes().vec();
    }
    const OpCost cost = op_cost(fn.name(), frame.inputs, output);
    record.flops += cost.flops;
    record.macs += cost.macs;
  }
  if (frames_.empty()) {
    if (synchronize_) synchronize_();
    record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - top_started_).count();
  }
}

}  // namespace deepspeed::flops
