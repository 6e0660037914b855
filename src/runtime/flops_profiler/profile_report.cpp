#include "runtime/flops_profiler/profile_report.h"

#include <algorithm>
#include <string>

#include <fmt/format.h>

#include <deepspeed/optimizer.h>

namespace deepspeed::flops {
namespace {

// Python's f"{round(x, precision):g}".
std::string round_g(double x, int precision = 2) {
  const double rounded = std::stod(fmt::format("{:.{}f}", x, precision));
  return fmt::format("{:g}", rounded);
}

std::string percent(double part, double total) { return round_g(total != 0 ? 100.0 * part / total : 0.0) + "%"; }

// Python's '{:<70}  {:<8}'.format(label, value).
std::string summary_line(const std::string& label, const std::string& value) {
  return fmt::format("{:<70}  {:<8}", label, value);
}

// Python's repr of a {str: str} dict.
std::string dict_repr(const std::vector<std::pair<std::string, std::string>>& items) {
  std::string text = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) text += ", ";
    text += "'" + items[i].first + "': '" + items[i].second + "'";
  }
  return text + "}";
}

struct TypeTotals {
  std::string type;
  double macs = 0, params = 0, seconds = 0;
};

void print_aggregated(std::ostream& out, const ModuleTree& tree, const std::vector<ModuleProfile>& profiles,
                      const ProfilePrintOptions& options) {
  // Per depth, per class name in order of first appearance (preorder), as DeepSpeed's walk.
  std::vector<std::vector<TypeTotals>> info;
  for (std::size_t i = 0; i < tree.nodes().size(); ++i) {
    const auto& node = tree.nodes()[i];
    if (static_cast<int>(info.size()) <= node.depth) info.resize(node.depth + 1);
    auto& level = info[node.depth];
    auto it = std::find_if(level.begin(), level.end(), [&](const TypeTotals& t) { return t.type == node.type; });
    if (it == level.end()) it = level.insert(level.end(), TypeTotals{node.type});
    it->macs += static_cast<double>(profiles[i].macs);
    it->params += static_cast<double>(profiles[i].params);
    it->seconds += profiles[i].seconds;
  }
  // -1: every depth, the innermost included (DeepSpeed's range(len(info) - 1) stops one short).
  const int64_t depths = options.module_depth < 0 ? static_cast<int64_t>(info.size())
                                                   : std::min<int64_t>(options.module_depth, info.size());
  out << "Top " << options.top_modules << " modules in terms of params, MACs or fwd latency at different model depths:\n";
  for (int64_t d = 0; d < depths; ++d) {
    const auto& level = info[d];
    const auto count = static_cast<std::size_t>(std::clamp<int64_t>(options.top_modules, 0, level.size()));
    auto top = [&](double TypeTotals::*field, std::string (*format)(double)) {
      std::vector<TypeTotals> sorted = level;
      std::stable_sort(sorted.begin(), sorted.end(),
                       [&](const TypeTotals& a, const TypeTotals& b) { return a.*field > b.*field; });
      std::vector<std::pair<std::string, std::string>> items;
      for (std::size_t i = 0; i < count; ++i) items.emplace_back(sorted[i].type, format(sorted[i].*field));
      return dict_repr(items);
    };
    out << "depth " << d << ":\n";
    out << "    params      - " << top(&TypeTotals::params, params_to_string) << "\n";
    out << "    MACs        - " << top(&TypeTotals::macs, macs_to_string) << "\n";
    out << "    fwd latency - " << top(&TypeTotals::seconds, duration_to_string) << "\n";
  }
}

// Python's nn.Module.__repr__ with DeepSpeed's extra_repr: "Type(<profile>, <extra>)" and
// the children indented below.
std::string module_repr(const ModuleTree& tree, const std::vector<ModuleProfile>& profiles, int index) {
  const auto& node = tree.nodes()[index];
  const auto& p = profiles[index];
  const auto& total = profiles[0];
  std::string extra = fmt::format("{} = {} Params, {} = {} MACs, {} = {} latency, {}", params_to_string(p.params),
                                  percent(p.params, total.params), macs_to_string(p.macs), percent(p.macs, total.macs),
                                  duration_to_string(p.seconds), percent(p.seconds, total.seconds),
                                  flops_to_string(p.seconds > 0 ? std::stod(fmt::format("{:.2f}", p.flops / p.seconds)) : 0.0));
  if (!node.extra_repr.empty()) extra += ", " + node.extra_repr;
  std::vector<std::string> lines = {extra};
  for (int c : node.children) {
    std::string child = module_repr(tree, profiles, c);
    // _addindent(child, 2): every line after the first moves right by two.
    std::string indented;
    for (char ch : child) {
      indented += ch;
      if (ch == '\n') indented += "  ";
    }
    lines.push_back("(" + tree.nodes()[c].key + "): " + indented);
  }
  std::string text = node.type + "(";
  if (node.children.empty()) {
    text += extra;
  } else {
    text += "\n";
    for (const auto& line : lines) text += "  " + line + "\n";
  }
  return text + ")";
}

}  // namespace

std::string number_to_string(double num, int precision) {
  struct Unit {
    double magnitude;
    const char* name;
  };
  const Unit unit = num >= 1e12                ? Unit{1e12, "T"}
                    : num >= 1e9               ? Unit{1e9, "G"}
                    : num >= 1e6               ? Unit{1e6, "M"}
                    : num >= 1e3               ? Unit{1e3, "K"}
                    : (num >= 1 || num == 0)   ? Unit{1, ""}
                    : num >= 1e-3              ? Unit{1e-3, "m"}
                                               : Unit{1e-6, "u"};
  return round_g(num / unit.magnitude, precision) + " " + unit.name;
}

