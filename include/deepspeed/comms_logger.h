// DeepSpeed's communication logger (deepspeed.comm with "comms_logger" in the config): for
// every collective the process group runs, its message size and latency, and the algorithm
// and bus bandwidth DeepSpeed derives from them (utils/comms_logging.py). With `verbose`
// each operation is logged as it completes; log_summary() prints DeepSpeed's table per
// operation and message size.
//
// Timing a collective needs its end: while logging, the process group waits for each
// collective as soon as it is started (as DeepSpeed synchronizes the device), so gradient
// reduction no longer overlaps backward. A group without a logger pays one pointer test.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <deepspeed/config.h>

namespace deepspeed::comm {

class ProcessGroup;

// Bandwidths in Gbps of `op` moving `bytes` (as logged: an all_gather logs its input, every
// other op the tensor it was given) in `ms` milliseconds over `world_size` ranks, as
// DeepSpeed's calc_bw_log: all_reduce algbw = 2 x size / time, busbw = size / time x 2(n-1)/n;
// all_gather algbw = n x size / time, busbw = algbw x (n-1)/n; reduce_scatter and all_to_all
// algbw = size / time, busbw = algbw x (n-1)/n; broadcast, send/recv, barrier busbw = algbw.
struct Bandwidth {
  double algbw_gbps = 0;
  double busbw_gbps = 0;
};
Bandwidth calc_bw_log(std::string_view op, int64_t bytes, double ms, int64_t world_size);
// DeepSpeed's convert_size: "0B", "4.0 B", "3.91 KB", "1.0 MB".
std::string convert_size(int64_t bytes);
// DeepSpeed's trim_mean: the mean after dropping round(n x trim) values at each end.
double trim_mean(std::vector<double> data, double trim);

class CommsLogger {
 public:
  // One operation name and message size: how often, and each one's latency and bandwidths.
  struct Entry {
    int64_t count = 0;
    std::vector<double> latencies_ms;
    std::vector<double> algbw_gbps;
    std::vector<double> busbw_gbps;
  };
  using Sizes = std::map<int64_t, Entry>;  // message size in bytes -> entry

  // `log`: where verbose lines go (rank 0 only); by default standard output.
  CommsLogger(const CommsLoggerConfig& config, int64_t world_size, int64_t rank,
              std::function<void(const std::string&)> log = {});

  // Whether a collective named `op` ("all_reduce") is logged now: prof_all, or op in prof_ops.
  bool should_log(std::string_view op) const;
  bool debug() const { return config_.debug; }
  // Adds one completed operation. `record_name` is the op, plus " | [Caller Func: f]" with debug.
  void append(std::string_view op, const std::string& record_name, double latency_ms, int64_t msg_size);

  // DeepSpeed's switches: profile every op, or these ops, from now on (or stop).
  void start_profiling_comms() { config_.prof_all = true; }
  void stop_profiling_comms() { config_.prof_all = false; }
  void start_profiling_op(const std::vector<std::string>& ops);
  void stop_profiling_op(const std::vector<std::string>& ops);

  // Record names in the order they were first logged.
  const std::vector<std::pair<std::string, Sizes>>& records() const { return records_; }
  int64_t total_operations() const;
  // DeepSpeed's log_summary table: a header, then per record name its sizes (ascending) with
  // count, total and trimmed-mean latency (ms) and trimmed-mean algbw / busbw (Gbps).
  std::string summary() const;
  // Whether anything was logged since summary() last ran (the engine prints at its end only
  // what the user did not print already).
  bool has_unreported() const { return unreported_; }
  void mark_reported() { unreported_ = false; }
  void reset() { records_.clear(); unreported_ = false; }

 private:
  CommsLoggerConfig config_;
  int64_t world_size_;
  int64_t rank_;
  std::function<void(const std::string&)> log_;
  std::vector<std::pair<std::string, Sizes>> records_;
  bool unreported_ = false;
};

// DeepSpeed's deepspeed.comm.log_summary(): every rank meets at a barrier, rank 0 prints its
// logger's table to standard output, and they meet again. Does nothing without a logger.
void log_summary(ProcessGroup& group);

}  // namespace deepspeed::comm
