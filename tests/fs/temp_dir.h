// A fresh temporary directory for the tests of the file-system layer that
// read and write real files, removed with its contents on destruction.
#ifndef TASKFS_TESTS_FS_TEMP_DIR_H_
#define TASKFS_TESTS_FS_TEMP_DIR_H_

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <ios>
#include <string>
#include <string_view>
#include <system_error>

namespace taskfs::fs::testing {

class TempDir {
 public:
  // A directory named prefix followed by six random characters, under
  // gtest's temporary directory; path() is "" if it could not be made.
  explicit TempDir(const std::string& prefix) {
    std::string templ = ::testing::TempDir() + prefix + "XXXXXX";
    if (::mkdtemp(templ.data()) != nullptr) path_ = templ;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

  // Writes contents to path()/name and returns the full path.
  std::string Write(const std::string& name, std::string_view contents) const {
    const std::string full = path_ + "/" + name;
    std::ofstream out(full, std::ios::binary);
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    EXPECT_TRUE(out.good()) << full;
    return full;
  }

  // Makes path()/name a sparse file of size bytes (no disk used) and
  // returns its path.
  std::string Sparse(const std::string& name, off_t size) const {
    const std::string full = path_ + "/" + name;
    const int fd = ::open(full.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    EXPECT_GE(fd, 0) << full;
    if (fd >= 0) {
      EXPECT_EQ(::ftruncate(fd, size), 0) << full;
      ::close(fd);
    }
    return full;
  }

 private:
  std::string path_;
};

}  // namespace taskfs::fs::testing

#endif  // TASKFS_TESTS_FS_TEMP_DIR_H_
