// --profile for gpt_train: the GPU kernels of a few steps, summed by name, through LibTorch's
// Kineto profiler (LibTorch 2.x with CUDA; elsewhere it says it cannot). For comparing where
// the time goes against the PyTorch peer (bench/peers/gpt_peer.py --profile).
#pragma once

#include <functional>

namespace gpt {

// Runs `steps` calls of `step` under the profiler and prints the top kernels to stdout.
void profile_kernels(int steps, const std::function<void()>& step);

}  // namespace gpt
