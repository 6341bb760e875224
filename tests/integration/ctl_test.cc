// docs/reference.md §6, §7 and §8 through a real mount: every ctl command with
// its results and exact errnos, the result line read back on the same open
// file, malformed writes, the exact formats of maps and status, the embedded
// demo and manifests given with -o tasks=FILE (good ones and ones that must end
// the daemon before it mounts).
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/mount_fixture.h"

namespace taskfs::testing {
namespace {

constexpr std::size_t kPage = 4096;

// A page-aligned buffer, as direct I/O wants.
struct AlignedBuffer {
  explicit AlignedBuffer(std::size_t n) : size(n) {
    void* p = nullptr;
    if (posix_memalign(&p, kPage, n == 0 ? kPage : n) != 0) std::abort();
    data = static_cast<char*>(p);
    std::memset(data, 0, n);
  }
  ~AlignedBuffer() { std::free(data); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  char* data;
  std::size_t size;
};

// Reads n bytes at addr of a task through its mem file: 0 or the errno.
int ReadMem(const std::string& mem, std::uint64_t addr, std::size_t n,
            std::string* out) {
  const int fd = ::open(mem.c_str(), O_RDONLY);
  if (fd < 0) return errno;
  AlignedBuffer b(n);
  const ssize_t r = ::pread(fd, b.data, n, static_cast<off_t>(addr));
  const int error = r < 0 ? errno : 0;
  ::close(fd);
  if (r >= 0) out->assign(b.data, static_cast<std::size_t>(r));
  return error;
}

// Writes data (a multiple of the page size) at addr: 0 or the errno.
int WriteMem(const std::string& mem, std::uint64_t addr,
             const std::string& data) {
  const int fd = ::open(mem.c_str(), O_WRONLY);
  if (fd < 0) return errno;
  AlignedBuffer b(data.size());
  std::memcpy(b.data, data.data(), data.size());
  const ssize_t r = ::pwrite(fd, b.data, data.size(), static_cast<off_t>(addr));
  const int error = r < 0 ? errno : 0;
  ::close(fd);
  return error;
}

std::string Filled(std::size_t n, char byte) { return std::string(n, byte); }

// A string literal with its embedded NUL bytes, without the final one.
template <std::size_t N>
std::string Bytes(const char (&literal)[N]) {
  return std::string(literal, N - 1);
}

// What one write to ctl did: its errno (0 on success) and the result line a
// read on the same open file returned afterwards.
struct CtlReply {
  int error = -1;
  std::string line;
};

CtlReply CtlWithResult(const std::string& ctl, const std::string& commands) {
  CtlReply reply;
  const int fd = ::open(ctl.c_str(), O_RDWR);
  if (fd < 0) {
    reply.error = errno;
    return reply;
  }
  const ssize_t n = ::write(fd, commands.data(), commands.size());
  if (n < 0) {
    reply.error = errno;
  } else {
    reply.error = static_cast<std::size_t>(n) == commands.size() ? 0 : EIO;
  }
  char buf[256];
  // The file offset has moved past what was written: the result line must
  // be read from ctl's own cursor all the same.
  const ssize_t got = ::read(fd, buf, sizeof buf);
  if (got > 0) reply.line.assign(buf, static_cast<std::size_t>(got));
  ::close(fd);
  return reply;
}

// status as key -> value; an ill-formed line gives the key "!bad".
std::map<std::string, std::string> ParseStatus(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    const std::size_t colon = line.find(": ");
    if (colon == std::string::npos || colon == 0) {
      out["!bad"] = line;
      continue;
    }
    out[line.substr(0, colon)] = line.substr(colon + 2);
  }
  return out;
}

class CtlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(mount_.ok()) << mount_.error();
    ASSERT_EQ(::mkdir((mount_ / "t").c_str(), 0700), 0) << std::strerror(errno);
  }

  // Runs commands in one write to task's ctl: 0 or the errno.
  int Ctl(const std::string& commands, const std::string& task = "t") {
    return WriteFile(mount_ / (task + "/ctl"), commands);
  }
  CtlReply CtlResult(const std::string& commands,
                     const std::string& task = "t") {
    return CtlWithResult(mount_ / (task + "/ctl"), commands);
  }
  std::string Maps(const std::string& task = "t") {
    return ReadFile(mount_ / (task + "/maps"));
  }
  std::map<std::string, std::string> Status(const std::string& task = "t") {
    return ParseStatus(ReadFile(mount_ / (task + "/status")));
  }
  std::uint64_t StatusNumber(const std::string& key,
                             const std::string& task = "t") {
    const auto status = Status(task);
    const auto it = status.find(key);
    if (it == status.end()) {
      ADD_FAILURE() << "no " << key << " in status of " << task;
      return ~std::uint64_t{0};
    }
    return std::strtoull(it->second.c_str(), nullptr, 10);
  }
  std::string Mem(const std::string& task = "t") {
    return mount_ / (task + "/mem");
  }

  Mount mount_{{"-o", "tasks=none,address_bits=32,memory_limit=64M"}};
};

// --- allocate ---------------------------------------------------------------

TEST_F(CtlTest, AllocateRoundsAddressDownAndSizeUp) {
  const CtlReply r = CtlResult("allocate 0x10001 1\n");
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.line, "ok\n");
  EXPECT_EQ(Maps(), "0000000000010000-0000000000011000 rw-/rwx copy\n");
}

// Mach's vm_allocate rounds the size up on its own (round_page(size)), not
// the end address: 0x20fff + 2 bytes is one page starting at 0x20000.
TEST_F(CtlTest, AllocateRoundsTheSizeNotTheEnd) {
  ASSERT_EQ(Ctl("allocate 0x20fff 2\n"), 0);
  EXPECT_EQ(Maps(), "0000000000020000-0000000000021000 rw-/rwx copy\n");
}

TEST_F(CtlTest, AllocateTakesDecimalHexAndSizeSuffixes) {
  ASSERT_EQ(Ctl("allocate 65536 1K\nallocate 0x100000 1M\n"
                "allocate 0x10000000 1G\nallocate 0x8000 4096\n"
                "allocate 0x300000 0x8K\n"
                "allocate 0x400000 010000\n"),  // decimal, not octal
            0);
  EXPECT_EQ(Maps(),
            "0000000000008000-0000000000009000 rw-/rwx copy\n"
            "0000000000010000-0000000000011000 rw-/rwx copy\n"
            "0000000000100000-0000000000200000 rw-/rwx copy\n"
            "0000000000300000-0000000000302000 rw-/rwx copy\n"
            "0000000000400000-0000000000403000 rw-/rwx copy\n"
            "0000000010000000-0000000050000000 rw-/rwx copy\n");
  EXPECT_EQ(StatusNumber("virtual_bytes"),
            7 * kPage + (std::uint64_t{1} << 20) + (std::uint64_t{1} << 30));
}

TEST_F(CtlTest, AllocateOfSizeZeroDoesNothing) {
  const CtlReply r = CtlResult("allocate 0x10000 0\n");
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.line, "ok\n");
  EXPECT_EQ(Maps(), "");
  EXPECT_EQ(StatusNumber("regions"), 0u);
}

TEST_F(CtlTest, AllocateOverARegionIsEnomemAndChangesNothing) {
  ASSERT_EQ(Ctl("allocate 0x10000 8K\n"), 0);
  const CtlReply r = CtlResult("allocate 0x11000 8K\n");
  EXPECT_EQ(r.error, ENOMEM);
  EXPECT_EQ(r.line, "error KERN_NO_SPACE\n");
  EXPECT_EQ(Ctl("allocate 0xf000 4097\n"), ENOMEM);
  EXPECT_EQ(Maps(), "0000000000010000-0000000000012000 rw-/rwx copy\n");
}

TEST_F(CtlTest, AllocateOutsideTheAddressSpaceIsEfault) {
  const CtlReply r = CtlResult("allocate 0xfffff000 8K\n");
  EXPECT_EQ(r.error, EFAULT);
  EXPECT_EQ(r.line, "error KERN_INVALID_ADDRESS\n");
  EXPECT_EQ(Ctl("allocate 0x100000000 4K\n"), EFAULT);
  EXPECT_EQ(Ctl("allocate 0xfffffffffffff000 8K\n"), EFAULT);  // wraps
  EXPECT_EQ(Maps(), "");
  // The last page of the space is fine.
  ASSERT_EQ(Ctl("allocate 0xfffff000 4K\n"), 0);
  EXPECT_EQ(Maps(), "00000000fffff000-0000000100000000 rw-/rwx copy\n");
}

