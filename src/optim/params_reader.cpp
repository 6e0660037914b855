#include "optim/params_reader.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>

#include "deepspeed/errors.h"

namespace deepspeed {

namespace {

const nlohmann::json& empty_object() {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  return kEmpty;
}

bool means_default(const nlohmann::json& v) { return v.is_null() || (v.is_string() && v == "auto"); }

std::string describe(const nlohmann::json& v) {
  std::string text = v.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return std::string(v.type_name()) + " " + text;
}

}  // namespace

ParamReader::ParamReader(const nlohmann::json& params, std::string section, std::string owner)
    : params_(params.is_null() ? empty_object() : params),
      section_(std::move(section)),
      owner_(std::move(owner)) {
  if (!params_.is_object()) {
    throw ConfigError(section_, "expected an object of " + owner_ + " parameters, got " +
                                    describe(params_));
  }
}

bool ParamReader::has(const std::string& key) const {
  auto it = params_.find(key);
  return it != params_.end() && !means_default(*it);
}

const nlohmann::json* ParamReader::find(const std::string& key) {
  accepted_.insert(key);
  auto it = params_.find(key);
  if (it == params_.end() || means_default(*it)) return nullptr;
  return &*it;
}

void ParamReader::type_error(const std::string& key, const char* expected,
                             const nlohmann::json& got) const {
  throw ConfigError(path(key), std::string("expected ") + expected + ", got " + describe(got));
}

std::optional<double> ParamReader::number(const std::string& key) {
  const nlohmann::json* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_number()) type_error(key, "a number", *v);
  return v->get<double>();
}

std::optional<bool> ParamReader::boolean(const std::string& key) {
  const nlohmann::json* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) type_error(key, "true or false", *v);
  return v->get<bool>();
}

std::optional<int64_t> ParamReader::integer(const std::string& key) {
  const nlohmann::json* v = find(key);
  if (!v) return std::nullopt;
  if (v->is_number_integer()) return v->get<int64_t>();
  if (v->is_number_float()) {
    const double d = v->get<double>();
    // 2^63 is the first double that no longer fits in int64.
    if (std::isfinite(d) && d == std::floor(d) && std::abs(d) < 9.2233720368547758e18) {
      return static_cast<int64_t>(d);
    }
  }
  type_error(key, "an integer", *v);
}

std::optional<std::string> ParamReader::string(const std::string& key) {
  const nlohmann::json* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_string()) type_error(key, "a string", *v);
  return v->get<std::string>();
}

std::optional<std::array<double, 2>> ParamReader::pair(const std::string& key) {
  const nlohmann::json* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_array() || v->size() != 2 || !(*v)[0].is_number() || !(*v)[1].is_number()) {
    type_error(key, "a list of two numbers", *v);
  }
  return std::array<double, 2>{(*v)[0].get<double>(), (*v)[1].get<double>()};
}

std::optional<std::vector<double>> ParamReader::per_group(const std::string& key, size_t groups,
                                                          const std::string& name_in_message) {
  const nlohmann::json* v = find(key);
  if (!v) return std::nullopt;
  if (v->is_number()) return std::vector<double>(groups, v->get<double>());
  if (!v->is_array()) type_error(key, "a number or a list of numbers", *v);
  if (v->size() != groups) {
    throw ConfigError(path(key), "expected " + std::to_string(groups) + " value for " +
                                     name_in_message + ", got " + std::to_string(v->size()));
  }
  std::vector<double> values;
  for (const auto& item : *v) {
    if (!item.is_number()) type_error(key, "a number or a list of numbers", *v);
    values.push_back(item.get<double>());
  }
  return values;
}

void ParamReader::reject_unknown() const {
  for (const auto& [key, value] : params_.items()) {
    if (accepted_.count(key)) continue;
    std::string message = "unknown parameter '" + key + "' for " + owner_;
    const std::string near = nearest_key(key, accepted_);
    if (!near.empty()) message += "; did you mean '" + near + "'?";
    message += " (accepted:";
    for (const auto& k : accepted_) message += " " + k;
    message += ")";
    throw ConfigError(path(key), message);
  }
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      const size_t cost = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                                  std::tolower(static_cast<unsigned char>(b[j - 1]))
                              ? 0
                              : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + cost});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string nearest_key(const std::string& key, const std::set<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (const auto& c : candidates) {
    const size_t d = edit_distance(key, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

}  // namespace deepspeed
