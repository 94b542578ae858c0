// Command-line helpers shared by the unit tests of the parser (cli_test, load_test).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "apps/cli.hpp"
#include "core/error.hpp"

namespace fabscope::testing_cli {

// parse({"pairs", "--iters", "5"}): argv without the program name.
inline apps::Invocation parse(std::vector<std::string> args) {
  args.insert(args.begin(), "fabscope");
  return apps::parse_command_line(args);
}

// The one-line core::UsageError message the arguments must produce ("" and a test failure if none).
inline std::string usage_error(std::vector<std::string> args) {
  try {
    (void)parse(std::move(args));
  } catch (const core::UsageError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "more than one line: " << msg;
    return msg;
  }
  ADD_FAILURE() << "no usage error";
  return "";
}

}  // namespace fabscope::testing_cli