TEST_F(CtlTest, AllocateAnywhereReturnsTheLowestFit) {
  ASSERT_EQ(Ctl("allocate 0 8K\nallocate 0x3000 4K\n"), 0);
  CtlReply r = CtlResult("allocate anywhere 4K\n");
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.line, "0x2000\n");
  r = CtlResult("allocate anywhere 5000\n");  // rounded up to two pages
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.line, "0x4000\n");
  EXPECT_EQ(Maps(), "0000000000000000-0000000000006000 rw-/rwx copy\n");
  // After a deallocation the hole is found again.
  ASSERT_EQ(Ctl("deallocate 0x1000 4K\n"), 0);
  r = CtlResult("allocate anywhere 4K\n");
  EXPECT_EQ(r.line, "0x1000\n");
  r = CtlResult("allocate anywhere 8G\n");  // larger than the space
  EXPECT_EQ(r.error, ENOMEM);
  EXPECT_EQ(r.line, "error KERN_NO_SPACE\n");
}

// --- deallocate -------------------------------------------------------------

TEST_F(CtlTest, DeallocateRoundsAndAcceptsUnallocatedParts) {
  ASSERT_EQ(Ctl("allocate 0x10000 16K\nallocate 0x20000 4K\n"), 0);
  // One byte inside a page removes that whole page.
  ASSERT_EQ(Ctl("deallocate 0x11800 1\n"), 0);
  EXPECT_EQ(Maps(),
            "0000000000010000-0000000000011000 rw-/rwx copy\n"
            "0000000000012000-0000000000014000 rw-/rwx copy\n"
            "0000000000020000-0000000000021000 rw-/rwx copy\n");
  // A range that is mostly holes is fine.
  const CtlReply r = CtlResult("deallocate 0xf000 0x20000\n");
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.line, "ok\n");
  EXPECT_EQ(Maps(), "");
  // Nothing allocated at all, and size 0: still fine.
  EXPECT_EQ(Ctl("deallocate 0x50000 4K\ndeallocate 0x60000 0\n"), 0);
  // Outside the address space: EFAULT.
  EXPECT_EQ(Ctl("deallocate 0xfffff000 8K\n"), EFAULT);
}

TEST_F(CtlTest, DeallocatedMemoryIsGone) {
  ASSERT_EQ(Ctl("allocate 0x10000 4K\n"), 0);
  ASSERT_EQ(WriteMem(Mem(), 0x10000, Filled(kPage, 'x')), 0);
  ASSERT_EQ(Ctl("deallocate 0x10000 4K\n"), 0);
  std::string data;
  EXPECT_EQ(ReadMem(Mem(), 0x10000, kPage, &data), EFAULT);
  // Allocated again it is zero-filled.
  ASSERT_EQ(Ctl("allocate 0x10000 4K\n"), 0);
  ASSERT_EQ(ReadMem(Mem(), 0x10000, kPage, &data), 0);
  EXPECT_EQ(data, std::string(kPage, '\0'));
}

// --- protect ----------------------------------------------------------------

TEST_F(CtlTest, ProtectSetsTheCurrentProtection) {
  ASSERT_EQ(Ctl("allocate 0x10000 12K\n"), 0);
  const CtlReply r = CtlResult("protect 0x11001 1 r--\n");  // rounded
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.line, "ok\n");
  EXPECT_EQ(Maps(),
            "0000000000010000-0000000000011000 rw-/rwx copy\n"
            "0000000000011000-0000000000012000 r--/rwx copy\n"
            "0000000000012000-0000000000013000 rw-/rwx copy\n");
  EXPECT_EQ(WriteMem(Mem(), 0x11000, Filled(kPage, 'x')), EACCES);
  ASSERT_EQ(Ctl("protect 0x10000 12K r-x\n"), 0);
  EXPECT_EQ(Maps(), "0000000000010000-0000000000013000 r-x/rwx copy\n");
  ASSERT_EQ(Ctl("protect 0x10000 12K ---\n"), 0);
  std::string data;
  EXPECT_EQ(ReadMem(Mem(), 0x10000, kPage, &data), EACCES);
  ASSERT_EQ(Ctl("protect 0x10000 12K rwx\n"), 0);
  EXPECT_EQ(Maps(), "0000000000010000-0000000000013000 rwx/rwx copy\n");
  EXPECT_EQ(WriteMem(Mem(), 0x10000, Filled(kPage, 'x')), 0);
}

TEST_F(CtlTest, ProtectOverAHoleIsEfaultAndChangesNothing) {
  ASSERT_EQ(Ctl("allocate 0x10000 4K\nallocate 0x12000 4K\n"), 0);
  const CtlReply r = CtlResult("protect 0x10000 12K r--\n");
  EXPECT_EQ(r.error, EFAULT);
  EXPECT_EQ(r.line, "error KERN_INVALID_ADDRESS\n");
  EXPECT_EQ(Ctl("protect 0x30000 4K r--\n"), EFAULT);
  // Size 0 does nothing, even over a hole.
  EXPECT_EQ(Ctl("protect 0x30000 0 r--\n"), 0);
  EXPECT_EQ(Maps(),
            "0000000000010000-0000000000011000 rw-/rwx copy\n"
            "0000000000012000-0000000000013000 rw-/rwx copy\n");
}

TEST_F(CtlTest, ProtectAboveTheMaximumIsEacces) {
  ASSERT_EQ(Ctl("allocate 0x10000 8K\nprotect 0x11000 4K max r--\n"), 0);
  const CtlReply r = CtlResult("protect 0x10000 8K rw-\n");
  EXPECT_EQ(r.error, EACCES);
  EXPECT_EQ(r.line, "error KERN_PROTECTION_FAILURE\n");
  // The first page, which allowed it, did not change either.
  ASSERT_EQ(Ctl("protect 0x10000 4K r--\n"), 0);
  EXPECT_EQ(Ctl("protect 0x10000 8K rw-\n"), EACCES);
  EXPECT_EQ(Maps(),
            "0000000000010000-0000000000011000 r--/rwx copy\n"
            "0000000000011000-0000000000012000 r--/r-- copy\n");
}

TEST_F(CtlTest, ProtectMaxLowersTheCurrentAndCannotBeRaised) {
  ASSERT_EQ(Ctl("allocate 0x10000 4K\n"), 0);
  const CtlReply r = CtlResult("protect 0x10000 4K max r-x\n");
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.line, "ok\n");
  // current rw- ∩ r-x = r--.
  EXPECT_EQ(Maps(), "0000000000010000-0000000000011000 r--/r-x copy\n");
  EXPECT_EQ(Ctl("protect 0x10000 4K r-x\n"), 0);
  EXPECT_EQ(Maps(), "0000000000010000-0000000000011000 r-x/r-x copy\n");
  const CtlReply raise = CtlResult("protect 0x10000 4K max rwx\n");
  EXPECT_EQ(raise.error, EACCES);
  EXPECT_EQ(raise.line, "error KERN_PROTECTION_FAILURE\n");
  ASSERT_EQ(Ctl("protect 0x10000 4K max ---\n"), 0);
  EXPECT_EQ(Maps(), "0000000000010000-0000000000011000 ---/--- copy\n");
  EXPECT_EQ(Ctl("protect 0x10000 4K r--\n"), EACCES);
}

// --- inherit ----------------------------------------------------------------

TEST_F(CtlTest, InheritSetsTheInheritance) {
  ASSERT_EQ(Ctl("allocate 0x10000 12K\n"), 0);
  const CtlReply r = CtlResult("inherit 0x10000 4K share\n");
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.line, "ok\n");
  ASSERT_EQ(Ctl("inherit 0x12fff 1 none\n"), 0);  // rounded
  EXPECT_EQ(Maps(),
            "0000000000010000-0000000000011000 rw-/rwx share\n"
            "0000000000011000-0000000000012000 rw-/rwx copy\n"
            "0000000000012000-0000000000013000 rw-/rwx none\n");
  ASSERT_EQ(Ctl("inherit 0x10000 12K copy\n"), 0);
  EXPECT_EQ(Maps(), "0000000000010000-0000000000013000 rw-/rwx copy\n");
}

TEST_F(CtlTest, InheritOverAHoleIsEfaultAndChangesNothing) {
  ASSERT_EQ(Ctl("allocate 0x10000 4K\n"), 0);
  const CtlReply r = CtlResult("inherit 0x10000 8K share\n");
  EXPECT_EQ(r.error, EFAULT);
  EXPECT_EQ(r.line, "error KERN_INVALID_ADDRESS\n");
  EXPECT_EQ(Ctl("inherit 0x30000 0 none\n"), 0);  // size 0: nothing
  EXPECT_EQ(Maps(), "0000000000010000-0000000000011000 rw-/rwx copy\n");
}

