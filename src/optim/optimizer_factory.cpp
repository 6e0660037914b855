// make_optimizer: the "optimizer" section of ds_config.json to an Optimizer, resolving the
// type name as DeepSpeed's engine does (docs/optimizers.md, "Optimizers").
#include <algorithm>
#include <cctype>
#include <set>

#include "deepspeed/errors.h"
#include "deepspeed/optimizer.h"
#include "optim/adagrad.h"
#include "optim/adam.h"
#include "optim/lamb.h"
#include "optim/lion.h"
#include "optim/params_reader.h"
#include "optim/sgd.h"

namespace deepspeed {

namespace {

// DeepSpeed lower-cases the type only when the lower-case form is one of its own names.
const std::set<std::string> kDeepSpeedNames = {
    "adagrad", "adam",  "adamw",  "lamb",  "onebitadam", "zerooneadam",
    "onebitlamb", "muadam", "muadamw", "musgd", "lion", "muon"};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

std::unique_ptr<Optimizer> make_optimizer(const std::string& type, const nlohmann::json& params,
                                          std::vector<ParamGroup> groups) {
  return make_optimizer(type, params, std::move(groups), OptimizerOptions{});
}

std::unique_ptr<Optimizer> make_optimizer(const std::string& type, const nlohmann::json& params,
                                          std::vector<ParamGroup> groups,
                                          const OptimizerOptions& options) {
  if (params.is_object() && params.contains("max_grad_norm")) {
    throw ConfigError("optimizer.params.max_grad_norm",
                      "'max_grad_norm' is not supported as an optimizer parameter, please switch to "
                      "using the deepspeed parameter 'gradient_clipping' see: "
                      "https://www.deepspeed.ai/docs/config-json/#gradient-clipping for more details");
  }
  const std::string name = kDeepSpeedNames.count(lower(type)) ? lower(type) : type;
  if (name == "adam" || name == "adamw") {
    return Adam::create(name == "adamw", params, std::move(groups), options);
  }
  if (name == "lamb") return Lamb::create(params, std::move(groups));
  if (name == "adagrad") return Adagrad::create(params, std::move(groups), options);
  if (name == "lion") return Lion::create(params, std::move(groups), options);
  if (name == "SGD") return Sgd::create(params, std::move(groups));

  if (name == "onebitadam" || name == "zerooneadam" || name == "onebitlamb") {
    throw ConfigError("optimizer.type", "DeepSpeed optimizer '" + type +
                                            "' communicates over the data-parallel group: initialize() builds it "
                                            "from the config, a program with make_onebit_optimizer "
                                            "(deepspeed/onebit.h)");
  }
  if (kDeepSpeedNames.count(name)) {
    throw ConfigError("optimizer.type", "DeepSpeed optimizer '" + type +
                                            "' is not available in deepspeed-cpp (available: "
                                            "Adam, AdamW, Lamb, Adagrad, Lion, SGD)");
  }
  // Unknown: DeepSpeed's AssertionError text, plus the nearest name we know.
  const std::set<std::string> known = {"Adam", "AdamW", "Lamb", "Adagrad", "Lion", "SGD"};
  std::string message = type + " is not a supported DeepSpeed Optimizer";
  const std::string near = nearest_key(type, known);
  if (!near.empty() && edit_distance(type, near) <= std::max<size_t>(2, type.size() / 2)) {
    message += "; did you mean '" + near + "'?";
  }
  message += " (available: Adam, AdamW, Lamb, Adagrad, Lion, and torch.optim's SGD)";
  throw ConfigError("optimizer.type", message);
}

}  // namespace deepspeed
