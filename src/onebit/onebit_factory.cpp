#include <algorithm>
#include <cctype>

#include <deepspeed/errors.h>
#include <deepspeed/onebit.h>

#include "onebit/onebit_adam.h"
#include "onebit/onebit_lamb.h"
#include "onebit/zero_one_adam.h"

namespace deepspeed {
namespace {

std::string lowered(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

bool is_onebit_optimizer(const std::string& type) {
  const auto l = lowered(type);
  return l == "onebitadam" || l == "zerooneadam" || l == "onebitlamb";
}

std::unique_ptr<Optimizer> make_onebit_optimizer(const std::string& type, const nlohmann::json& params,
                                                 std::vector<ParamGroup> groups,
                                                 std::shared_ptr<comm::ProcessGroup> data_parallel) {
  const auto l = lowered(type);
  const auto& p = params.is_null() ? nlohmann::json::object() : params;
  if (l == "onebitadam") return OneBitAdam::create(p, std::move(groups), std::move(data_parallel));
  if (l == "zerooneadam") return ZeroOneAdam::create(p, std::move(groups), std::move(data_parallel));
  if (l == "onebitlamb") return OneBitLamb::create(p, std::move(groups), std::move(data_parallel));
  throw ConfigError("optimizer.type", "\"" + type + "\" is not one of OneBitAdam, ZeroOneAdam, OneBitLamb");
}

}  // namespace deepspeed
