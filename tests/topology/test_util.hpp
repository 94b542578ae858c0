// Helpers shared by the topology tests.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace fabscope::topology::testing {

// Runs f, expects a core::UsageError whose message contains every one of `parts`.
inline void expect_usage_error(const std::function<void()>& f,
                               const std::vector<std::string>& parts,
                               const std::string& context = "") {
  try {
    f();
    ADD_FAILURE() << "no UsageError; expected one mentioning '" << (parts.empty() ? "" : parts[0])
                  << "' " << context;
  } catch (const core::UsageError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(e.code(), core::ExitCode::kUsage);
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "message is not one line: " << msg;
    for (const auto& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos)
          << "'" << p << "' not in: " << msg << " " << context;
  }
}

inline std::string data_path(const std::string& name) {
  return std::string(FABSCOPE_TOPO_DATA) + "/" + name;
}
inline std::string config_path(const std::string& name) {
  return std::string(FABSCOPE_TOPO_CONFIGS) + "/" + name;
}

}  // namespace fabscope::topology::testing
