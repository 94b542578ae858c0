// Errors and exit codes shared by every fabscope module.
#pragma once

#include <stdexcept>
#include <string>

namespace fabscope::core {

// Process exit codes: ctest treats 77 as "skipped" (SKIP_RETURN_CODE).
enum class ExitCode : int { kOk = 0, kFailure = 1, kUsage = 2, kUnsupported = 77 };

// An error with the exit code the process should end with. The message is one line that names
// the call or input, the exact cause and, where one exists, a hint.
class Error : public std::runtime_error {
 public:
  Error(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  [[nodiscard]] ExitCode code() const noexcept { return code_; }

 private:
  ExitCode code_;
};

// Bad command line, configuration or input file: exit 2.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message) : Error(ExitCode::kUsage, message) {}
};

// The feature needs something this host lacks (an RDMA device, huge pages): exit 77.
class Unsupported : public Error {
 public:
  explicit Unsupported(const std::string& message) : Error(ExitCode::kUnsupported, message) {}
};

// A peer or an operation missed its deadline (a finding about the fabric, not a crash).
class Timeout : public Error {
 public:
  explicit Timeout(const std::string& message) : Error(ExitCode::kFailure, message) {}
};

// A system call failed: "<call>: <strerror(errno)>" plus context.
[[nodiscard]] std::string errno_message(const std::string& call, int err);

}  // namespace fabscope::core
