// How gradients travel between ranks: in buckets, each a flat buffer filled with parameters
// in reverse registration order (roughly the order in which backward produces their
// gradients), so that a bucket's collective can start while backward goes on.
//
// Parameters of one optimizer group share buckets; groups never mix, so a rank's slices of
// a group's buckets concatenate into that group's flat partition (ZeRO). A group's flat space
// (its parameters, last first, padded with zeros to a multiple of `partitions`) is cut into
// buckets of `bucket_elements` (rounded down to a multiple of `partitions`): every bucket
// splits into `partitions` equal slices, a parameter may straddle two buckets, and rank r's
// share of a group is exactly ceil(numel / partitions) elements.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace deepspeed {

struct BucketPlan {
  // A run of one parameter's elements inside one bucket.
  struct Entry {
    int64_t param = 0;           // index into the parameter list
    int64_t param_offset = 0;    // first element, in the parameter's flattened order
    int64_t bucket_offset = 0;   // where it sits in the bucket's buffer
    int64_t length = 0;
  };
  struct Bucket {
    int64_t group = 0;
    int64_t group_offset = 0;    // where the bucket starts in its group's flat space
    int64_t size = 0;            // elements, a multiple of partitions (padding included)
    int64_t slice = 0;           // size / partitions: what each rank owns of it
    std::vector<Entry> entries;  // in buffer order
  };

  int64_t partitions = 1;
  std::vector<Bucket> buckets;                       // in launch order
  std::vector<std::vector<int64_t>> buckets_of;      // parameter -> buckets holding it
  std::vector<int64_t> group_size;                   // padded flat size of each group

  // Elements of group g that each rank owns: group_size[g] / partitions.
  int64_t partition_size(int64_t group) const { return group_size[group] / partitions; }
};

// numels[i] and groups[i]: parameter i's element count and optimizer group (0-based,
// dense). bucket_elements < partitions is taken as partitions. Buckets are numbered in the
// order they fill up during a reverse walk over the parameters; each group's last (partly
// filled) bucket follows, in group order. `classes` (empty: all alike) keeps parameters of
// different classes out of one bucket: a bucket closes early where the class changes (ZeRO-3
// keeps its persistent parameters' buckets gathered, and no other parameter should share
// them). The same inputs give the same plan on every rank.
// A run of one parameter's elements that one rank owns: where it sits in that rank's flat
// partition of the bucket's group, and in the parameter (flattened).
struct OwnedRun {
  int64_t param = 0;
  int64_t partition_offset = 0;
  int64_t param_offset = 0;
  int64_t length = 0;
};

// Calls fn(OwnedRun) for every run of parameter elements that `rank` owns in bucket `bucket`
// (its slice of the bucket, cut by the parameters it holds), in buffer order. Padding is owned
// by nobody. Every piece of ZeRO that maps a rank's partition to parameters goes through this.
template <typename Fn>
void for_each_owned_run(const BucketPlan& plan, int64_t bucket, int64_t rank, Fn&& fn) {
  const auto& b = plan.buckets[static_cast<std::size_t>(bucket)];
  const int64_t lo = rank * b.slice;
  const int64_t hi = lo + b.slice;
  for (const auto& e : b.entries) {
    const int64_t a = std::max(lo, e.bucket_offset);
    const int64_t z = std::min(hi, e.bucket_offset + e.length);
    if (a >= z) continue;
    fn(OwnedRun{e.param, b.group_offset / plan.partitions + (a - lo), e.param_offset + (a - e.bucket_offset), z - a});
  }
}

BucketPlan plan_buckets(const std::vector<int64_t>& numels, const std::vector<int64_t>& groups,
                        int64_t bucket_elements, int64_t partitions, const std::vector<int64_t>& classes = {});

}  // namespace deepspeed
