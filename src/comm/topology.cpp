#include <deepspeed/topology.h>

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace deepspeed {

ProcessTopology::ProcessTopology(std::vector<std::string> axes, std::vector<int64_t> dims)
    : axes_(std::move(axes)), dims_(std::move(dims)) {
  if (axes_.empty()) throw std::invalid_argument("ProcessTopology: no axes");
  if (axes_.size() != dims_.size()) {
    throw std::invalid_argument(
        fmt::format("ProcessTopology: {} axes but {} dims", axes_.size(), dims_.size()));
  }
  for (std::size_t i = 0; i < axes_.size(); ++i) {
    if (axes_[i].empty()) throw std::invalid_argument("ProcessTopology: an axis has no name");
    if (std::count(axes_.begin(), axes_.end(), axes_[i]) > 1) {
      throw std::invalid_argument(fmt::format("ProcessTopology: axis '{}' is named twice", axes_[i]));
    }
    if (dims_[i] < 1) {
      throw std::invalid_argument(
          fmt::format("ProcessTopology: axis '{}' has length {}; expected at least 1", axes_[i], dims_[i]));
    }
  }
  strides_.assign(axes_.size(), 1);
  for (std::size_t i = axes_.size(); i-- > 1;) strides_[i - 1] = strides_[i] * dims_[i];
  world_size_ = strides_[0] * dims_[0];
}

std::size_t ProcessTopology::axis_index(std::string_view axis) const {
  const auto it = std::find(axes_.begin(), axes_.end(), axis);
  if (it == axes_.end()) {
    throw std::invalid_argument(fmt::format("ProcessTopology: no axis '{}' (axes: {})", axis, fmt::join(axes_, ", ")));
  }
  return static_cast<std::size_t>(it - axes_.begin());
}

void ProcessTopology::check_rank(int64_t rank) const {
  if (rank < 0 || rank >= world_size_) {
    throw std::invalid_argument(fmt::format("rank {} not found in topology (world size {}).", rank, world_size_));
  }
}

int64_t ProcessTopology::get_dim(std::string_view axis) const {
  const auto it = std::find(axes_.begin(), axes_.end(), axis);
  return it == axes_.end() ? 0 : dims_[static_cast<std::size_t>(it - axes_.begin())];
}

int64_t ProcessTopology::get_rank(const std::map<std::string, int64_t>& coord) const {
  if (coord.size() != axes_.size()) {
    throw std::invalid_argument("get_rank() does not support slices. Use filter_match())");
  }
  int64_t rank = 0;
  for (const auto& [axis, value] : coord) {
    const std::size_t i = axis_index(axis);
    if (value < 0 || value >= dims_[i]) {
      throw std::invalid_argument(fmt::format("get_rank(): {}={} is outside the axis (length {})", axis, value, dims_[i]));
    }
    rank += value * strides_[i];
  }
  return rank;
}

std::vector<int64_t> ProcessTopology::get_coord(int64_t rank) const {
  check_rank(rank);
  std::vector<int64_t> coord(axes_.size());
  for (std::size_t i = 0; i < axes_.size(); ++i) coord[i] = (rank / strides_[i]) % dims_[i];
  return coord;
}

int64_t ProcessTopology::get_coord(int64_t rank, std::string_view axis) const {
  check_rank(rank);
  const std::size_t i = axis_index(axis);
  return (rank / strides_[i]) % dims_[i];
}

std::vector<std::vector<int64_t>> ProcessTopology::get_axis_comm_lists(std::string_view axis) const {
  const auto it = std::find(axes_.begin(), axes_.end(), axis);
  if (it == axes_.end()) return {};
  const std::size_t a = static_cast<std::size_t>(it - axes_.begin());
  // The other axes' combinations in row-major order are the ranks whose coordinate on `axis`
  // is 0, in rank order.
  std::vector<std::vector<int64_t>> lists;
  for (int64_t base = 0; base < world_size_; ++base) {
    if ((base / strides_[a]) % dims_[a] != 0) continue;
    std::vector<int64_t> list;
    for (int64_t k = 0; k < dims_[a]; ++k) list.push_back(base + k * strides_[a]);
    lists.push_back(std::move(list));
  }
  return lists;
}

std::vector<int64_t> ProcessTopology::filter_match(const std::map<std::string, int64_t>& coord) const {
  std::vector<std::pair<std::size_t, int64_t>> wanted;
  for (const auto& [axis, value] : coord) wanted.emplace_back(axis_index(axis), value);
  std::vector<int64_t> ranks;
  for (int64_t r = 0; r < world_size_; ++r) {
    const bool match = std::all_of(wanted.begin(), wanted.end(), [&](const auto& w) {
      return (r / strides_[w.first]) % dims_[w.first] == w.second;
    });
    if (match) ranks.push_back(r);
  }
  return ranks;
}

std::vector<int64_t> ProcessTopology::get_axis_list(std::string_view axis, int64_t index) const {
  return filter_match({{std::string(axis), index}});
}

std::string ProcessTopology::get_rank_repr(int64_t rank, const std::vector<std::string>& omit_axes,
                                           std::string_view inner_sep, std::string_view outer_sep) const {
  const auto coord = get_coord(rank);
  std::string out;
  for (std::size_t i = 0; i < axes_.size(); ++i) {
    if (std::find(omit_axes.begin(), omit_axes.end(), axes_[i]) != omit_axes.end()) continue;
    if (!out.empty()) out += outer_sep;
    out += fmt::format("{}{}{:02d}", axes_[i], inner_sep, coord[i]);
  }
  return out;
}

ProcessTopology PipeDataParallelTopology(int64_t num_pp, int64_t num_dp) {
  return ProcessTopology({"pipe", "data"}, {num_pp, num_dp});
}

ProcessTopology PipeModelDataParallelTopology(int64_t num_pp, int64_t num_mp, int64_t num_dp) {
  return ProcessTopology({"pipe", "data", "model"}, {num_pp, num_dp, num_mp});
}

}  // namespace deepspeed
