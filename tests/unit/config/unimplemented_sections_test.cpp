// Sections the config accepts but the engine does not act on: each one written gives a
// warning that names it, says it has no effect and points into the file; one switched off
// with "enabled": false, or null, gives none.
#include <gtest/gtest.h>

#include <algorithm>

#include <deepspeed/config.h>

#include "config/unimplemented_sections.h"
#include "test_helpers.h"

namespace deepspeed {
// A named namespace: this binary's test files are compiled together (unity build).
namespace unimplemented_sections_test {

TEST(UnimplementedSections, EachWrittenSectionIsAWarningNamingItAndWhereItIs) {
  for (std::string_view name : config_detail::unimplemented_sections()) {
    const std::string section(name);
    const auto c = parse_config("{\"train_batch_size\": 8,\n \"" + section + "\": {\"some_key\": 1}}", 1,
                                "ds_config.json");
    EXPECT_TRUE(testing::has_warning(c, section + ": deepspeed-cpp does not implement this section yet: it has no "
                                                  "effect (at ds_config.json:2:"))
        << section << ": " << (c.warnings.empty() ? std::string("no warning") : c.warnings.front());
  }
}

TEST(UnimplementedSections, TheIssueListIsCovered) {
  const auto& list = config_detail::unimplemented_sections();
  for (const char* name : {"expert_parallel",
                           "compression_training", "data_efficiency", "curriculum_learning", "autotuning"}) {
    EXPECT_NE(std::find(list.begin(), list.end(), name), list.end()) << name;
  }
}

TEST(UnimplementedSections, DisabledOrNullSectionsAreQuiet) {
  const auto c = parse_config(R"({"train_batch_size": 8, "autotuning": {"enabled": false},
                                  "curriculum_learning": {"enabled": false, "curriculum_type": "seqlen"},
                                  "sparse_attention": null})",
                              1);
  EXPECT_TRUE(c.warnings.empty()) << c.warnings.front();
}

TEST(UnimplementedSections, EnabledSectionsWarnToo) {
  const auto c = parse_config(R"({"train_batch_size": 8, "data_efficiency": {"enabled": true}})", 1);
  EXPECT_TRUE(testing::has_warning(c, "data_efficiency: deepspeed-cpp does not implement this section yet"));
}

}  // namespace unimplemented_sections_test
}  // namespace deepspeed
