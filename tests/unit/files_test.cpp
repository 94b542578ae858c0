// core::read_first_line (the one sysfs/procfs line reader) and core::CArray (the owner of a C
// library's array, e.g. ibv_get_device_list's).
#include "core/files.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/c_array.hpp"

namespace fs = std::filesystem;
using fabscope::core::CArray;
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

int g_freed = 0;
void count_free(int* p) {
  ++g_freed;
  delete[] p;
}
using Ints = CArray<int, count_free>;

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

TEST(CArray, FreesOnceAndIterates) {
  g_freed = 0;
  {
    Ints a(new int[3]{1, 2, 3}, 3);
    int sum = 0;
    for (int v : a) sum += v;
    EXPECT_EQ(sum, 6);
    EXPECT_EQ(a.size(), 3U);
    EXPECT_EQ(a[2], 3);
    Ints b(std::move(a));
    EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
    EXPECT_EQ(b.size(), 3U);
    Ints c;
    c = std::move(b);
    EXPECT_EQ(g_freed, 0);
  }
  EXPECT_EQ(g_freed, 1);
}

TEST(CArray, NullBlockIsEmptyAndNotFreed) {
  g_freed = 0;
  {
    const Ints a(nullptr, 5);
    EXPECT_TRUE(a.empty());
    EXPECT_EQ(a.begin(), a.end());
  }
  EXPECT_EQ(g_freed, 0);
}
