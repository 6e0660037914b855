#include "runtime/monitor/event_file_writer.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>
#include <unistd.h>

#include <deepspeed/errors.h>

#include "runtime/monitor/event_proto.h"
#include "runtime/monitor/tfrecord.h"

namespace deepspeed::monitor {
namespace {

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}

}  // namespace

double wall_time_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

EventFileWriter::EventFileWriter(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(fmt::format("tensorboard: cannot create the folder {}: {}", dir, ec.message()));
  const double now = wall_time_now();
  const std::string stem = fmt::format("events.out.tfevents.{:010d}.{}.{}", static_cast<int64_t>(now), host_name(),
                                       static_cast<int64_t>(getpid()));
  for (int n = 0;; ++n) {
    path_ = (std::filesystem::path(dir) / fmt::format("{}.{}", stem, n)).string();
    if (!std::filesystem::exists(path_)) break;
  }
  out_.open(path_, std::ios::binary | std::ios::trunc);
  if (!out_) throw Error(fmt::format("tensorboard: cannot create {}: {}", path_, std::strerror(errno)));
  pending_ = tfrecord(file_version_event(now, "deepspeed-cpp"));
  flush();
}

void EventFileWriter::add_scalar(std::string_view tag, double value, int64_t step, double wall_time) {
  pending_ += tfrecord(scalar_event(wall_time, step, tag, static_cast<float>(value)));
}

void EventFileWriter::flush() {
  out_.write(pending_.data(), static_cast<std::streamsize>(pending_.size()));
  out_.flush();
  pending_.clear();
  if (!out_) throw Error(fmt::format("tensorboard: cannot write {}: {}", path_, std::strerror(errno)));
}

}  // namespace deepspeed::monitor
