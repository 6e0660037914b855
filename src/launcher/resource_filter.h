// Selecting part of the hostfile: -i/--include, -e/--exclude, --num_nodes, --num_gpus.
//
// Filter grammar: NODE_SPEC[@NODE_SPEC...], NODE_SPEC = NAME[:SLOT[,SLOT...]], e.g.
// `worker-2:0@worker-3:0,1`. Specs naming the same host are merged and slots de-duplicated.
// include: only the named hosts; a bare NAME means all of its slots (docs/compatibility.md,
//          DeepSpeed 0.19.6 selects nothing); NAME:SLOTS means those slots.
// exclude: everything but what is named; a bare NAME removes the host.
// Unknown host -> "Hostname 'h' not found in hostfile"; a slot the host does not have ->
// "No slot 'N' specified on host 'h'" (also for include, another README decision). Hosts
// left without slots are dropped; the result keeps hostfile order.
#pragma once

#include <string_view>

#include "launcher/resources.h"

namespace deepspeed::launcher {

// DeepSpeed's parse_resource_filter: `hosts` already holds each host's slot ids.
Resources parse_resource_filter(const Resources& hosts, std::string_view include,
                                std::string_view exclude);

// DeepSpeed's parse_inclusion_exclusion: the hostfile pool, each host expanded to
// [0, slots), then filtered.
Resources parse_inclusion_exclusion(const HostPool& pool, std::string_view include,
                                    std::string_view exclude);

// --num_nodes / --num_gpus after filtering (runner step 8). num_nodes > 0 keeps the first
// num_nodes hosts (more than there are is an error); num_gpus > 0 gives every kept host the
// slots [0, num_gpus), whatever its hostfile slot count (as DeepSpeed). -1 means unset.
Resources limit_resources(Resources resources, int num_nodes, int num_gpus);

}  // namespace deepspeed::launcher
