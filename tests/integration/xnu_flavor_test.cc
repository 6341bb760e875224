// docs/reference.md §5, "The XNU flavor", through a real mount: mem read and
// written at any offset and size by syscalls and by ordinary tools (xxd, od,
// head, dd, Python), vm_copy of a byte range by ioctl and ctl, the exact
// errnos, and status naming the flavor.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "taskfs/ioctl.h"
#include "tests/integration/mount_fixture.h"

namespace taskfs::testing {
namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kBase = 0x10000;
constexpr std::uint64_t kPages = 4;

unsigned char Pattern(std::uint64_t i) {
  return static_cast<unsigned char>(i * 7 + i / 251 + 1);
}

class XnuFlavorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(mount_.ok()) << mount_.error();
    ASSERT_EQ(::mkdir((mount_ / "t").c_str(), 0700), 0) << std::strerror(errno);
    ASSERT_EQ(
        WriteFile(mount_ / "t/ctl", "allocate " + std::to_string(kBase) + " " +
                                        std::to_string(kPages * kPage) + "\n"),
        0);
    fd_ = ::open(Mem().c_str(), O_RDWR);
    ASSERT_GE(fd_, 0) << std::strerror(errno);
    std::vector<unsigned char> data(kPages * kPage);
    for (std::uint64_t i = 0; i < data.size(); ++i) data[i] = Pattern(i);
    ASSERT_EQ(::pwrite(fd_, data.data(), data.size(), kBase),
              static_cast<ssize_t>(data.size()));
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
  }
  std::string Mem() const { return mount_ / "t/mem"; }
  // n bytes from address, or -errno.
  ssize_t Read(std::uint64_t address, std::size_t n,
               std::vector<unsigned char>* out) {
    out->assign(n, 0xee);
    const ssize_t r = ::pread(fd_, out->data(), n, static_cast<off_t>(address));
    return r < 0 ? -errno : r;
  }
  std::vector<unsigned char> All() {
    std::vector<unsigned char> out;
    EXPECT_EQ(Read(kBase, kPages * kPage, &out),
              static_cast<ssize_t>(kPages * kPage));
    return out;
  }
  // The bytes [address, address + n) of the pattern, as a string.
  static std::string Expected(std::uint64_t address, std::size_t n) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i) {
      s += static_cast<char>(Pattern(address - kBase + i));
    }
    return s;
  }

  Mount mount_{
      {"-o", "tasks=none,address_bits=32,memory_limit=64M,flavor=xnu"}};
  int fd_ = -1;
};

TEST_F(XnuFlavorTest, StatusNamesTheFlavor) {
  EXPECT_NE(ReadFile(mount_ / "t/status").find("\nflavor: xnu\n"),
            std::string::npos);
  Mount classic{{"-o", "tasks=none"}};
  ASSERT_TRUE(classic.ok()) << classic.error();
  ASSERT_EQ(::mkdir((classic / "c").c_str(), 0700), 0);
  EXPECT_NE(ReadFile(classic / "c/status").find("\nflavor: classic\n"),
            std::string::npos);
}

TEST_F(XnuFlavorTest, PreadOfAnyOffsetAndSize) {
  for (const std::size_t size : {std::size_t{1}, std::size_t{4}, kPage - 1,
                                 kPage, kPage + 1, 2 * kPage + 3}) {
    for (const std::uint64_t offset :
         {std::uint64_t{0}, std::uint64_t{1}, kPage - 1, kPage + 5}) {
      std::vector<unsigned char> got;
      ASSERT_EQ(Read(kBase + offset, size, &got), static_cast<ssize_t>(size))
          << size << " at +" << offset;
      EXPECT_EQ(std::string(got.begin(), got.end()),
                Expected(kBase + offset, size))
          << size << " at +" << offset;
    }
  }
}

