// DeepSpeed's partition_uniform and partition_balanced (ds_utils), with the same tie-breaking:
// partition_balanced keeps the last split point whose cost is <= the best so far, and its
// running minimum starts at +inf for the empty prefix, as DeepSpeed's numpy tables do.
#include <deepspeed/pipe_partition.h>

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

namespace deepspeed::pipe {

std::vector<int64_t> partition_uniform(int64_t num_items, int64_t num_parts) {
  if (num_parts < 1) throw std::invalid_argument("partition_uniform: num_parts must be >= 1, got " + std::to_string(num_parts));
  if (num_items < 0) throw std::invalid_argument("partition_uniform: num_items must be >= 0, got " + std::to_string(num_items));
  std::vector<int64_t> parts(static_cast<size_t>(num_parts + 1));
  if (num_items <= num_parts) {
    for (int64_t p = 0; p <= num_parts; ++p) parts[p] = std::min(p, num_items);
    return parts;
  }
  const int64_t chunk = num_items / num_parts;
  const int64_t residual = num_items - chunk * num_parts;
  // The first `residual` parts take one item more.
  for (int64_t p = 0; p <= num_parts; ++p) parts[p] = p * chunk + std::min(p, residual);
  return parts;
}

std::vector<int64_t> partition_balanced(const std::vector<int64_t>& weights, int64_t num_parts) {
  if (num_parts < 1) throw std::invalid_argument("partition_balanced: num_parts must be >= 1, got " + std::to_string(num_parts));
  for (size_t i = 0; i < weights.size(); ++i) {
    if (weights[i] < 0) {
      throw std::invalid_argument("partition_balanced: weight " + std::to_string(i) + " is negative (" +
                                  std::to_string(weights[i]) + ")");
    }
  }
  const auto n = static_cast<int64_t>(weights.size());
  const int64_t m = num_parts;
  if (n <= m) return partition_uniform(n, m);

  constexpr double kInf = std::numeric_limits<double>::infinity();
  const auto cols = static_cast<size_t>(m + 1);
  auto at = [cols](std::vector<double>& t, int64_t i, int64_t j) -> double& { return t[static_cast<size_t>(i) * cols + j]; };
  std::vector<double> dp_max((n + 1) * cols, kInf), dp_min((n + 1) * cols, kInf), dp_cost((n + 1) * cols, kInf);
  std::vector<int64_t> position((n + 1) * cols, 0);
  std::vector<double> prefix(n + 1, 0.0);
  for (int64_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + static_cast<double>(weights[i]);

  at(dp_max, 0, 0) = 0;
  at(dp_cost, 0, 0) = 0;
  for (int64_t i = 1; i <= n; ++i) {
    for (int64_t j = 1; j <= std::min(i, m); ++j) {
      for (int64_t k = 0; k < i; ++k) {
        const double part = prefix[i] - prefix[k];
        const double max_sum = std::max(at(dp_max, k, j - 1), part);
        const double min_sum = std::min(at(dp_min, k, j - 1), part);
        const double cost = max_sum - min_sum;
        if (at(dp_cost, i, j) >= cost) {
          at(dp_cost, i, j) = cost;
          at(dp_max, i, j) = max_sum;
          at(dp_min, i, j) = min_sum;
          position[static_cast<size_t>(i) * cols + j] = k;
        }
      }
    }
  }
  std::vector<int64_t> parts{n};
  for (int64_t j = m; j >= 1; --j) parts.push_back(position[static_cast<size_t>(parts.back()) * cols + j]);
  std::reverse(parts.begin(), parts.end());
  return parts;
}

}  // namespace deepspeed::pipe