// --- copy -------------------------------------------------------------------

TEST_F(CtlTest, CopyIsAVirtualCopy) {
  ASSERT_EQ(Ctl("allocate 0x10000 8K\nallocate 0x20000 8K\n"), 0);
  const std::string a = Filled(kPage, 'a') + Filled(kPage, 'b');
  ASSERT_EQ(WriteMem(Mem(), 0x10000, a), 0);
  const CtlReply r = CtlResult("copy 0x10000 8K 0x20000\n");
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.line, "ok\n");
  std::string data;
  ASSERT_EQ(ReadMem(Mem(), 0x20000, 2 * kPage, &data), 0);
  EXPECT_EQ(data, a);
  // Writes to either side stay on that side.
  ASSERT_EQ(WriteMem(Mem(), 0x10000, Filled(kPage, 'c')), 0);
  ASSERT_EQ(WriteMem(Mem(), 0x21000, Filled(kPage, 'd')), 0);
  ASSERT_EQ(ReadMem(Mem(), 0x20000, 2 * kPage, &data), 0);
  EXPECT_EQ(data, Filled(kPage, 'a') + Filled(kPage, 'd'));
  ASSERT_EQ(ReadMem(Mem(), 0x10000, 2 * kPage, &data), 0);
  EXPECT_EQ(data, Filled(kPage, 'c') + Filled(kPage, 'b'));
}

TEST_F(CtlTest, CopyOverlappingIsAsIfTheSourceWereReadFirst) {
  ASSERT_EQ(Ctl("allocate 0x10000 12K\n"), 0);
  ASSERT_EQ(WriteMem(Mem(), 0x10000, Filled(kPage, 'a') + Filled(kPage, 'b')),
            0);
  ASSERT_EQ(Ctl("copy 0x10000 8K 0x11000\n"), 0);
  std::string data;
  ASSERT_EQ(ReadMem(Mem(), 0x10000, 3 * kPage, &data), 0);
  EXPECT_EQ(data, Filled(kPage, 'a') + Filled(kPage, 'a') + Filled(kPage, 'b'));
}

TEST_F(CtlTest, CopyErrorsAreExact) {
  ASSERT_EQ(Ctl("allocate 0x10000 8K\nallocate 0x20000 8K\n"
                "protect 0x21000 4K r--\n"),
            0);
  ASSERT_EQ(WriteMem(Mem(), 0x20000, Filled(kPage, 'z')), 0);
  CtlReply r = CtlResult("copy 0x10001 4K 0x20000\n");  // unaligned
  EXPECT_EQ(r.error, EINVAL);
  EXPECT_EQ(r.line, "error KERN_INVALID_ARGUMENT\n");
  EXPECT_EQ(Ctl("copy 0x10000 100 0x20000\n"), EINVAL);
  EXPECT_EQ(Ctl("copy 0x10000 4K 0x20800\n"), EINVAL);
  r = CtlResult("copy 0x10000 12K 0x30000\n");  // source hole
  EXPECT_EQ(r.error, EFAULT);
  EXPECT_EQ(r.line, "error KERN_INVALID_ADDRESS\n");
  EXPECT_EQ(Ctl("copy 0x10000 4K 0x40000\n"), EFAULT);  // destination hole
  r = CtlResult("copy 0x10000 8K 0x20000\n");           // destination read-only
  EXPECT_EQ(r.error, EACCES);
  EXPECT_EQ(r.line, "error KERN_PROTECTION_FAILURE\n");
  // All or nothing: the writable first destination page kept its contents.
  std::string data;
  ASSERT_EQ(ReadMem(Mem(), 0x20000, kPage, &data), 0);
  EXPECT_EQ(data, Filled(kPage, 'z'));
  EXPECT_EQ(Ctl("copy 0x10000 0 0x20000\n"), 0);  // size 0: nothing
}

// --- copy-from --------------------------------------------------------------

class CtlCopyFromTest : public CtlTest {
 protected:
  void SetUp() override {
    CtlTest::SetUp();
    ASSERT_EQ(::mkdir((mount_ / "src").c_str(), 0700), 0);
    ASSERT_EQ(Ctl("allocate 0x10000 8K\nprotect 0x10000 8K r--\n"
                  "inherit 0x10000 8K share\n",
                  "src"),
              0);
    ASSERT_EQ(Ctl("protect 0x10000 8K rw-\n", "src"), 0);
    ASSERT_EQ(WriteMem(Mem("src"), 0x10000, pattern_), 0);
    ASSERT_EQ(Ctl("protect 0x10000 8K r--\n", "src"), 0);
  }
  const std::string pattern_ = Filled(kPage, 'p') + Filled(kPage, 'q');
};

TEST_F(CtlCopyFromTest, WithoutAllocTheDestinationMustBeAllocatedAndWritable) {
  CtlReply r = CtlResult("copy-from src 0x10000 8K 0x40000\n");
  EXPECT_EQ(r.error, EFAULT);
  EXPECT_EQ(r.line, "error KERN_INVALID_ADDRESS\n");
  ASSERT_EQ(Ctl("allocate 0x40000 8K\nprotect 0x41000 4K r--\n"), 0);
  EXPECT_EQ(Ctl("copy-from src 0x10000 8K 0x40000\n"), EACCES);
  ASSERT_EQ(Ctl("protect 0x41000 4K rw-\n"), 0);
  r = CtlResult("copy-from src 0x10000 8K 0x40000\n");
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.line, "ok\n");
  std::string data;
  ASSERT_EQ(ReadMem(Mem(), 0x40000, 2 * kPage, &data), 0);
  EXPECT_EQ(data, pattern_);
  // The destination keeps its own attributes.
  EXPECT_EQ(Maps(), "0000000000040000-0000000000042000 rw-/rwx copy\n");
  // The source is untouched, and later writes do not cross over.
  EXPECT_EQ(Maps("src"), "0000000000010000-0000000000012000 r--/rwx share\n");
  ASSERT_EQ(WriteMem(Mem(), 0x40000, Filled(kPage, 'w')), 0);
  ASSERT_EQ(ReadMem(Mem("src"), 0x10000, 2 * kPage, &data), 0);
  EXPECT_EQ(data, pattern_);
}

TEST_F(CtlCopyFromTest, AllocCreatesARegionLikeTheSource) {
  const CtlReply r = CtlResult("copy-from src 0x10000 8K 0x40000 alloc\n");
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.line, "ok\n");
  EXPECT_EQ(Maps(), "0000000000040000-0000000000042000 r--/rwx share\n");
  std::string data;
  ASSERT_EQ(ReadMem(Mem(), 0x40000, 2 * kPage, &data), 0);
  EXPECT_EQ(data, pattern_);
  EXPECT_EQ(Maps("src"), "0000000000010000-0000000000012000 r--/rwx share\n");
  // With alloc the destination must be wholly unallocated.
  ASSERT_EQ(Ctl("allocate 0x51000 4K\n"), 0);
  EXPECT_EQ(Ctl("copy-from src 0x10000 8K 0x50000 alloc\n"), ENOMEM);
  EXPECT_EQ(Ctl("copy-from src 0x10000 8K 0x40000 alloc\n"), ENOMEM);
  EXPECT_EQ(Maps(),
            "0000000000040000-0000000000042000 r--/rwx share\n"
            "0000000000051000-0000000000052000 rw-/rwx copy\n");
  // The copy is virtual: the source changes, the copy does not.
  ASSERT_EQ(Ctl("protect 0x10000 8K rw-\n", "src"), 0);
  ASSERT_EQ(WriteMem(Mem("src"), 0x10000, Filled(kPage, 'n')), 0);
  ASSERT_EQ(ReadMem(Mem(), 0x40000, 2 * kPage, &data), 0);
  EXPECT_EQ(data, pattern_);
}

TEST_F(CtlCopyFromTest, AllocCopiesEveryRunOfAttributes) {
  ASSERT_EQ(Ctl("allocate 0x20000 12K\nprotect 0x20000 4K max r-x\n"
                "inherit 0x21000 4K none\nprotect 0x22000 4K r-x\n",
                "src"),
            0);
  ASSERT_EQ(Ctl("copy-from src 0x20000 12K 0x60000 alloc\n"), 0);
  EXPECT_EQ(Maps(),
            "0000000000060000-0000000000061000 r--/r-x copy\n"
            "0000000000061000-0000000000062000 rw-/rwx none\n"
            "0000000000062000-0000000000063000 r-x/rwx copy\n");
}