TEST_F(XnuFlavorTest, PwriteOfAnyOffsetAndSizeChangesOnlyThoseBytes) {
  const std::vector<unsigned char> data(kPage + 2, 0xab);
  ASSERT_EQ(::pwrite(fd_, data.data(), data.size(), kBase + kPage - 1),
            static_cast<ssize_t>(data.size()));
  const unsigned char one = 0xcd;
  ASSERT_EQ(::pwrite(fd_, &one, 1, kBase + 3 * kPage + 7), 1);
  const std::vector<unsigned char> all = All();
  for (std::uint64_t i = 0; i < all.size(); ++i) {
    unsigned char want = Pattern(i);
    if (i >= kPage - 1 && i < 2 * kPage + 1) want = 0xab;
    if (i == 3 * kPage + 7) want = 0xcd;
    ASSERT_EQ(all[i], want) << i;
  }
}

// vm_read_list of the XNU flavor: each entry any byte range.
TEST_F(XnuFlavorTest, ReadListOfByteRanges) {
  auto l = std::make_unique<taskfs_vm_read_list>();
  const taskfs_vm_read_entry entries[] = {
      {kBase + 1, 10, -1, 0},
      {kBase + kPage - 3, 7, -1, 0},           // across two pages
      {kBase + kPages * kPage - 2, 4, -1, 0},  // into no region
      {kBase + kPage + 5, 2 * kPage, -1, 0},   // 2 pages, 3 touched
      {kBase + kPages * kPage - 2, 0, -1, 0},  // empty
  };
  l->count = 5;
  std::memcpy(l->entries, entries, sizeof entries);
  ASSERT_EQ(::ioctl(fd_, TASKFS_IOC_VM_READ_LIST, l.get()), 0)
      << std::strerror(errno);
  EXPECT_EQ(l->entries[0].kern_return, 0);
  EXPECT_EQ(l->entries[1].kern_return, 0);
  EXPECT_EQ(l->entries[2].kern_return, 1);  // KERN_INVALID_ADDRESS
  EXPECT_EQ(l->entries[3].kern_return, 0);
  EXPECT_EQ(l->entries[4].kern_return, 0);
  const char* data = reinterpret_cast<const char*>(l->data);
  EXPECT_EQ(std::string(data, 10), Expected(kBase + 1, 10));
  EXPECT_EQ(std::string(data + 10, 7), Expected(kBase + kPage - 3, 7));
  EXPECT_EQ(std::string(data + 17, 4), std::string(4, '\0'));
  EXPECT_EQ(std::string(data + 21, 2 * kPage),
            Expected(kBase + kPage + 5, 2 * kPage));
}

TEST_F(XnuFlavorTest, LowestOffendingPageDecidesAndNothingChanges) {
  // Page 1 read-only, the page after the region unallocated.
  ASSERT_EQ(WriteFile(mount_ / "t/ctl",
                      "protect " + std::to_string(kBase + kPage) + " 4K r--\n"),
            0);
  std::vector<unsigned char> got;
  EXPECT_EQ(Read(kBase + kPages * kPage - 2, 4, &got), -EFAULT);
  EXPECT_EQ(Read(kBase + kPages * kPage - 2, 2, &got), 2);
  const std::vector<unsigned char> before = All();
  const std::vector<unsigned char> data(3, 0);
  errno = 0;
  EXPECT_EQ(::pwrite(fd_, data.data(), 3, kBase + kPage - 1), -1);
  EXPECT_EQ(errno, EACCES);
  errno = 0;
  EXPECT_EQ(::pwrite(fd_, data.data(), 3, kBase + kPages * kPage - 1), -1);
  EXPECT_EQ(errno, EFAULT);
  EXPECT_EQ(All(), before);
  const std::string errors = ReadFile(mount_ / "t/errors");
  EXPECT_NE(errors.find("pwrite 0x10fff 0x3: KERN_PROTECTION_FAILURE: page "
                        "0x11000 is r--/rwx"),
            std::string::npos)
      << errors;
}

