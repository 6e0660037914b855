// --bind_cores_to_rank / --bind_core_list (docs/launcher.md, "Core binding"): each local rank
// gets an equal, disjoint
// share of the cores, and OMP_NUM_THREADS = that share. The list syntax is `1,3-5,7`,
// strictly ascending and non-overlapping. Without a list: see default_core_list().
// How the binding is applied is the launcher's choice: `numactl -C <cores>` in front of the
// command when numactl is installed (as DeepSpeed), else sched_setaffinity in the child
// before exec (the same effect without memory-node binding).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace deepspeed::launcher {

// LaunchError("--bind_core_list: Bad range ...") on bad syntax or order.
std::vector<int> parse_core_list(std::string_view text);

// "0,1,2,5" -> "0-2,5".
std::string compress_core_list(const std::vector<int>& cores);

// Splits cores into local_size equal parts (cores.size() / local_size each, at least 1).
std::vector<std::vector<int>> assign_cores(const std::vector<int>& cores, int local_size);

// The default core list without --bind_core_list: the CPUs this process may run on
// (sched_getaffinity), one per physical core where /proc/cpuinfo tells hyperthreads apart.
// DeepSpeed takes 0..physical_cores-1, which fails inside a cpuset that excludes CPU 0.
std::vector<int> default_core_list();

}  // namespace deepspeed::launcher