TEST_F(CtlCopyFromTest, DestroyDeallocatesTheSource) {
  const CtlReply r =
      CtlResult("copy-from src 0x10000 4K 0x40000 alloc destroy\n");
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.line, "ok\n");
  EXPECT_EQ(Maps("src"), "0000000000011000-0000000000012000 r--/rwx share\n");
  std::string data;
  ASSERT_EQ(ReadMem(Mem(), 0x40000, kPage, &data), 0);
  EXPECT_EQ(data, Filled(kPage, 'p'));
  EXPECT_EQ(ReadMem(Mem("src"), 0x10000, kPage, &data), EFAULT);
  // destroy without alloc, the flags in the other order.
  ASSERT_EQ(Ctl("allocate 0x50000 4K\n"), 0);
  ASSERT_EQ(Ctl("copy-from src 0x11000 4K 0x50000 destroy\n"), 0);
  EXPECT_EQ(Maps("src"), "");
  ASSERT_EQ(ReadMem(Mem(), 0x50000, kPage, &data), 0);
  EXPECT_EQ(data, Filled(kPage, 'q'));
}

TEST_F(CtlCopyFromTest, ErrorsAreExactAndChangeNothing) {
  CtlReply r = CtlResult("copy-from nosuchtask 0x10000 4K 0x40000 alloc\n");
  EXPECT_EQ(r.error, ESRCH);
  EXPECT_EQ(r.line, "error KERN_INVALID_TASK\n");
  r = CtlResult("copy-from src 0x10000 12K 0x40000 alloc\n");  // source hole
  EXPECT_EQ(r.error, EFAULT);
  EXPECT_EQ(r.line, "error KERN_INVALID_ADDRESS\n");
  EXPECT_EQ(Ctl("copy-from src 0x10800 4K 0x40000 alloc\n"), EINVAL);
  EXPECT_EQ(Ctl("copy-from src 0x10000 4K 0x40800 alloc\n"), EINVAL);
  EXPECT_EQ(Ctl("copy-from src 0x10000 100 0x40000 alloc\n"), EINVAL);
  ASSERT_EQ(Ctl("protect 0x11000 4K ---\n", "src"), 0);
  EXPECT_EQ(Ctl("copy-from src 0x10000 8K 0x40000 alloc destroy\n"), EACCES);
  EXPECT_EQ(Maps(), "");
  EXPECT_EQ(Maps("src"),
            "0000000000010000-0000000000011000 r--/rwx share\n"
            "0000000000011000-0000000000012000 ---/rwx share\n");
}

TEST_F(CtlCopyFromTest, CopyFromItselfWorks) {
  ASSERT_EQ(Ctl("copy-from src 0x10000 8K 0x30000 alloc\n", "src"), 0);
  std::string data;
  ASSERT_EQ(ReadMem(Mem("src"), 0x30000, 2 * kPage, &data), 0);
  EXPECT_EQ(data, pattern_);
}

// Runs fn in a child process as uid:gid (no supplementary groups); returns
// what fn returned (an errno, or 0), or -1 if that could not be done.
int RunAs(uid_t uid, gid_t gid, const std::function<int()>& fn) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 ||
        ::setuid(uid) != 0) {
      ::_exit(255);
    }
    ::_exit(fn());
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
    return -1;
  }
  return WEXITSTATUS(status);
}

