// Small reads of kernel-provided files (sysfs, procfs) that hold one value per file.
#pragma once

#include <filesystem>
#include <string>

namespace fabscope::core {

// The first line of `path` without its trailing newline, carriage return or spaces; "" when the
// file cannot be opened or is empty (a missing sysfs attribute and an empty one read the same).
[[nodiscard]] std::string read_first_line(const std::filesystem::path& path);

}  // namespace fabscope::core
