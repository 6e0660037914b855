// NUMA memory binding for --bind_cores_to_rank (docs/launcher.md, "Core binding"), as
// DeepSpeed's get_numactl_cmd
// (deepspeed/utils/numa.py) builds it: a rank whose cores all lie in one NUMA node gets
//   numactl -m <node> -C <cores>          normal machines
//   numactl -p <hbm node> -C <cores>      flat-mode HBM: as many CPU-less nodes as CPU nodes,
//                                         the i-th CPU node paired with the i-th CPU-less one
//   numactl -m <n1>,<n2> -C <cores>       "fake NUMA": consecutive nodes listing the same CPUs
//                                         are one group, bound together
// and plain `numactl -C <cores>` otherwise (cores spread over nodes, or no NUMA information).
// The topology comes from `numactl --hardware`, parsed by a pure function so it can be tested
// with recorded outputs.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace deepspeed::launcher {

struct NumaNode {
  int id = 0;
  std::vector<int> cpus;  // empty for a memory-only (HBM/CXL) node
  bool operator==(const NumaNode&) const = default;
};
using NumaTopology = std::vector<NumaNode>;  // in the order numactl lists the nodes

// The nodes of `numactl --hardware` output: the `node N cpus: a b c` lines. Node ids are the
// real ones (DeepSpeed assumes 0..available-1 and misnumbers machines with sparse node ids).
// Text without such lines gives an empty topology.
NumaTopology parse_numactl_hardware(std::string_view text);

// The memory-binding flags for a rank bound to `rank_cores` ({"-m","0"}, {"-p","2"},
// {"-m","0,1"} or {}), by DeepSpeed's rules above.
std::vector<std::string> numa_memory_flags(const NumaTopology& numa, const std::vector<int>& rank_cores);

// numactl [memory flags] -C <compressed cores>.
std::vector<std::string> numactl_command(const NumaTopology& numa, const std::vector<int>& rank_cores);

// This machine's topology: `numactl --hardware`, or empty when numactl is missing or fails.
NumaTopology read_numa_topology();

// Runs `<numactl_argv> true`; nullopt when it succeeds, else numactl's message (stderr).
// numactl refuses -m/-p in containers without CAP_SYS_NICE; the launcher tries this before
// starting ranks, so a refused policy is a fallback, not a dead job.
std::optional<std::string> numactl_error(const std::vector<std::string>& numactl_argv);

// Whether a numactl message is the "no permission for memory policy" kind (fall back) rather
// than a real error (stop).
bool is_numa_permission_error(std::string_view message);

}  // namespace deepspeed::launcher