// copy-from needs read access to the source task's mem (a path walk to it
// and an open for reading), and write access with destroy.
TEST(CtlAccessTest, CopyFromNeedsReadAccessAndWriteAccessToDestroy) {
  constexpr uid_t kUser = 65534;
  constexpr gid_t kGroup = 65534;
  Mount mount({"-o", "tasks=none,allow_other"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  ASSERT_EQ(::mkdir((mount / "secret").c_str(), 0700), 0);
  ASSERT_EQ(WriteFile(mount / "secret/ctl", "allocate 0x10000 4K\n"), 0);
  ASSERT_EQ(WriteMem(mount / "secret/mem", 0x10000, Filled(kPage, 's')), 0);
  const std::string mine = mount / "mine";
  ASSERT_EQ(RunAs(kUser, kGroup,
                  [&] { return ::mkdir(mine.c_str(), 0700) == 0 ? 0 : errno; }),
            0);
  const auto ctl_as_user = [&](const std::string& commands) {
    return RunAs(kUser, kGroup,
                 [&] { return WriteFile(mine + "/ctl", commands); });
  };
  const std::string copy = "copy-from secret 0x10000 4K 0x40000 alloc\n";
  EXPECT_EQ(ctl_as_user(copy), EACCES);
  ASSERT_EQ(::chmod((mount / "secret").c_str(), 0711), 0);
  EXPECT_EQ(ctl_as_user(copy), EACCES);  // mem is still 0600
  ASSERT_EQ(::chmod((mount / "secret/mem").c_str(), 0604), 0);
  EXPECT_EQ(ctl_as_user(copy), 0);
  std::string data;
  ASSERT_EQ(ReadMem(mine + "/mem", 0x40000, kPage, &data), 0);
  EXPECT_EQ(data, Filled(kPage, 's'));
  // destroy takes write access.
  const std::string destroy =
      "copy-from secret 0x10000 4K 0x50000 alloc destroy\n";
  EXPECT_EQ(ctl_as_user(destroy), EACCES);
  EXPECT_EQ(ReadFile(mount / "secret/maps"),
            "0000000000010000-0000000000011000 rw-/rwx copy\n");
  ASSERT_EQ(::chmod((mount / "secret/mem").c_str(), 0606), 0);
  EXPECT_EQ(ctl_as_user(destroy), 0);
  EXPECT_EQ(ReadFile(mount / "secret/maps"), "");
  // A task forked by the user belongs to the user.
  EXPECT_EQ(ctl_as_user("fork minekid\n"), 0);
  EXPECT_EQ(ParseStatus(ReadFile(mount / "minekid/status"))["owner"],
            std::to_string(kUser) + ":" + std::to_string(kGroup));
  EXPECT_EQ(ParseStatus(ReadFile(mine + "/status"))["owner"],
            std::to_string(kUser) + ":" + std::to_string(kGroup));
}

// --- fork -------------------------------------------------------------------

TEST_F(CtlTest, ForkSharesCopiesAndDropsByInheritance) {
  ASSERT_EQ(Ctl("allocate 0x10000 4K\ninherit 0x10000 4K share\n"
                "allocate 0x20000 4K\n"
                "allocate 0x30000 4K\ninherit 0x30000 4K none\n"
                "allocate 0x40000 4K\nprotect 0x40000 4K max r--\n"),
            0);
  ASSERT_EQ(WriteMem(Mem(), 0x10000, Filled(kPage, 's')), 0);
  ASSERT_EQ(WriteMem(Mem(), 0x20000, Filled(kPage, 'c')), 0);
  ASSERT_EQ(WriteMem(Mem(), 0x30000, Filled(kPage, 'n')), 0);
  const CtlReply r = CtlResult("fork kid\n");
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.line, "ok\n");
  EXPECT_EQ(ListDir(mount_.path()),
            (std::vector<std::string>{"host_page_size", "t", "kid"}));
  EXPECT_EQ(Maps("kid"),
            "0000000000010000-0000000000011000 rw-/rwx share\n"
            "0000000000020000-0000000000021000 rw-/rwx copy\n"
            "0000000000040000-0000000000041000 r--/r-- copy\n");
  std::string data;
  ASSERT_EQ(ReadMem(Mem("kid"), 0x10000, kPage, &data), 0);
  EXPECT_EQ(data, Filled(kPage, 's'));
  ASSERT_EQ(ReadMem(Mem("kid"), 0x20000, kPage, &data), 0);
  EXPECT_EQ(data, Filled(kPage, 'c'));
  EXPECT_EQ(ReadMem(Mem("kid"), 0x30000, kPage, &data), EFAULT);

  // share: the same memory, both ways.
  ASSERT_EQ(WriteMem(Mem(), 0x10000, Filled(kPage, '1')), 0);
  ASSERT_EQ(ReadMem(Mem("kid"), 0x10000, kPage, &data), 0);
  EXPECT_EQ(data, Filled(kPage, '1'));
  ASSERT_EQ(WriteMem(Mem("kid"), 0x10000, Filled(kPage, '2')), 0);
  ASSERT_EQ(ReadMem(Mem(), 0x10000, kPage, &data), 0);
  EXPECT_EQ(data, Filled(kPage, '2'));

  // copy: diverges after a write, in either direction.
  ASSERT_EQ(WriteMem(Mem(), 0x20000, Filled(kPage, 'P')), 0);
  ASSERT_EQ(ReadMem(Mem("kid"), 0x20000, kPage, &data), 0);
  EXPECT_EQ(data, Filled(kPage, 'c'));
  ASSERT_EQ(WriteMem(Mem("kid"), 0x20000, Filled(kPage, 'K')), 0);
  ASSERT_EQ(ReadMem(Mem(), 0x20000, kPage, &data), 0);
  EXPECT_EQ(data, Filled(kPage, 'P'));
  ASSERT_EQ(ReadMem(Mem("kid"), 0x20000, kPage, &data), 0);
  EXPECT_EQ(data, Filled(kPage, 'K'));

  // The child is a task of its own: its id follows, its owner is the caller.
  EXPECT_EQ(StatusNumber("id", "kid"), 2u);
  EXPECT_EQ(Status("kid")["owner"],
            std::to_string(::getuid()) + ":" + std::to_string(::getgid()));
}

TEST_F(CtlTest, ForkOfAChildWritingFirstAlsoDiverges) {
  ASSERT_EQ(Ctl("allocate 0x20000 4K\n"), 0);
  ASSERT_EQ(WriteMem(Mem(), 0x20000, Filled(kPage, 'c')), 0);
  ASSERT_EQ(Ctl("fork kid\n"), 0);
  // The child writes first this time.
  ASSERT_EQ(WriteMem(Mem("kid"), 0x20000, Filled(kPage, 'K')), 0);
  std::string data;
  ASSERT_EQ(ReadMem(Mem(), 0x20000, kPage, &data), 0);
  EXPECT_EQ(data, Filled(kPage, 'c'));
  // Later changes of the parent's map do not reach the child.
  ASSERT_EQ(Ctl("deallocate 0x20000 4K\n"), 0);
  ASSERT_EQ(ReadMem(Mem("kid"), 0x20000, kPage, &data), 0);
  EXPECT_EQ(data, Filled(kPage, 'K'));
}

TEST_F(CtlTest, ForkErrors) {
  ASSERT_EQ(::mkdir((mount_ / "taken").c_str(), 0700), 0);
  EXPECT_EQ(Ctl("fork taken\n"), EEXIST);
  EXPECT_EQ(Ctl("fork t\n"), EEXIST);
  EXPECT_EQ(Ctl("fork .hidden\n"), EINVAL);
  EXPECT_EQ(Ctl("fork host_page_size\n"), EINVAL);
  EXPECT_EQ(Ctl("fork " + std::string(65, 'a') + "\n"), EINVAL);
  EXPECT_EQ(Ctl("fork " + std::string(64, 'a') + "\n"), 0);
  EXPECT_EQ(ListDir(mount_.path()),
            (std::vector<std::string>{"host_page_size", "t", "taken",
                                      std::string(64, 'a')}));
}

// --- writes of several lines, and the result line ---------------------------

TEST_F(CtlTest, AWriteRunsItsLinesInOrderAndStopsAtTheFirstFailure) {
  const CtlReply r = CtlResult(
      "allocate 0x10000 4K\nallocate 0x20000 4K\nallocate 0x10000 4K\n"
      "allocate 0x30000 4K\n");
  EXPECT_EQ(r.error, ENOMEM);
  EXPECT_EQ(r.line, "error KERN_NO_SPACE\n");
  // The two lines before the failure stay done; the one after never ran.
  EXPECT_EQ(Maps(),
            "0000000000010000-0000000000011000 rw-/rwx copy\n"
            "0000000000020000-0000000000021000 rw-/rwx copy\n");
  // Later lines depending on earlier ones of the same write work.
  EXPECT_EQ(Ctl("allocate 0x40000 4K\nprotect 0x40000 4K r--\n"
                "inherit 0x40000 4K share\n"),
            0);
  EXPECT_EQ(Maps(),
            "0000000000010000-0000000000011000 rw-/rwx copy\n"
            "0000000000020000-0000000000021000 rw-/rwx copy\n"
            "0000000000040000-0000000000041000 r--/rwx share\n");
}

TEST_F(CtlTest, AWriteStopsAtAMalformedLine) {
  const CtlReply r = CtlResult(
      "allocate 0x10000 4K\nallocate 0x20000 lots\nallocate 0x30000 4K\n");
  EXPECT_EQ(r.error, EINVAL);
  EXPECT_EQ(r.line, "error KERN_INVALID_ARGUMENT\n");
  EXPECT_EQ(Maps(), "0000000000010000-0000000000011000 rw-/rwx copy\n");
}

TEST_F(CtlTest, TheResultLineIsTheLastCommandsOnTheSameFile) {
  const int fd = ::open((mount_ / "t/ctl").c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  char buf[128];
  // Nothing written yet: nothing to read.
  EXPECT_EQ(::read(fd, buf, sizeof buf), 0);

  const std::string first = "allocate 0x10000 4K\nallocate anywhere 8K\n";
  ASSERT_EQ(::write(fd, first.data(), first.size()),
            static_cast<ssize_t>(first.size()));
  ssize_t n = ::read(fd, buf, sizeof buf);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<std::size_t>(n)), "0x0\n");
  // Read once; then end of file until the next write.
  EXPECT_EQ(::read(fd, buf, sizeof buf), 0);

  // A small read buffer takes the line in pieces.
  const std::string second = "allocate anywhere 4K\n";
  ASSERT_EQ(::write(fd, second.data(), second.size()),
            static_cast<ssize_t>(second.size()));
  std::string line;
  while ((n = ::read(fd, buf, 2)) > 0)
    line.append(buf, static_cast<std::size_t>(n));
  EXPECT_EQ(line, "0x2000\n");

  const std::string third = "allocate 0x10000 4K\n";
  EXPECT_EQ(::write(fd, third.data(), third.size()), -1);
  EXPECT_EQ(errno, ENOMEM);
  n = ::read(fd, buf, sizeof buf);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<std::size_t>(n)),
            "error KERN_NO_SPACE\n");

  // Another open file of the same ctl has a result line of its own.
  const int other = ::open((mount_ / "t/ctl").c_str(), O_RDWR);
  ASSERT_GE(other, 0);
  EXPECT_EQ(::read(other, buf, sizeof buf), 0);
  const std::string fourth = "deallocate 0x10000 4K";  // no final newline
  ASSERT_EQ(::write(other, fourth.data(), fourth.size()),
            static_cast<ssize_t>(fourth.size()));
  n = ::read(other, buf, sizeof buf);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<std::size_t>(n)), "ok\n");
  ::close(other);
  ::close(fd);
  EXPECT_EQ(Maps(), "0000000000000000-0000000000003000 rw-/rwx copy\n");
}

