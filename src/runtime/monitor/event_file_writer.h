// A TensorBoard event file: TFRecord-framed `Event` protos, the first one carrying the file
// version, then one per scalar. Named as TensorBoard's own writer names them,
// events.out.tfevents.<10-digit unix time>.<host>.<pid>.<n>, so that TensorBoard finds it.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>

namespace deepspeed::monitor {

class EventFileWriter {
 public:
  // Creates `dir` (with its parents) and a new event file in it; n is the first number that
  // names no existing file. Throws deepspeed::Error naming the path when either fails.
  explicit EventFileWriter(const std::string& dir);

  const std::string& path() const { return path_; }
  // Queues one scalar (written at the next flush). wall_time: seconds since the epoch.
  void add_scalar(std::string_view tag, double value, int64_t step, double wall_time);
  // Writes what is queued; throws deepspeed::Error naming the file when the write fails.
  void flush();

 private:
  std::string path_;
  std::ofstream out_;
  std::string pending_;
};

// Seconds since the epoch, as Python's time.time().
double wall_time_now();

}  // namespace deepspeed::monitor
