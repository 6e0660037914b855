// Where each rank sits on the axes of parallelism (DeepSpeed's ProcessTopology,
// deepspeed/runtime/pipe/topology.py): named axes with a length each, laid out row-major, so
// that the last axis varies fastest between consecutive ranks. With DeepSpeed's axis order
// (pipe, data, model) tensor-parallel peers are neighbours (one node's fast links carry their
// all-reduces) and pipeline stages are farthest apart.
//
// A pure function of (axes, dims): no process group, no communication. Every method answers as
// DeepSpeed's does for the same axes and dims (tests compare them shape by shape).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace deepspeed {

class ProcessTopology {
 public:
  // Throws std::invalid_argument for no axes, a repeated or empty name, a length below 1, or
  // axes and dims of different lengths.
  ProcessTopology(std::vector<std::string> axes, std::vector<int64_t> dims);

  const std::vector<std::string>& get_axis_names() const { return axes_; }
  const std::vector<int64_t>& dims() const { return dims_; }
  // The length of an axis; 0 for an axis this topology does not have (as DeepSpeed).
  int64_t get_dim(std::string_view axis) const;
  int64_t world_size() const { return world_size_; }

  // The rank at these coordinates; every axis must be given (use filter_match for slices).
  int64_t get_rank(const std::map<std::string, int64_t>& coord) const;
  // A rank's coordinate on every axis, in get_axis_names() order.
  std::vector<int64_t> get_coord(int64_t rank) const;
  // A rank's coordinate on one axis.
  int64_t get_coord(int64_t rank, std::string_view axis) const;

  // The groups along `axis`: for each combination of the other axes (row-major), the ranks
  // that differ only on `axis`, in axis order. Empty for an axis this topology does not have.
  std::vector<std::vector<int64_t>> get_axis_comm_lists(std::string_view axis) const;
  // The ranks whose coordinates equal every one given, in rank order.
  std::vector<int64_t> filter_match(const std::map<std::string, int64_t>& coord) const;
  // The ranks whose coordinate on `axis` is `index`, in rank order.
  std::vector<int64_t> get_axis_list(std::string_view axis, int64_t index) const;
  // "model_01" for rank 1 of pipe x data x model (2, 1, 2): the axes not omitted, each as
  // name, inner_sep, two-digit coordinate, joined by outer_sep. Checkpoint file names use it.
  std::string get_rank_repr(int64_t rank, const std::vector<std::string>& omit_axes = {"data", "pipe"},
                            std::string_view inner_sep = "_", std::string_view outer_sep = "-") const;

 private:
  std::size_t axis_index(std::string_view axis) const;  // throws for an unknown axis
  void check_rank(int64_t rank) const;

  std::vector<std::string> axes_;
  std::vector<int64_t> dims_;
  std::vector<int64_t> strides_;
  int64_t world_size_ = 1;
};

// DeepSpeed's two named layouts: axes (pipe, data), and (pipe, data, model).
ProcessTopology PipeDataParallelTopology(int64_t num_pp, int64_t num_dp);
ProcessTopology PipeModelDataParallelTopology(int64_t num_pp, int64_t num_mp, int64_t num_dp);

}  // namespace deepspeed