// A write that holds a newline and ends inside a line keeps the cut line:
// the next write on the same open file continues it, and close(2) runs what
// is left and fails with its errno.
TEST_F(CtlTest, ACutLastLineContinuesInTheNextWriteOrRunsAtClose) {
  const int fd = ::open((mount_ / "t/ctl").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  const std::string first = "allocate 0x20000 4K\nallocate 0x30";
  ASSERT_EQ(::write(fd, first.data(), first.size()),
            static_cast<ssize_t>(first.size()));
  EXPECT_EQ(Maps(), "0000000000020000-0000000000021000 rw-/rwx copy\n");
  const std::string rest = "000 4K\nallocate 0x20000 4K";
  ASSERT_EQ(::write(fd, rest.data(), rest.size()),
            static_cast<ssize_t>(rest.size()));
  EXPECT_EQ(Maps(),
            "0000000000020000-0000000000021000 rw-/rwx copy\n"
            "0000000000030000-0000000000031000 rw-/rwx copy\n");
  // The kept "allocate 0x20000 4K" overlaps: close reports KERN_NO_SPACE.
  EXPECT_EQ(::close(fd), -1);
  EXPECT_EQ(errno, ENOMEM);
  // A write without a newline is one whole command: it runs at once.
  const int again = ::open((mount_ / "t/ctl").c_str(), O_RDWR);
  ASSERT_GE(again, 0);
  const std::string whole = "allocate 0x20000 4K";
  EXPECT_EQ(::write(again, whole.data(), whole.size()), -1);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(::close(again), 0);
}

// Each of these writes is rejected whole with EINVAL: had any been taken
// leniently it would have changed the map.
TEST_F(CtlTest, MalformedLinesAreEinvalAndDoNothing) {
  ASSERT_EQ(Ctl("allocate 0x10000 4K\n"), 0);
  const std::string before = Maps();
  const std::vector<std::string> malformed = {
      "hello world\n",
      "allocate\n",
      "allocate 0x20000\n",
      "allocate 0x20000 4K extra\n",
      Bytes("allocate 0x20000\0 4K\n"),      // NUL byte
      Bytes("allocate 0x20000 4K\0\n"),      // NUL at the end
      "allocate 0x20000 4K\x01\n",           // control byte
      "allocate 0x20000 4K\xc3\xa9\n",       // not ASCII
      "allocate 0x10000000000000000 4K\n",   // 65 bits
      "allocate 18446744073709551616 4K\n",  // 2^64
      "allocate 0x20000 0x10000000000000000\n",
      "allocate 0x20000 17179869184G\n",  // 2^64 with suffix
      "allocate -4096 4K\n",              // negative
      "allocate 0x20000 -1\n",
      "allocate +0x20000 4K\n",
      "allocate 0x2g000 4K\n",
      "allocate 0x 4K\n",
      "allocate 0x20000 4Q\n",
      "allocate 0x20000K 4K\n",  // ADDR takes no suffix
      "allocate anywhere\n",
      "deallocate 0x10000\n",
      "protect 0x10000 4K\n",
      "protect 0x10000 4K rwz\n",
      "protect 0x10000 4K rw\n",
      "protect 0x10000 4K wr-\n",
      "protect 0x10000 4K maximum r--\n",
      "inherit 0x10000 4K sometimes\n",
      "copy 0x10000 4K\n",
      "copy-from t 0x10000 4K\n",
      "copy-from t 0x10000 4K 0x20000 alloc alloc\n",
      "copy-from t 0x10000 4K 0x20000 allocate\n",
      "fork\n",
      "fork a b\n",
      "frobnicate 0x20000 4K\n",
      "ALLOCATE 0x20000 4K\n",
      "task x\n",  // manifest only
      "fill 0x10000 4K 1\n",
      "load 0x10000 /etc/hostname\n",
  };
  for (const std::string& line : malformed) {
    SCOPED_TRACE(::testing::PrintToString(line));
    const CtlReply r = CtlResult(line);
    EXPECT_EQ(r.error, EINVAL);
    EXPECT_EQ(r.line, "error KERN_INVALID_ARGUMENT\n");
    EXPECT_EQ(Maps(), before);
  }
  EXPECT_EQ(ListDir(mount_.path()),
            (std::vector<std::string>{"host_page_size", "t"}));
}

// The kernel hands a write over 1 MiB to the daemon in several requests; the
// commands of one write(2) must all run all the same, none cut in two.
TEST_F(CtlTest, AWriteLargerThanOneRequestRunsEveryCommand) {
  const std::string line = "allocate anywhere 4K\n";
  std::string script;
  std::size_t lines = 0;
  for (; script.size() < (3u << 19); ++lines) script += line;  // 1.5 MiB
  const CtlReply r = CtlResult(script);
  EXPECT_EQ(r.error, 0);
  char last[32];
  std::snprintf(last, sizeof last, "0x%zx\n", (lines - 1) * kPage);
  EXPECT_EQ(r.line, last);
  char maps[80];
  std::snprintf(maps, sizeof maps, "%016x-%016zx rw-/rwx copy\n", 0,
                lines * kPage);
  EXPECT_EQ(Maps(), maps);
}

// Tools write a script in chunks that cut lines anywhere (cat 128 KiB, dd
// its block size, here 1000 bytes): a cut line continues in the next write.
TEST_F(CtlTest, CatAndDdOfALargeScriptRunEveryCommand) {
  TempDir dir;
  std::string script;
  std::size_t lines = 0;
  for (; script.size() < (5u << 19); ++lines) {
    script += "allocate " + std::to_string(0x100000 + lines * kPage) + " 4K\n";
  }
  const std::string path = dir.Write("script", script);
  const std::string ctl = mount_ / "t/ctl";
  RunResult cat = RunCommand({"sh", "-c", "cat \"$0\" >\"$1\"", path, ctl});
  ASSERT_EQ(cat.exit_code, 0) << cat.err;
  char maps[80];
  std::snprintf(maps, sizeof maps, "%016x-%016zx rw-/rwx copy\n", 0x100000,
                0x100000 + lines * kPage);
  EXPECT_EQ(Maps(), maps);
  ASSERT_EQ(Ctl("deallocate 0 0x80000000\n"), 0);
  RunResult dd =
      RunCommand({"dd", "if=" + path, "of=" + ctl, "bs=1000", "status=none"});
  ASSERT_EQ(dd.exit_code, 0) << dd.err;
  EXPECT_EQ(Maps(), maps);
}

TEST_F(CtlTest, OneMebibyteOfGarbageInOneWriteIsEinval) {
  ASSERT_EQ(Ctl("allocate 0x10000 4K\n"), 0);
  const std::string before = Maps();
  std::mt19937 random(20240611);
  std::string garbage(1 << 20, '\0');
  for (char& c : garbage) c = static_cast<char>(random() & 0xff);
  const CtlReply r = CtlResult(garbage);
  EXPECT_EQ(r.error, EINVAL);
  EXPECT_EQ(r.line, "error KERN_INVALID_ARGUMENT\n");
  // One line of 1 MiB of letters: an unknown command.
  const CtlReply letters = CtlResult(std::string(1 << 20, 'a'));
  EXPECT_EQ(letters.error, EINVAL);
  EXPECT_EQ(Maps(), before);
  // The daemon is fine afterwards.
  EXPECT_EQ(Ctl("allocate 0x20000 4K\n"), 0);
}

// --- maps and status --------------------------------------------------------

TEST_F(CtlTest, MapsShowsMaximalRunsOfEqualAttributes) {
  EXPECT_EQ(Maps(), "");
  ASSERT_EQ(Ctl("allocate 0x10000 16K\nprotect 0x11000 4K r--\n"
                "inherit 0x13000 4K none\n"
                "allocate 0x20000 4K\nallocate 0x21000 4K\n"
                "allocate 0x30000 4K\nprotect 0x30000 4K max r-x\n"
                "allocate 0xfffff000 4K\n"),
            0);
  const std::string expected =
      "0000000000010000-0000000000011000 rw-/rwx copy\n"
      "0000000000011000-0000000000012000 r--/rwx copy\n"
      "0000000000012000-0000000000013000 rw-/rwx copy\n"
      "0000000000013000-0000000000014000 rw-/rwx none\n"
      "0000000000020000-0000000000022000 rw-/rwx copy\n"
      "0000000000030000-0000000000031000 r--/r-x copy\n"
      "00000000fffff000-0000000100000000 rw-/rwx copy\n";
  EXPECT_EQ(Maps(), expected);
  EXPECT_EQ(StatusNumber("regions"), 7u);
  // Equal attributes again: the runs merge.
  ASSERT_EQ(Ctl("protect 0x11000 4K rw-\ninherit 0x13000 4K copy\n"), 0);
  EXPECT_EQ(Maps(),
            "0000000000010000-0000000000014000 rw-/rwx copy\n"
            "0000000000020000-0000000000022000 rw-/rwx copy\n"
            "0000000000030000-0000000000031000 r--/r-x copy\n"
            "00000000fffff000-0000000100000000 rw-/rwx copy\n");
  EXPECT_EQ(StatusNumber("regions"), 4u);
}

TEST_F(CtlTest, MapsAndStatusModes) {
  struct stat st;
  ASSERT_EQ(::stat((mount_ / "t/maps").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0400u);
  ASSERT_EQ(::stat((mount_ / "t/status").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0444u);
  ASSERT_EQ(::stat((mount_ / "t/ctl").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(CtlTest, StatusHasEveryKeyInItsFormat) {
  const std::string text = ReadFile(mount_ / "t/status");
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  const auto status = ParseStatus(text);
  EXPECT_FALSE(status.contains("!bad")) << text;
  EXPECT_EQ(status.at("name"), "t");
  EXPECT_EQ(status.at("id"), "1");
  EXPECT_EQ(status.at("owner"),
            std::to_string(::getuid()) + ":" + std::to_string(::getgid()));
  EXPECT_EQ(status.at("page_size"), "4096");
  EXPECT_EQ(status.at("address_bits"), "32");
  EXPECT_EQ(status.at("regions"), "0");
  EXPECT_EQ(status.at("virtual_bytes"), "0");
  EXPECT_EQ(status.at("resident_bytes"), "0");
  EXPECT_EQ(status.at("shared_bytes"), "0");
  // Ids count up and are not reused.
  ASSERT_EQ(::mkdir((mount_ / "u").c_str(), 0700), 0);
  EXPECT_EQ(StatusNumber("id", "u"), 2u);
  ASSERT_EQ(::rmdir((mount_ / "u").c_str()), 0);
  ASSERT_EQ(::mkdir((mount_ / "u").c_str(), 0700), 0);
  EXPECT_EQ(StatusNumber("id", "u"), 3u);
}

TEST_F(CtlTest, StatusCountsVirtualResidentAndSharedBytes) {
  ASSERT_EQ(Ctl("allocate 0x10000 64K\nallocate 0x40000 8K\n"), 0);
  EXPECT_EQ(StatusNumber("virtual_bytes"), 72u * 1024);
  EXPECT_EQ(StatusNumber("regions"), 2u);
  // Zero-fill: allocating and reading costs nothing.
  std::string data;
  ASSERT_EQ(ReadMem(Mem(), 0x10000, 16 * kPage, &data), 0);
  EXPECT_EQ(StatusNumber("resident_bytes"), 0u);
  // Writing one page makes one page resident.
  ASSERT_EQ(WriteMem(Mem(), 0x10000, Filled(kPage, 'a')), 0);
  EXPECT_EQ(StatusNumber("resident_bytes"), kPage);
  EXPECT_EQ(StatusNumber("shared_bytes"), 0u);
  ASSERT_EQ(WriteMem(Mem(), 0x10000, Filled(kPage, 'b')), 0);  // same page
  EXPECT_EQ(StatusNumber("resident_bytes"), kPage);
  // A copy maps the same page at a second address: counted once, shared.
  ASSERT_EQ(Ctl("copy 0x10000 4K 0x40000\n"), 0);
  EXPECT_EQ(StatusNumber("resident_bytes"), kPage);
  EXPECT_EQ(StatusNumber("shared_bytes"), kPage);
  // Writing the copy gives it a page of its own: nothing shared any more.
  ASSERT_EQ(WriteMem(Mem(), 0x40000, Filled(kPage, 'c')), 0);
  EXPECT_EQ(StatusNumber("resident_bytes"), 2 * kPage);
  EXPECT_EQ(StatusNumber("shared_bytes"), 0u);
  // A page shared with another task counts as shared in both.
  ASSERT_EQ(Ctl("inherit 0x40000 8K share\nfork kid\n"), 0);
  EXPECT_EQ(StatusNumber("shared_bytes"), 2 * kPage);  // 0x10000 copy-on-write
  EXPECT_EQ(StatusNumber("resident_bytes", "kid"), 2 * kPage);
  EXPECT_EQ(StatusNumber("shared_bytes", "kid"), 2 * kPage);
  // Deallocating frees.
  ASSERT_EQ(Ctl("deallocate 0x10000 64K\n"), 0);
  EXPECT_EQ(StatusNumber("virtual_bytes"), 8u * 1024);
  EXPECT_EQ(StatusNumber("resident_bytes"), kPage);
  EXPECT_EQ(StatusNumber("shared_bytes"), kPage);
  EXPECT_EQ(StatusNumber("shared_bytes", "kid"), kPage);
}

// --- the embedded demo ------------------------------------------------------

constexpr char kGreeting[] =
    "Hello from taskfs! This is the data region of task demo.\n";
constexpr char kDemoMaps[] =
    "0000000000400000-0000000000410000 r-x/rwx copy\n"
    "0000000000600000-0000000000610000 rw-/rwx copy\n"
    "0000000000610000-0000000000620000 ---/rwx copy\n"
    "0000000000700000-0000000000710000 rw-/rwx share\n";

class CtlDemoTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(mount_.ok()) << mount_.error(); }
  Mount mount_{{}};  // no options: the embedded demo
};

TEST_F(CtlDemoTest, DeclaresDemoAndChild) {
  EXPECT_EQ(ListDir(mount_.path()),
            (std::vector<std::string>{"host_page_size", "demo", "child"}));
  EXPECT_EQ(ReadFile(mount_ / "host_page_size"), "4096\n");
  auto status = ParseStatus(ReadFile(mount_ / "demo/status"));
  EXPECT_EQ(status["name"], "demo");
  EXPECT_EQ(status["id"], "1");
  EXPECT_EQ(status["address_bits"], "47");
  EXPECT_EQ(status["regions"], "4");
  EXPECT_EQ(status["virtual_bytes"], std::to_string(4 * 65536));
  status = ParseStatus(ReadFile(mount_ / "child/status"));
  EXPECT_EQ(status["name"], "child");
  EXPECT_EQ(status["id"], "2");
  EXPECT_EQ(status["owner"],
            std::to_string(::getuid()) + ":" + std::to_string(::getgid()));
}

TEST_F(CtlDemoTest, MapsAreExact) {
  EXPECT_EQ(ReadFile(mount_ / "demo/maps"), kDemoMaps);
  EXPECT_EQ(ReadFile(mount_ / "child/maps"), kDemoMaps);
}

TEST_F(CtlDemoTest, MemoryHoldsTextGreetingAndGuard) {
  for (const char* task : {"demo", "child"}) {
    SCOPED_TRACE(task);
    const std::string mem = mount_ / (std::string(task) + "/mem");
    std::string data;
    ASSERT_EQ(ReadMem(mem, 0x400000, 65536, &data), 0);
    EXPECT_EQ(data, std::string(65536, '\xc3'));
    ASSERT_EQ(ReadMem(mem, 0x600000, 2 * kPage, &data), 0);
    std::string expected = kGreeting;
    expected.resize(2 * kPage, '\0');
    EXPECT_EQ(data, expected);
    EXPECT_EQ(ReadMem(mem, 0x610000, kPage, &data), EACCES);
    EXPECT_EQ(WriteMem(mem, 0x400000, Filled(kPage, 'x')), EACCES);
  }
  // Text and greeting are written pages the child shares copy-on-write.
  const auto status = ParseStatus(ReadFile(mount_ / "demo/status"));
  EXPECT_EQ(status.at("resident_bytes"), std::to_string(65536 + kPage));
  EXPECT_EQ(status.at("shared_bytes"), std::to_string(65536 + kPage));
}

TEST_F(CtlDemoTest, SharedRegionIsOneMemoryAndDataIsCopied) {
  ASSERT_EQ(WriteMem(mount_ / "demo/mem", 0x700000, Filled(kPage, 'D')), 0);
  std::string data;
  ASSERT_EQ(ReadMem(mount_ / "child/mem", 0x700000, kPage, &data), 0);
  EXPECT_EQ(data, Filled(kPage, 'D'));
  ASSERT_EQ(WriteMem(mount_ / "child/mem", 0x701000, Filled(kPage, 'C')), 0);
  ASSERT_EQ(ReadMem(mount_ / "demo/mem", 0x701000, kPage, &data), 0);
  EXPECT_EQ(data, Filled(kPage, 'C'));
  // The data region is inherited copy: a write stays in its task.
  ASSERT_EQ(WriteMem(mount_ / "demo/mem", 0x600000, Filled(kPage, 'X')), 0);
  ASSERT_EQ(ReadMem(mount_ / "child/mem", 0x600000, kPage, &data), 0);
  EXPECT_EQ(data.substr(0, sizeof kGreeting - 1), kGreeting);
}

// The demo's addresses are multiples of 64 KiB: it is the same with the
// largest page size.
TEST(CtlDemoPageSizeTest, DemoIsTheSameWithLargePages) {
  Mount mount({"-o", "page_size=65536"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  EXPECT_EQ(ReadFile(mount / "demo/maps"), kDemoMaps);
  EXPECT_EQ(ReadFile(mount / "child/maps"), kDemoMaps);
  std::string data;
  ASSERT_EQ(ReadMem(mount / "child/mem", 0x600000, 65536, &data), 0);
  std::string expected = kGreeting;
  expected.resize(65536, '\0');
  EXPECT_EQ(data, expected);
}

// --- manifests --------------------------------------------------------------

TEST(CtlManifestTest, FillAndLoadSetContentsRegardlessOfProtection) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::string blob(5000, '\0');
  for (std::size_t i = 0; i < blob.size(); ++i) {
    blob[i] = static_cast<char>(i % 251);
  }
  dir.Write("data/blob.bin", blob);
  const std::string manifest =
      dir.Write("demo.tasks",
                "# a manifest for the test\n"
                "\n"
                "task m            # a task\n"
                "allocate 0x10000 16K\n"
                "protect 0x10000 16K r--\n"
                "fill 0x10000 8K 0xab\n"
                "load 0x12000 data/blob.bin\n"
                "allocate 0x20000 4K\n"
                "protect 0x20000 4K ---\n"
                "fill 0x20000 4K 7\n"
                "task n\n"
                "copy-from m 0x10000 4K 0x30000 alloc\n"
                "  allocate   anywhere   4K  \n");
  // The test runs in the build tree: the load path is relative to the
  // manifest, not to the daemon's working directory.
  Mount mount({"-o", "tasks=" + manifest});
  ASSERT_TRUE(mount.ok()) << mount.error();
  EXPECT_EQ(ListDir(mount.path()),
            (std::vector<std::string>{"host_page_size", "m", "n"}));
  EXPECT_EQ(ReadFile(mount / "m/maps"),
            "0000000000010000-0000000000014000 r--/rwx copy\n"
            "0000000000020000-0000000000021000 ---/rwx copy\n");
  EXPECT_EQ(ReadFile(mount / "n/maps"),
            "0000000000000000-0000000000001000 rw-/rwx copy\n"
            "0000000000030000-0000000000031000 r--/rwx copy\n");
  std::string data;
  ASSERT_EQ(ReadMem(mount / "m/mem", 0x10000, 4 * kPage, &data), 0);
  std::string expected = std::string(2 * kPage, '\xab') + blob;
  expected.resize(4 * kPage, '\0');
  EXPECT_EQ(data, expected);
  ASSERT_EQ(WriteFile(mount / "m/ctl", "protect 0x20000 4K r--\n"), 0);
  ASSERT_EQ(ReadMem(mount / "m/mem", 0x20000, kPage, &data), 0);
  EXPECT_EQ(data, std::string(kPage, '\x07'));
  ASSERT_EQ(ReadMem(mount / "n/mem", 0x30000, kPage, &data), 0);
  EXPECT_EQ(data, std::string(kPage, '\xab'));
  // Manifest tasks belong to the daemon's user.
  EXPECT_EQ(ParseStatus(ReadFile(mount / "m/status"))["owner"],
            std::to_string(::getuid()) + ":" + std::to_string(::getgid()));
}

TEST(CtlManifestTest, EmptyManifestMountsWithNoTasks) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  for (const char* text : {"", "# only a comment\n\n   \n"}) {
    SCOPED_TRACE(text);
    const std::string manifest = dir.Write("empty.tasks", text);
    Mount mount({"-o", "tasks=" + manifest});
    ASSERT_TRUE(mount.ok()) << mount.error();
    EXPECT_EQ(ListDir(mount.path()),
              (std::vector<std::string>{"host_page_size"}));
  }
}

// Starts the daemon on a bad manifest and expects it to end before mounting
// with exit status 1 and exactly `taskfs: PATH:LINE: message` on stderr.
// Returns the message.
std::string ExpectManifestRejected(const TempDir& dir,
                                   const std::string& manifest, int line) {
  const std::string mountpoint = dir.MakeDir("mnt");
  const RunResult r =
      RunCommand({DaemonPath(), "-f", "-o", "tasks=" + manifest, mountpoint},
                 std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_FALSE(IsMountpoint(mountpoint));
  EXPECT_EQ(r.out, "");
  const std::string prefix =
      "taskfs: " + manifest + ":" + std::to_string(line) + ": ";
  EXPECT_EQ(r.err.rfind(prefix, 0), 0u) << r.err;
  EXPECT_GT(r.err.size(), prefix.size() + 1) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;  // one line
  if (r.err.rfind(prefix, 0) != 0 || r.err.size() <= prefix.size()) return "";
  return r.err.substr(prefix.size(), r.err.size() - prefix.size() - 1);
}

TEST(CtlManifestTest, BadCommandEndsTheDaemon) {
  TempDir dir;
  const std::string manifest = dir.Write(
      "bad.tasks", "task a\nallocate 0x10000 4K\nfrobnicate 0x10000 4K\n");
  EXPECT_NE(ExpectManifestRejected(dir, manifest, 3).find("frobnicate"),
            std::string::npos);
}

TEST(CtlManifestTest, FailingCommandEndsTheDaemonWithTheKernName) {
  TempDir dir;
  const std::string manifest = dir.Write(
      "overlap.tasks",
      "task a\n# comment\nallocate 0x10000 4K\nallocate 0x10000 4K\n");
  EXPECT_NE(ExpectManifestRejected(dir, manifest, 4).find("KERN_NO_SPACE"),
            std::string::npos);
}

TEST(CtlManifestTest, CommandBeforeAnyTaskEndsTheDaemon) {
  TempDir dir;
  const std::string manifest =
      dir.Write("notask.tasks", "\nallocate 0x10000 4K\n");
  ExpectManifestRejected(dir, manifest, 2);
}

TEST(CtlManifestTest, BadFillEndsTheDaemon) {
  TempDir dir;
  const std::string big = dir.Write(
      "fill256.tasks", "task a\nallocate 0x10000 4K\nfill 0x10000 4K 256\n");
  ExpectManifestRejected(dir, big, 3);
  const std::string hole = dir.Write(
      "fillhole.tasks", "task a\nallocate 0x10000 4K\nfill 0x10000 8K 1\n");
  ExpectManifestRejected(dir, hole, 3);
  const std::string name = dir.Write("name.tasks", "task .hidden\n");
  ExpectManifestRejected(dir, name, 1);
}

TEST(CtlManifestTest, LoadOfAMissingFileEndsTheDaemon) {
  TempDir dir;
  const std::string manifest =
      dir.Write("missing.tasks",
                "task a\nallocate 0x10000 4K\nload 0x10000 nothere.bin\n");
  EXPECT_NE(ExpectManifestRejected(dir, manifest, 3).find("nothere.bin"),
            std::string::npos);
}

TEST(CtlManifestTest, LoadOfADirectoryEndsTheDaemon) {
  TempDir dir;
  dir.MakeDir("adir");
  const std::string manifest = dir.Write(
      "dir.tasks", "task a\nallocate 0x10000 4K\nload 0x10000 adir\n");
  EXPECT_NE(ExpectManifestRejected(dir, manifest, 3).find("adir"),
            std::string::npos);
}

TEST(CtlManifestTest, LoadPastTheRegionEndsTheDaemon) {
  TempDir dir;
  dir.Write("big.bin", std::string(kPage + 1, 'x'));
  const std::string manifest = dir.Write(
      "big.tasks", "task a\nallocate 0x10000 4K\nload 0x10000 big.bin\n");
  ExpectManifestRejected(dir, manifest, 3);
}

TEST(CtlManifestTest, BinaryGarbageEndsTheDaemon) {
  TempDir dir;
  const std::string manifest =
      dir.Write("garbage.tasks", Bytes("task a\n\x7f"
                                       "ELF\x02\x01\x01\x00\xff\xfe\x03\n"));
  ExpectManifestRejected(dir, manifest, 2);
  const std::string nul =
      dir.Write("nul.tasks", Bytes("task a\nallocate 0x10000\0 4K\n"));
  ExpectManifestRejected(dir, nul, 2);
  // A real binary: the daemon itself.
  ExpectManifestRejected(dir, DaemonPath(), 1);
}

TEST(CtlManifestTest, DuplicateTaskEndsTheDaemon) {
  TempDir dir;
  const std::string manifest =
      dir.Write("dup.tasks", "task worker\ntask b\ntask worker\n");
  EXPECT_NE(ExpectManifestRejected(dir, manifest, 3).find("worker"),
            std::string::npos);
  const std::string forked =
      dir.Write("forkdup.tasks", "task a\ntask b\nfork a\n");
  ExpectManifestRejected(dir, forked, 3);
}

TEST(CtlManifestTest, UnreadableManifestEndsTheDaemon) {
  TempDir dir;
  const std::string mountpoint = dir.MakeDir("mnt");
  const std::string missing = dir / "no.tasks";
  const RunResult r =
      RunCommand({DaemonPath(), "-f", "-o", "tasks=" + missing, mountpoint},
                 std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err.rfind("taskfs: " + missing, 0), 0u) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  EXPECT_FALSE(IsMountpoint(mountpoint));
}

}  // namespace
}  // namespace taskfs::testing
