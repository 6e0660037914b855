// ds_report: what this deepspeed-cpp build contains and what this machine offers
// (docs/launcher.md, "ds_report").
#include <CLI/CLI.hpp>

#include <iostream>

#include "deepspeed/errors.h"
#include "deepspeed/ops_config.h"
#include "deepspeed/version.h"
#include "environment_report.h"
#if DEEPSPEED_OP_ASYNC_IO_BUILT
#include "io/async_io/io_queue.h"
#endif
#include "op_report.h"
#include "report_format.h"

namespace dr = deepspeed::report;

int main(int argc, char** argv) {
  try {
    CLI::App app{"ds_report: this build's native ops and the machine's environment", "ds_report"};
    bool hide_ops = false, hide_warnings = false;
    app.add_flag("--hide_operator_status", hide_ops, "Do not print the op table");
    app.add_flag("--hide_errors_and_warnings", hide_warnings, "Do not print why ops are unavailable");
    CLI11_PARSE(app, argc, argv);

    const dr::Style style = dr::detect_style();
    const dr::EnvironmentReport env = dr::environment_report();
    if (!hide_ops) {
      std::cout << dr::kSeparator << "\n"
                << "DeepSpeed C++/CUDA extension op report\n"
                << dr::kSeparator << "\n"
                << "NOTE: deepspeed-cpp has no JIT compilation: an op is usable\n"
                << "      only if it was built (DS_BUILD_OPS / DS_BUILD_<OP> at\n"
                << "      configure time). Op compatibility means that your system\n"
                << "      meets the op's requirements.\n"
                << dr::kSeparator << "\n"
                << dr::op_line("op name", "installed", 9, "compatible") << "\n"
                << dr::kSeparator << "\n";
      dr::MachineFacts facts{DEEPSPEED_HAVE_CUDA_BUILD != 0, env.gpu_count, ""};
#if DEEPSPEED_OP_ASYNC_IO_BUILT
      facts.aio_runtime_problem = deepspeed::ops::aio::io_uring_unavailable_reason();
#endif
      const auto ops = dr::op_statuses(facts);
      for (const auto& op : ops) {
        if (!hide_warnings && !op.reason.empty())
          std::cout << " " << style.warning() << "  " << op.name << ": " << op.reason << "\n";
        const std::string installed = op.installed ? style.yes() : style.no();
        std::cout << dr::op_line(op.name, installed, op.installed ? 5 : 4, op.compatible ? style.okay() : style.no())
                  << "\n";
      }
      std::cout << dr::kSeparator << "\n";
    }
    std::cout << "DeepSpeed general environment info:\n";
    for (const auto& [name, value] : env.lines) std::cout << dr::env_line(name, value) << "\n";
    if (!hide_warnings)
      for (const auto& w : env.warnings) std::cout << " " << style.warning() << "  " << w << "\n";
    return 0;
  } catch (const deepspeed::Error& e) {
    std::cerr << "ds_report: error: " << e.what() << std::endl;
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "ds_report: error: " << e.what() << std::endl;
    return 1;
  }
}