TEST_F(XnuFlavorTest, ZeroSizeAndTheEndOfTheSpace) {
  std::vector<unsigned char> got;
  EXPECT_EQ(Read(kBase + 1, 0, &got), 0);
  EXPECT_EQ(::pwrite(fd_, "", 0, 3), 0);
  EXPECT_EQ(Read(std::uint64_t{1} << 32, 1, &got), 0);  // end of file
  EXPECT_EQ(Read((std::uint64_t{1} << 32) - 1, 2, &got), -EFAULT);
}

TEST_F(XnuFlavorTest, CopyOfAByteRangeByIoctlAndCtl) {
  taskfs_vm_copy c{};
  c.src = kBase + kPage - 1;
  c.size = kPage + 2;
  c.dst = kBase + 2 * kPage + 3;
  ASSERT_EQ(::ioctl(fd_, TASKFS_IOC_VM_COPY, &c), 0) << std::strerror(errno);
  std::vector<unsigned char> want(kPages * kPage);
  for (std::uint64_t i = 0; i < want.size(); ++i) want[i] = Pattern(i);
  std::memmove(want.data() + (c.dst - kBase), want.data() + (c.src - kBase),
               c.size);
  EXPECT_EQ(All(), want);
  // Overlapping, through ctl: as if the source were read whole first.
  ASSERT_EQ(WriteFile(mount_ / "t/ctl", "copy " + std::to_string(kBase + 1) +
                                            " 5000 " +
                                            std::to_string(kBase + 4) + "\n"),
            0);
  std::memmove(want.data() + 4, want.data() + 1, 5000);
  EXPECT_EQ(All(), want);
}

// The tools, as on /proc/PID/mem: each seeks to an odd offset and reads a
// few bytes.
TEST_F(XnuFlavorTest, ToolsReadAtOddOffsets) {
  const std::uint64_t a = kBase + kPage - 3;  // across a page boundary
  const std::string want = Expected(a, 10);
  RunResult r =
      RunCommand({"dd", "if=" + Mem(), "bs=1", "skip=" + std::to_string(a),
                  "count=10", "status=none"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, want);
  r = RunCommand({"od", "-A", "n", "-t", "x1", "-v", "-j", std::to_string(a),
                  "-N", "10", Mem()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string hex;
  for (const char ch : want) {
    char b[8];
    std::snprintf(b, sizeof b, " %02x", static_cast<unsigned char>(ch));
    hex += b;
  }
  EXPECT_EQ(r.out, hex + "\n");
  r = RunCommand({"xxd", "-p", "-s", std::to_string(a), "-l", "10", Mem()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string plain;
  for (std::size_t i = 1; i < hex.size(); i += 3) plain += hex.substr(i, 2);
  EXPECT_EQ(r.out, plain + "\n");
  // head -c through a shell's redirection from an odd offset: dd seeks,
  // head reads on the same open file.
  r = RunCommand({"sh", "-c",
                  "{ dd bs=1 skip=" + std::to_string(a) +
                      " count=0 status=none; head -c 10; } < " + Mem()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, want);
  r = RunCommand({"python3", "-c",
                  "import sys\n"
                  "f = open(sys.argv[1], 'rb')\n"
                  "f.seek(int(sys.argv[2]))\n"
                  "sys.stdout.write(f.read(10).hex())\n",
                  Mem(), std::to_string(a)});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, plain);
}

TEST_F(XnuFlavorTest, ClassicMountStillWantsPages) {
  Mount classic{{"-o", "tasks=none,address_bits=32"}};
  ASSERT_TRUE(classic.ok()) << classic.error();
  ASSERT_EQ(::mkdir((classic / "c").c_str(), 0700), 0);
  ASSERT_EQ(WriteFile(classic / "c/ctl", "allocate 0x10000 8K\n"), 0);
  const int fd = ::open((classic / "c/mem").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  unsigned char b[4];
  errno = 0;
  EXPECT_EQ(::pread(fd, b, 4, 0x10001), -1);
  EXPECT_EQ(errno, EINVAL);
  ::close(fd);
}

}  // namespace
}  // namespace taskfs::testing
