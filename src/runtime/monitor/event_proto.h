// The TensorBoard `Event` protocol buffer (tensorflow/core/util/event.proto), encoded by hand
// for the two kinds of event a scalar log needs, so that no protobuf library is required:
//   Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5;
//           SourceMetadata source_metadata = 10; }
//   Summary { repeated Value value = 1; }  Value { string tag = 1; float simple_value = 2; }
// Fields at their proto3 default (step 0) are left out, as protobuf itself does.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace deepspeed::monitor {

// The first event of every file: file_version "brain.Event:2" and the writer's name.
std::string file_version_event(double wall_time, std::string_view writer);
// One scalar, as torch.utils.tensorboard's SummaryWriter.add_scalar writes it.
std::string scalar_event(double wall_time, int64_t step, std::string_view tag, float value);

}  // namespace deepspeed::monitor