std::string macs_to_string(double macs) { return number_to_string(macs) + "MACs"; }
std::string flops_to_string(double flops) { return number_to_string(flops) + "FLOPS"; }
std::string duration_to_string(double seconds) { return number_to_string(seconds) + "s"; }

std::string params_to_string(double params) {
  std::string text = number_to_string(params);
  std::replace(text.begin(), text.end(), 'G', 'B');
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

void print_profile(std::ostream& out, const ModuleTree& tree, const std::vector<ModuleProfile>& profiles,
                   const ProfilePrintOptions& options, const std::optional<ProfileContext>& context,
                   double recompute_fwd_factor) {
  const ModuleProfile& total = profiles.at(0);
  const int64_t mp = context ? context->mp_world_size : 1;
  const double flops = static_cast<double>(total.flops);

  out << "\n-------------------------- DeepSpeed Flops Profiler --------------------------\n";
  out << "Profile Summary at step " << options.profile_step << ":\n";
  out << "Notations:\n"
         "data parallel size (dp_size), model parallel size(mp_size),\n"
         "number of parameters (params), number of multiply-accumulate operations(MACs),\n"
         "number of floating-point operations (flops), floating-point operations per second (FLOPS),\n"
         "fwd latency (forward propagation latency), bwd latency (backward propagation latency),\n"
         "step (weights update latency), iter latency (sum of fwd, bwd and step latency)\n\n";
  if (context) {
    out << summary_line("world size: ", std::to_string(context->world_size)) << "\n";
    out << summary_line("data parallel size: ", std::to_string(context->dp_world_size)) << "\n";
    out << summary_line("model parallel size: ", std::to_string(context->mp_world_size)) << "\n";
    out << summary_line("batch size per GPU: ", std::to_string(context->micro_batch_size)) << "\n";
  }
  out << summary_line("params per GPU: ", params_to_string(total.params)) << "\n";
  out << summary_line("params of model = params per GPU * mp_size: ", params_to_string(total.params * mp)) << "\n";
  out << summary_line("fwd MACs per GPU: ", macs_to_string(total.macs)) << "\n";
  out << summary_line("fwd flops per GPU: ", number_to_string(flops)) << "\n";
  out << summary_line("fwd flops of model = fwd flops per GPU * mp_size: ", number_to_string(flops * mp)) << "\n";

  const double fwd = context && context->forward_ms ? *context->forward_ms / 1000.0 : total.seconds;
  auto rate = [](double work, double seconds) { return seconds > 0 ? work / seconds : 0.0; };
  out << summary_line("fwd latency: ", duration_to_string(fwd)) << "\n";
  out << summary_line("fwd FLOPS per GPU = fwd flops per GPU / fwd latency: ", flops_to_string(rate(flops, fwd)))
      << "\n";
  if (context && context->backward_ms && context->step_ms) {
    const double bwd_factor = 2 + recompute_fwd_factor;
    const double bwd = *context->backward_ms / 1000.0;
    const double step = *context->step_ms / 1000.0;
    const std::string f = fmt::format("{:g}", bwd_factor), f1 = fmt::format("{:g}", bwd_factor + 1);
    out << summary_line("bwd latency: ", duration_to_string(bwd)) << "\n";
    out << summary_line("bwd FLOPS per GPU = " + f + " * fwd flops per GPU / bwd latency: ",
                        flops_to_string(rate(bwd_factor * flops, bwd)))
        << "\n";
    out << summary_line("fwd+bwd FLOPS per GPU = " + f1 + " * fwd flops per GPU / (fwd+bwd latency): ",
                        flops_to_string(rate((bwd_factor + 1) * flops, fwd + bwd)))
        << "\n";
    out << summary_line("step latency: ", duration_to_string(step)) << "\n";
    const double iter = fwd + bwd + step;
    out << summary_line("iter latency: ", duration_to_string(iter)) << "\n";
    out << summary_line("FLOPS per GPU = " + f1 + " * fwd flops per GPU / iter latency: ",
                        flops_to_string(rate((bwd_factor + 1) * flops, iter)))
        << "\n";
    const double samples = static_cast<double>(context->micro_batch_size * context->world_size);
    out << summary_line("samples/second: ", python_repr(std::stod(fmt::format("{:.2f}", rate(samples, iter)))))
        << "\n";
  }

  out << "\n----------------------------- Aggregated Profile per GPU -----------------------------\n";
  print_aggregated(out, tree, profiles, options);

  if (options.detailed) {
    out << "\n------------------------------ Detailed Profile per GPU ------------------------------\n";
    out << "Each module profile is listed after its name in the following order: \n"
           "params, percentage of total params, MACs, percentage of total MACs, fwd latency, percentage of total "
           "fwd latency, fwd FLOPS\n";
    out << "\nNote: 1. A module can have torch::nn::functional calls or operators of its own to compute logits "
           "(e.g. cross_entropy). They are not counted as submodules, thus not to be printed out. However they make "
           "up the difference between a parent's MACs (or latency) and the sum of its submodules'.\n"
           "2. Number of floating-point operations is a theoretical estimation, thus FLOPS computed using that "
           "could be larger than the maximum system throughput.\n"
           "3. The fwd latency listed in the top module's profile is the time of the operators its forward ran, "
           "thus it's less than the fwd latency shown above which is captured in DeepSpeed.\n\n";
    out << module_repr(tree, profiles, 0) << "\n";
  }
  out << "------------------------------------------------------------------------------\n";
}

}  // namespace deepspeed::flops
