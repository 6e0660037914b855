// The communication logger's bookkeeping and DeepSpeed's formulas and table layout.
#include <deepspeed/comms_logger.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include <fmt/format.h>

#include <deepspeed/comm.h>

namespace deepspeed::comm {

Bandwidth calc_bw_log(std::string_view op, int64_t bytes, double ms, int64_t world_size) {
  const double n = static_cast<double>(world_size);
  double size = static_cast<double>(bytes);
  double algbw = 0, busbw = 0;
  if (ms <= 0) return {};
  if (op == "all_to_all_single" || op == "all_to_all") {
    algbw = size / ms;
    busbw = algbw * ((n - 1) / n);
  } else if (op == "all_gather" || op == "all_gather_into_tensor") {
    size *= n;  // logged: one rank's input
    algbw = size / ms;
    busbw = algbw * ((n - 1) / n);
  } else if (op == "reduce_scatter" || op == "reduce_scatter_tensor") {
    algbw = size / ms;  // logged: the whole input, which already covers every rank
    busbw = algbw * ((n - 1) / n);
  } else if (op == "all_reduce" || op == "all_reduce_coalesced" || op == "inference_all_reduce") {
    algbw = size * 2 / ms;
    busbw = size / ms * (2 * (n - 1) / n);
  } else {  // broadcast, reduce, gather, scatter, send/recv, barrier
    algbw = size / ms;
    busbw = algbw;
  }
  // bytes per millisecond -> gigabits per second
  return {algbw * 8 / 1e6, busbw * 8 / 1e6};
}

std::string convert_size(int64_t bytes) {
  if (bytes == 0) return "0B";
  static const char* const kNames[] = {"B", "KB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"};
  // Python's math.log(x, 1024) is log(x) / log(1024); its floor picks the unit.
  const int i = static_cast<int>(std::floor(std::log(static_cast<double>(bytes)) / std::log(1024.0)));
  const double p = std::pow(1024.0, i);
  // Python's str(round(x, 2)): the two decimals without trailing zeros, but at least one.
  std::string s = fmt::format("{:.2f}", static_cast<double>(bytes) / p);
  while (s.ends_with("0") && !s.ends_with(".0")) s.pop_back();
  return s + " " + kNames[std::clamp(i, 0, 8)];
}

double trim_mean(std::vector<double> data, double trim) {
  const auto n = data.size();
  if (n == 0) return 0.0;
  std::sort(data.begin(), data.end());
  // Python's round(): halves to even.
  const auto k = static_cast<std::size_t>(std::nearbyint(static_cast<double>(n) * trim));
  if (2 * k >= n) return 0.0;
  const double sum = std::accumulate(data.begin() + static_cast<std::ptrdiff_t>(k),
                                     data.end() - static_cast<std::ptrdiff_t>(k), 0.0);
  return sum / static_cast<double>(n - 2 * k);
}

CommsLogger::CommsLogger(const CommsLoggerConfig& config, int64_t world_size, int64_t rank,
                         std::function<void(const std::string&)> log)
    : config_(config), world_size_(world_size), rank_(rank), log_(std::move(log)) {
  if (!log_) {
    log_ = [](const std::string& line) {
      std::printf("%s\n", line.c_str());
      std::fflush(stdout);
    };
  }
}

bool CommsLogger::should_log(std::string_view op) const {
  return config_.prof_all || std::find(config_.prof_ops.begin(), config_.prof_ops.end(), op) != config_.prof_ops.end();
}

void CommsLogger::start_profiling_op(const std::vector<std::string>& ops) {
  for (const auto& op : ops) {
    if (std::find(config_.prof_ops.begin(), config_.prof_ops.end(), op) == config_.prof_ops.end()) {
      config_.prof_ops.push_back(op);
    }
  }
}

void CommsLogger::stop_profiling_op(const std::vector<std::string>& ops) {
  std::erase_if(config_.prof_ops, [&](const std::string& op) { return std::find(ops.begin(), ops.end(), op) != ops.end(); });
}

void CommsLogger::append(std::string_view op, const std::string& record_name, double latency_ms, int64_t msg_size) {
  const Bandwidth bw = calc_bw_log(op, msg_size, latency_ms, world_size_);
  auto it = std::find_if(records_.begin(), records_.end(), [&](const auto& r) { return r.first == record_name; });
  if (it == records_.end()) it = records_.insert(records_.end(), {record_name, Sizes{}});
  Entry& e = it->second[msg_size];
  ++e.count;
  e.latencies_ms.push_back(latency_ms);
  e.algbw_gbps.push_back(bw.algbw_gbps);
  e.busbw_gbps.push_back(bw.busbw_gbps);
  unreported_ = true;
  if (config_.verbose && rank_ == 0) {
    log_(fmt::format("[Rank 0] comm op: {} | time (ms): {:.2f} | msg size: {} | algbw (Gbps): {:.2f} | busbw (Gbps): {:.2f}",
                     record_name, latency_ms, convert_size(msg_size), bw.algbw_gbps, bw.busbw_gbps));
  }
}

int64_t CommsLogger::total_operations() const {
  int64_t total = 0;
  for (const auto& [name, sizes] : records_) {
    for (const auto& [size, e] : sizes) total += e.count;
  }
  return total;
}

std::string CommsLogger::summary() const {
  std::string out = fmt::format("{:<20}{:<20}{:<20}{:<20}{:<20}{:<20}{:<20}\n", "Comm. Op", "Message Size", "Count",
                                "Total Latency(ms)", "Avg Latency(ms)", "tput_avg (Gbps)", "busbw_avg (Gbps)");
  for (const auto& [name, sizes] : records_) {
    out += name + "\n";
    for (const auto& [size, e] : sizes) {
      const double total = std::accumulate(e.latencies_ms.begin(), e.latencies_ms.end(), 0.0);
      out += fmt::format("{:<20}{:<20}{:<20}{:<20.2f}{:<20.2f}{:<20.2f}{:<20.2f}\n", " ", convert_size(size), e.count,
                         total, trim_mean(e.latencies_ms, 0.1), trim_mean(e.algbw_gbps, 0.1),
                         trim_mean(e.busbw_gbps, 0.1));
    }
  }
  return out;
}

void log_summary(ProcessGroup& group) {
  const std::shared_ptr<CommsLogger> logger = group.shared_comms_logger();
  if (!logger) return;
  // The summary's own barriers are not part of the training's traffic: not logged.
  group.set_comms_logger(nullptr);
  struct Restore {
    ProcessGroup& group;
    std::shared_ptr<CommsLogger> logger;
    ~Restore() { group.set_comms_logger(logger); }
  } restore{group, logger};
  group.barrier();
  if (group.rank() == 0) {
    std::fputs(logger->summary().c_str(), stdout);
    std::fflush(stdout);
  }
  logger->mark_reported();
  group.barrier();
}

}  // namespace deepspeed::comm
