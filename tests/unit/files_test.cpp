// core::read_first_line: the one sysfs/procfs line reader.
#include "core/files.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;
using fabscope::core::read_first_line;

namespace {

class TempDir {
 public:
  TempDir() : path_(fs::temp_directory_path() / ("fabscope-files-" + std::to_string(::getpid()))) {
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  fs::path write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name, std::ios::binary) << text;
    return path_ / name;
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

}  // namespace

TEST(ReadFirstLine, SysfsValueWithoutItsNewline) {
  const TempDir d;
  EXPECT_EQ(read_first_line(d.write("rate", "100 Gb/sec (4X EDR)\n")), "100 Gb/sec (4X EDR)");
  EXPECT_EQ(read_first_line(d.write("state", "4: ACTIVE\n")), "4: ACTIVE");
}

TEST(ReadFirstLine, OnlyTheFirstLineTrailingBlanksAndCarriageReturnTrimmed) {
  const TempDir d;
  EXPECT_EQ(read_first_line(d.write("a", "eth2  \r\nsecond\n")), "eth2");
  EXPECT_EQ(read_first_line(d.write("b", "  lead kept")), "  lead kept");
}

TEST(ReadFirstLine, MissingOrEmptyFileReadsEmpty) {
  const TempDir d;
  EXPECT_EQ(read_first_line(d.path() / "absent"), "");
  EXPECT_EQ(read_first_line(d.write("empty", "")), "");
  EXPECT_EQ(read_first_line(d.path()), "");  // a directory
}
