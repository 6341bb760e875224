// libtaskfs through a real mount: every call of <taskfs/mach.h>, each of its
// result codes and each argument rule, against a fresh taskfs daemon.
#include "taskfs/mach.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "taskfs/task_name.h"
#include "tests/integration/mount_fixture.h"
#include "tests/integration/test_util.h"

namespace taskfs::testing {
namespace {

constexpr vm_address_t kA = 0x100000;  // where the tests allocate

// A mount with no tasks and a task "t" opened on it.
class ClientMach : public ::testing::Test {
 protected:
  explicit ClientMach(const std::vector<std::string>& options = {"-o",
                                                                 "tasks=none"})
      : mount_(options) {}

  void SetUp() override {
    ASSERT_TRUE(mount_.ok()) << mount_.error();
    ASSERT_EQ(taskfs_task_create(mount_.path().c_str(), "t", &t_),
              KERN_SUCCESS);
  }
  void TearDown() override {
    if (t_ != TASK_NULL) taskfs_task_close(t_);
  }

  // Allocates n pages at kA and writes a pattern into them.
  void Fill(std::size_t pages, unsigned seed = 1) {
    vm_address_t a = kA;
    ASSERT_EQ(vm_allocate(t_, &a, pages * kPage, FALSE), KERN_SUCCESS);
    AlignedBuffer b(pages * kPage);
    const std::string p = Pattern(pages * kPage, seed);
    std::memcpy(b.data, p.data(), p.size());
    ASSERT_EQ(vm_write(t_, kA, reinterpret_cast<vm_offset_t>(b.data),
                       static_cast<mach_msg_type_number_t>(b.size)),
              KERN_SUCCESS);
  }

  // n bytes at address through vm_read; "" (and a failure) on error.
  std::string Read(task_t task, vm_address_t address, vm_size_t n) {
    vm_offset_t data = 0;
    mach_msg_type_number_t count = 0;
    const kern_return_t kr = vm_read(task, address, n, &data, &count);
    EXPECT_EQ(kr, KERN_SUCCESS) << mach_error_string(kr);
    if (kr != KERN_SUCCESS) return "";
    std::string out(reinterpret_cast<const char*>(data), count);
    EXPECT_EQ(vm_deallocate(mach_task_self(), data, count), KERN_SUCCESS);
    return out;
  }
  kern_return_t ReadCode(task_t task, vm_address_t address, vm_size_t n) {
    vm_offset_t data = 0;
    mach_msg_type_number_t count = 0;
    const kern_return_t kr = vm_read(task, address, n, &data, &count);
    if (kr == KERN_SUCCESS && count != 0) {
      vm_deallocate(mach_task_self(), data, count);
    }
    return kr;
  }
  kern_return_t WriteCode(task_t task, vm_address_t address,
                          const std::string& bytes) {
    AlignedBuffer b(bytes.size());
    std::memcpy(b.data, bytes.data(), bytes.size());
    return vm_write(task, address, reinterpret_cast<vm_offset_t>(b.data),
                    static_cast<mach_msg_type_number_t>(bytes.size()));
  }
  std::string Maps(const std::string& task) {
    return ReadFile(mount_ / (task + "/maps"));
  }

  Mount mount_;
  task_t t_ = TASK_NULL;
};

// --- handles -----------------------------------------------------------------

TEST_F(ClientMach, OpenCloseAndHandleRules) {
  task_t again = TASK_NULL;
  ASSERT_EQ(taskfs_task_open((mount_ / "t/").c_str(), &again), KERN_SUCCESS);
  EXPECT_NE(again, t_);
  EXPECT_NE(again, mach_task_self());
  EXPECT_EQ(taskfs_task_close(again), KERN_SUCCESS);
  // A closed handle, TASK_NULL and a number never given out are no task.
  EXPECT_EQ(taskfs_task_close(again), KERN_INVALID_TASK);
  vm_address_t a = 0;
  EXPECT_EQ(vm_allocate(again, &a, kPage, TRUE), KERN_INVALID_TASK);
  EXPECT_EQ(vm_allocate(TASK_NULL, &a, kPage, TRUE), KERN_INVALID_TASK);
  EXPECT_EQ(vm_allocate(12345, &a, kPage, TRUE), KERN_INVALID_TASK);
  // A directory that is no task.
  task_t none = TASK_NULL;
  EXPECT_EQ(taskfs_task_open((mount_ / "nosuch").c_str(), &none),
            KERN_INVALID_TASK);
  EXPECT_EQ(taskfs_task_open("/nonexistent/dir", &none), KERN_INVALID_TASK);
  EXPECT_EQ(taskfs_task_open(mount_.path().c_str(), &none), KERN_INVALID_TASK);
  EXPECT_EQ(taskfs_task_open(nullptr, &none), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(taskfs_task_open("", &none), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(taskfs_task_open((mount_ / "t").c_str(), nullptr),
            KERN_INVALID_ARGUMENT);
}

TEST_F(ClientMach, MachTaskSelfIsOnlyForDeallocatingReadData) {
  const task_t self = mach_task_self();
  EXPECT_EQ(self, mach_task_self());
  EXPECT_NE(self, TASK_NULL);
  vm_address_t a = 0;
  vm_offset_t data = 0;
  mach_msg_type_number_t count = 0;
  vm_size_t size = 0;
  vm_prot_t p = 0, mp = 0;
  vm_inherit_t in = 0;
  boolean_t shared = 0;
  mach_port_t object = 0;
  vm_offset_t offset = 0;
  task_t child = TASK_NULL;
  EXPECT_EQ(vm_allocate(self, &a, kPage, TRUE), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(vm_protect(self, 0, kPage, FALSE, VM_PROT_READ),
            KERN_INVALID_ARGUMENT);
  EXPECT_EQ(vm_inherit(self, 0, kPage, VM_INHERIT_SHARE),
            KERN_INVALID_ARGUMENT);
  EXPECT_EQ(vm_read(self, 0, kPage, &data, &count), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(vm_write(self, 0, 0, 0), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(vm_copy(self, 0, kPage, kPage), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(vm_region(self, &a, &size, &p, &mp, &in, &shared, &object, &offset),
            KERN_INVALID_ARGUMENT);
  EXPECT_EQ(vm_map_copy(t_, self, 0, kPage, 0, TRUE, FALSE),
            KERN_INVALID_ARGUMENT);
  EXPECT_EQ(vm_map_copy(self, t_, 0, kPage, 0, TRUE, FALSE),
            KERN_INVALID_ARGUMENT);
  EXPECT_EQ(task_create(self, FALSE, &child), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(taskfs_task_fork(self, "x", &child), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(task_terminate(self), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(taskfs_task_close(self), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(vm_deallocate(self, 0, 0), KERN_SUCCESS);
}

TEST_F(ClientMach, MachErrorStringForEveryCode) {
  std::set<std::string> seen;
  for (kern_return_t kr :
       {KERN_SUCCESS, KERN_INVALID_ADDRESS, KERN_PROTECTION_FAILURE,
        KERN_NO_SPACE, KERN_INVALID_ARGUMENT, KERN_FAILURE,
        KERN_RESOURCE_SHORTAGE, KERN_NAME_EXISTS, KERN_INVALID_TASK}) {
    const char* s = mach_error_string(kr);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(std::string(s).rfind("(os/kern) ", 0), 0u) << s;
    EXPECT_TRUE(seen.insert(s).second) << s;
  }
  EXPECT_STREQ(mach_error_string(KERN_INVALID_ADDRESS),
               "(os/kern) invalid address");
  EXPECT_STREQ(mach_error_string(42), "(os/kern) unknown error code");
  EXPECT_STREQ(mach_error_string(-1), "(os/kern) unknown error code");
}

// --- vm_allocate / vm_deallocate
// -----------------------------------------------

TEST_F(ClientMach, AllocateFixedAnywhereAndRounding) {
  vm_address_t a = 0x20fff;
  ASSERT_EQ(vm_allocate(t_, &a, 2, FALSE), KERN_SUCCESS);
  EXPECT_EQ(a, 0x20000u);  // rounded down, one page
  EXPECT_EQ(Maps("t"), "0000000000020000-0000000000021000 rw-/rwx copy\n");
  vm_address_t b = 0x12345;
  ASSERT_EQ(vm_allocate(t_, &b, 3 * kPage, TRUE), KERN_SUCCESS);
  EXPECT_EQ(b, 0u);  // the lowest hole that fits
  vm_address_t c = 0;
  ASSERT_EQ(vm_allocate(t_, &c, 0x20000, TRUE), KERN_SUCCESS);
  EXPECT_EQ(c, 0x21000u);
  // Overlap: KERN_NO_SPACE, nothing changed.
  const std::string before = Maps("t");
  vm_address_t d = 0x20000;
  EXPECT_EQ(vm_allocate(t_, &d, kPage, FALSE), KERN_NO_SPACE);
  EXPECT_EQ(d, 0x20000u);
  EXPECT_EQ(Maps("t"), before);
  // Size 0: success, nothing allocated.
  vm_address_t z = 0x500000;
  EXPECT_EQ(vm_allocate(t_, &z, 0, FALSE), KERN_SUCCESS);
  EXPECT_EQ(Maps("t"), before);
  // Outside the 2^47 address space.
  vm_address_t far = vm_address_t{1} << 47;
  EXPECT_EQ(vm_allocate(t_, &far, kPage, FALSE), KERN_INVALID_ADDRESS);
  // No hole large enough.
  vm_address_t huge = 0;
  EXPECT_EQ(vm_allocate(t_, &huge, vm_size_t{1} << 47, TRUE), KERN_NO_SPACE);
  EXPECT_EQ(vm_allocate(t_, nullptr, kPage, TRUE), KERN_INVALID_ARGUMENT);
}

TEST_F(ClientMach, DeallocateRoundsAndIgnoresHoles) {
  Fill(4);
  EXPECT_EQ(vm_deallocate(t_, kA + kPage + 1, 1), KERN_SUCCESS);
  EXPECT_EQ(Maps("t"),
            "0000000000100000-0000000000101000 rw-/rwx copy\n"
            "0000000000102000-0000000000104000 rw-/rwx copy\n");
  EXPECT_EQ(vm_deallocate(t_, 0, kA + 16 * kPage), KERN_SUCCESS);
  EXPECT_EQ(Maps("t"), "");
  EXPECT_EQ(vm_deallocate(t_, 0x900000, 0), KERN_SUCCESS);
  // The range must lie in the address space.
  EXPECT_EQ(vm_deallocate(t_, vm_address_t{1} << 47, kPage),
            KERN_INVALID_ADDRESS);
}

// Whether this process may read [p, p + n): write(2) to a pipe copies from
// it and fails with EFAULT where it is unmapped or PROT_NONE.
bool Readable(vm_offset_t p, std::size_t n) {
  int fds[2];
  if (::pipe(fds) != 0) return false;
  const ssize_t w = ::write(fds[1], reinterpret_cast<void*>(p), n);
  ::close(fds[0]);
  ::close(fds[1]);
  return w == static_cast<ssize_t>(n);
}

TEST_F(ClientMach, DeallocateOfTheCallerFreesVmReadsMemory) {
  Fill(2, 1);
  vm_offset_t data = 0;
  mach_msg_type_number_t count = 0;
  ASSERT_EQ(vm_read(t_, kA, 2 * kPage, &data, &count), KERN_SUCCESS);
  EXPECT_TRUE(Readable(data, count));
  ASSERT_EQ(vm_deallocate(mach_task_self(), data, count), KERN_SUCCESS);
  EXPECT_FALSE(Readable(data, 1));  // gone (or kept for reuse, PROT_NONE)
  EXPECT_FALSE(Readable(data + count - 1, 1));
  // A later read of the same size may get the same memory back, with the
  // new contents.
  ASSERT_EQ(WriteCode(t_, kA, std::string(2 * kPage, 'n')), KERN_SUCCESS);
  vm_offset_t again = 0;
  ASSERT_EQ(vm_read(t_, kA, 2 * kPage, &again, &count), KERN_SUCCESS);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(again), count),
            std::string(2 * kPage, 'n'));
  ASSERT_EQ(vm_deallocate(mach_task_self(), again, count), KERN_SUCCESS);
  // Memory vm_read did not hand out is unmapped, whatever its size; and
  // unaligned start and size cover whole pages, as Mach rounds.
  void* own = mmap(nullptr, 3 * kPage, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(own, MAP_FAILED);
  const auto p = reinterpret_cast<vm_offset_t>(own);
  ASSERT_EQ(vm_deallocate(mach_task_self(), p + kPage + 10, kPage),
            KERN_SUCCESS);
  EXPECT_TRUE(Readable(p, kPage));
  errno = 0;
  EXPECT_EQ(msync(reinterpret_cast<void*>(p + kPage), 2 * kPage, MS_ASYNC), -1);
  EXPECT_EQ(errno, ENOMEM);  // pages 1 and 2 unmapped
  munmap(own, kPage);
  // Many reads held at once, then all freed: each is its own memory.
  std::vector<vm_offset_t> held;
  for (int i = 0; i < 80; ++i) {
    vm_offset_t d = 0;
    ASSERT_EQ(vm_read(t_, kA, kPage, &d, &count), KERN_SUCCESS);
    held.push_back(d);
  }
  EXPECT_EQ(std::set<vm_offset_t>(held.begin(), held.end()).size(), 80u);
  for (vm_offset_t d : held) {
    ASSERT_EQ(vm_deallocate(mach_task_self(), d, kPage), KERN_SUCCESS);
    EXPECT_FALSE(Readable(d, 1));
  }
  // An address range that wraps is refused.
  EXPECT_EQ(vm_deallocate(mach_task_self(), UINTPTR_MAX - 10, 100),
            KERN_INVALID_ARGUMENT);
}

// Buffers of 1 MiB and more start a mapping of whole 2 MiB blocks whose
// tail is libtaskfs's own: it goes with the buffer, whether the buffer is
// freed whole, in parts, or after it left the list of recent buffers, and
// nothing of a freed buffer stays readable.
TEST_F(ClientMach, LargeVmReadBuffersGoWholeHoweverTheyAreFreed) {
  constexpr std::size_t kMiB = 1 << 20;
  constexpr std::size_t kBlock = 2 * kMiB;
  vm_address_t big = 0x10000000;
  ASSERT_EQ(vm_allocate(t_, &big, 3 * kMiB, FALSE), KERN_SUCCESS);
  auto read = [&](std::size_t size) {
    vm_offset_t data = 0;
    mach_msg_type_number_t count = 0;
    EXPECT_EQ(vm_read(t_, big, size, &data, &count), KERN_SUCCESS);
    EXPECT_EQ(count, size);
    return data;
  };
  // Nothing readable of [data, data + span) but what is still handed out.
  auto gone = [&](vm_offset_t data, std::size_t span) {
    for (std::size_t at = 0; at < span; at += kPage) {
      if (Readable(data + at, 1)) return false;
    }
    return true;
  };
  for (std::size_t size : {kMiB, 3 * kMiB}) {
    const vm_offset_t whole = read(size);
    EXPECT_TRUE(Readable(whole, 1) && Readable(whole + size - 1, 1));
    ASSERT_EQ(vm_deallocate(mach_task_self(), whole, size), KERN_SUCCESS);
    EXPECT_TRUE(gone(whole, (size + kBlock - 1) / kBlock * kBlock)) << size;
    // Freed in two parts: the tail goes with the second.
    const vm_offset_t parts = read(size);
    ASSERT_EQ(vm_deallocate(mach_task_self(), parts, size / 2), KERN_SUCCESS);
    EXPECT_TRUE(Readable(parts + size / 2, 1) && Readable(parts + size - 1, 1));
    ASSERT_EQ(vm_deallocate(mach_task_self(), parts + size / 2, size / 2),
              KERN_SUCCESS);
    EXPECT_TRUE(gone(parts, (size + kBlock - 1) / kBlock * kBlock)) << size;
  }
  // More held at once than the list of recent buffers follows (64): the
  // oldest lose their tails while held, and every one goes when freed.
  std::vector<vm_offset_t> held;
  for (int i = 0; i < 70; ++i) held.push_back(read(kMiB));
  for (vm_offset_t d : held) {
    EXPECT_EQ(*reinterpret_cast<volatile char*>(d + kMiB - 1), 0);
    ASSERT_EQ(vm_deallocate(mach_task_self(), d, kMiB), KERN_SUCCESS);
    EXPECT_TRUE(gone(d, kBlock));
  }
}

// --- vm_read
// -------------------------------------------------------------------

TEST_F(ClientMach, ReadReturnsPageAlignedMemoryOfTheCaller) {
  Fill(3, 7);
  vm_offset_t data = 0;
  mach_msg_type_number_t count = 0;
  ASSERT_EQ(vm_read(t_, kA + kPage, 2 * kPage, &data, &count), KERN_SUCCESS);
  EXPECT_EQ(data % static_cast<vm_offset_t>(sysconf(_SC_PAGESIZE)), 0u);
  EXPECT_EQ(count, 2 * kPage);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(data), count),
            Pattern(3 * kPage, 7).substr(kPage));
  // The memory is the caller's own: writable, independent of the task.
  std::memset(reinterpret_cast<void*>(data), 0, count);
  EXPECT_EQ(Read(t_, kA + kPage, kPage),
            Pattern(3 * kPage, 7).substr(kPage, kPage));
  EXPECT_EQ(vm_deallocate(mach_task_self(), data, count), KERN_SUCCESS);
}

TEST_F(ClientMach, ReadArgumentRulesAndCodes) {
  Fill(2);
  ASSERT_EQ(vm_protect(t_, kA + kPage, kPage, FALSE, VM_PROT_NONE),
            KERN_SUCCESS);
  EXPECT_EQ(ReadCode(t_, kA + 1, kPage), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(ReadCode(t_, kA, kPage + 1), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(ReadCode(t_, kA, 100), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(ReadCode(t_, kA + 1, 0), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(ReadCode(t_, kA, vm_size_t{1} << 32), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(ReadCode(t_, 0x900000, kPage), KERN_INVALID_ADDRESS);
  EXPECT_EQ(ReadCode(t_, kA, 3 * kPage), KERN_PROTECTION_FAILURE);
  EXPECT_EQ(ReadCode(t_, kA + kPage, kPage), KERN_PROTECTION_FAILURE);
  // Past the end of the address space, at it and far beyond.
  EXPECT_EQ(ReadCode(t_, vm_address_t{1} << 47, kPage), KERN_INVALID_ADDRESS);
  EXPECT_EQ(ReadCode(t_, (vm_address_t{1} << 47) - kPage, 2 * kPage),
            KERN_INVALID_ADDRESS);
  EXPECT_EQ(ReadCode(t_, vm_address_t{1} << 63, kPage), KERN_INVALID_ADDRESS);
  EXPECT_EQ(ReadCode(t_, UINTPTR_MAX - kPage + 1, kPage), KERN_INVALID_ADDRESS);
  // Size 0 succeeds with nothing.
  vm_offset_t data = 1;
  mach_msg_type_number_t count = 1;
  EXPECT_EQ(vm_read(t_, 0x900000, 0, &data, &count), KERN_SUCCESS);
  EXPECT_EQ(data, 0u);
  EXPECT_EQ(count, 0u);
  EXPECT_EQ(vm_read(t_, kA, kPage, nullptr, &count), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(vm_read(t_, kA, kPage, &data, nullptr), KERN_INVALID_ARGUMENT);
}

TEST_F(ClientMach, ReadOfSeveralRequestsIsWholeOrTheLaterRequestsCode) {
  // 3 MiB: six 512 KiB requests. The last page unreadable: the pread comes
  // back short, and its continuation gives the code.
  const std::size_t pages = (3 << 20) / kPage;
  Fill(pages, 3);
  EXPECT_EQ(Read(t_, kA, pages * kPage), Pattern(pages * kPage, 3));
  ASSERT_EQ(
      vm_protect(t_, kA + (pages - 1) * kPage, kPage, FALSE, VM_PROT_WRITE),
      KERN_SUCCESS);
  EXPECT_EQ(ReadCode(t_, kA, pages * kPage), KERN_PROTECTION_FAILURE);
  ASSERT_EQ(vm_deallocate(t_, kA + (pages - 1) * kPage, kPage), KERN_SUCCESS);
  EXPECT_EQ(ReadCode(t_, kA, pages * kPage), KERN_INVALID_ADDRESS);
}

TEST_F(ClientMach, ReadWithNoRoomInTheCallerIsNoSpace) {
#if defined(TASKFS_SANITIZED)
  GTEST_SKIP() << "a sanitizer's shadow memory needs more address space "
                  "than RLIMIT_AS leaves";
#else
  vm_address_t a = kA;
  ASSERT_EQ(vm_allocate(t_, &a, 64 << 20, FALSE), KERN_SUCCESS);
  const task_t t = t_;
  // In a child whose address space cannot grow by 64 MiB.
  const int result = RunAs({0, 0, {}}, [t] {
    rlimit limit{};
    const std::string status = ReadFile("/proc/self/status");
    const std::size_t at = status.find("VmSize:");
    if (at == std::string::npos) return -1;
    const long vm_kib = std::strtol(status.c_str() + at + 7, nullptr, 10);
    limit.rlim_cur = limit.rlim_max =
        static_cast<rlim_t>(vm_kib + 16 * 1024) * 1024;
    if (setrlimit(RLIMIT_AS, &limit) != 0) return -1;
    vm_offset_t data = 0;
    mach_msg_type_number_t count = 0;
    return vm_read(t, kA, 64 << 20, &data, &count);
  });
  EXPECT_EQ(result, KERN_NO_SPACE);
#endif
}

// --- vm_write
// ------------------------------------------------------------------

TEST_F(ClientMach, WriteArgumentRulesAndCodes) {
  Fill(2, 5);
  AlignedBuffer b(2 * kPage);
  std::memset(b.data, 'w', b.size);
  const auto data = reinterpret_cast<vm_offset_t>(b.data);
  // Unaligned data: refused before any I/O, even where a write would fail
  // otherwise too.
  EXPECT_EQ(vm_write(t_, kA, data + 1, kPage), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(vm_write(t_, kA, data + 8, 0), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(vm_write(t_, 0x900000, data + 1, kPage), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(Read(t_, kA, 2 * kPage), Pattern(2 * kPage, 5));
  EXPECT_EQ(vm_write(t_, kA + 1, data, kPage), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(vm_write(t_, kA, data, kPage + 1), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(vm_write(t_, kA + 1, data, 0), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(vm_write(t_, 0x900000, data, kPage), KERN_INVALID_ADDRESS);
  EXPECT_EQ(vm_write(t_, vm_address_t{1} << 47, data, kPage),
            KERN_INVALID_ADDRESS);
  EXPECT_EQ(vm_write(t_, vm_address_t{1} << 63, data, kPage),
            KERN_INVALID_ADDRESS);
  ASSERT_EQ(vm_protect(t_, kA + kPage, kPage, FALSE, VM_PROT_READ),
            KERN_SUCCESS);
  EXPECT_EQ(vm_write(t_, kA, data, 2 * kPage), KERN_PROTECTION_FAILURE);
  EXPECT_EQ(Read(t_, kA, 2 * kPage), Pattern(2 * kPage, 5));  // all or nothing
  EXPECT_EQ(vm_write(t_, kA, data, 0), KERN_SUCCESS);
  EXPECT_EQ(vm_write(t_, kA, data, kPage), KERN_SUCCESS);
  EXPECT_EQ(Read(t_, kA, kPage), std::string(kPage, 'w'));
}

TEST_F(ClientMach, WriteOfSeveralRequestsKeepsTheEarlierOnes) {
  // 2 MiB = four requests; the last page read-only: the first three
  // requests stay written, the call returns the fourth's code.
  const std::size_t pages = (2 << 20) / kPage;
  Fill(pages, 9);
  ASSERT_EQ(
      vm_protect(t_, kA + (pages - 1) * kPage, kPage, FALSE, VM_PROT_READ),
      KERN_SUCCESS);
  EXPECT_EQ(WriteCode(t_, kA, std::string(pages * kPage, 'n')),
            KERN_PROTECTION_FAILURE);
  const std::string after = Read(t_, kA, (pages - 1) * kPage);
  const std::size_t request = 512 << 10;
  EXPECT_EQ(after.substr(0, 3 * request), std::string(3 * request, 'n'));
  EXPECT_EQ(after.substr(3 * request),
            Pattern(pages * kPage, 9)
                .substr(3 * request, (pages - 1) * kPage - 3 * request));
  // Without the obstacle the whole write lands.
  ASSERT_EQ(vm_protect(t_, kA, pages * kPage, FALSE, VM_PROT_DEFAULT),
            KERN_SUCCESS);
  EXPECT_EQ(WriteCode(t_, kA, std::string(pages * kPage, 'm')), KERN_SUCCESS);
  EXPECT_EQ(Read(t_, kA, pages * kPage), std::string(pages * kPage, 'm'));
}

// --- vm_copy
// -------------------------------------------------------------------

TEST_F(ClientMach, CopyIsVirtualAndFollowsTheRules) {
  Fill(4, 2);
  vm_address_t dst = 0x400000;
  ASSERT_EQ(vm_allocate(t_, &dst, 4 * kPage, FALSE), KERN_SUCCESS);
  ASSERT_EQ(vm_copy(t_, kA, 4 * kPage, dst), KERN_SUCCESS);
  EXPECT_EQ(Read(t_, dst, 4 * kPage), Pattern(4 * kPage, 2));
  ASSERT_EQ(WriteCode(t_, kA, std::string(kPage, 's')), KERN_SUCCESS);
  EXPECT_EQ(Read(t_, dst, kPage), Pattern(4 * kPage, 2).substr(0, kPage));
  EXPECT_EQ(vm_copy(t_, kA + 1, kPage, dst), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(vm_copy(t_, kA, kPage - 1, dst), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(vm_copy(t_, kA, kPage, dst + 1), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(vm_copy(t_, 0x900000, kPage, dst), KERN_INVALID_ADDRESS);
  EXPECT_EQ(vm_copy(t_, kA, kPage, 0x900000), KERN_INVALID_ADDRESS);
  EXPECT_EQ(vm_copy(t_, kA, 0, 0x900000), KERN_SUCCESS);
  ASSERT_EQ(vm_protect(t_, kA, kPage, FALSE, VM_PROT_WRITE), KERN_SUCCESS);
  EXPECT_EQ(vm_copy(t_, kA, kPage, dst), KERN_PROTECTION_FAILURE);
  ASSERT_EQ(vm_protect(t_, dst, kPage, FALSE, VM_PROT_READ), KERN_SUCCESS);
  EXPECT_EQ(vm_copy(t_, kA + kPage, kPage, dst), KERN_PROTECTION_FAILURE);
}

// --- vm_protect / vm_inherit
// ---------------------------------------------------

TEST_F(ClientMach, ProtectCurrentAndMaximum) {
  Fill(2);
  ASSERT_EQ(vm_protect(t_, kA, kPage, FALSE, VM_PROT_READ | VM_PROT_EXECUTE),
            KERN_SUCCESS);
  ASSERT_EQ(vm_protect(t_, kA + kPage, kPage, TRUE, VM_PROT_READ),
            KERN_SUCCESS);
  EXPECT_EQ(Maps("t"),
            "0000000000100000-0000000000101000 r-x/rwx copy\n"
            "0000000000101000-0000000000102000 r--/r-- copy\n");
  EXPECT_EQ(vm_protect(t_, kA + kPage, kPage, FALSE, VM_PROT_DEFAULT),
            KERN_PROTECTION_FAILURE);
  EXPECT_EQ(vm_protect(t_, kA + kPage, kPage, TRUE, VM_PROT_ALL),
            KERN_PROTECTION_FAILURE);
  EXPECT_EQ(vm_protect(t_, kA, 3 * kPage, FALSE, VM_PROT_READ),
            KERN_INVALID_ADDRESS);
  EXPECT_EQ(vm_protect(t_, kA, kPage, FALSE, 8), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(vm_protect(t_, kA, kPage, FALSE, -1), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(vm_protect(t_, kA, 0, FALSE, VM_PROT_READ), KERN_SUCCESS);
}

TEST_F(ClientMach, InheritValuesAndHoles) {
  Fill(3);
  ASSERT_EQ(vm_inherit(t_, kA, kPage, VM_INHERIT_SHARE), KERN_SUCCESS);
  ASSERT_EQ(vm_inherit(t_, kA + 2 * kPage, kPage, VM_INHERIT_NONE),
            KERN_SUCCESS);
  EXPECT_EQ(Maps("t"),
            "0000000000100000-0000000000101000 rw-/rwx share\n"
            "0000000000101000-0000000000102000 rw-/rwx copy\n"
            "0000000000102000-0000000000103000 rw-/rwx none\n");
  EXPECT_EQ(vm_inherit(t_, kA, 4 * kPage, VM_INHERIT_COPY),
            KERN_INVALID_ADDRESS);
  EXPECT_EQ(vm_inherit(t_, kA, kPage, 3), KERN_INVALID_ARGUMENT);
}

// --- vm_region
// -----------------------------------------------------------------

TEST_F(ClientMach, RegionWalksTheMap) {
  Fill(3);
  ASSERT_EQ(vm_inherit(t_, kA + kPage, kPage, VM_INHERIT_SHARE), KERN_SUCCESS);
  ASSERT_EQ(vm_protect(t_, kA + 2 * kPage, kPage, TRUE, VM_PROT_READ),
            KERN_SUCCESS);
  vm_address_t address = 0;
  vm_size_t size = 0;
  vm_prot_t prot = -1, max_prot = -1;
  vm_inherit_t inheritance = 99;
  boolean_t shared = -1;
  mach_port_t object = 7;
  vm_offset_t offset = 7;
  auto region = [&] {
    return vm_region(t_, &address, &size, &prot, &max_prot, &inheritance,
                     &shared, &object, &offset);
  };
  ASSERT_EQ(region(), KERN_SUCCESS);  // the first region above 0
  EXPECT_EQ(address, kA);
  EXPECT_EQ(size, kPage);
  EXPECT_EQ(prot, VM_PROT_DEFAULT);
  EXPECT_EQ(max_prot, VM_PROT_ALL);
  EXPECT_EQ(inheritance, VM_INHERIT_COPY);
  EXPECT_EQ(shared, FALSE);
  EXPECT_EQ(object, MACH_PORT_NULL);
  EXPECT_EQ(offset, 0u);
  address = kA + kPage + 100;  // inside the share region
  ASSERT_EQ(region(), KERN_SUCCESS);
  EXPECT_EQ(address, kA + kPage);
  EXPECT_EQ(inheritance, VM_INHERIT_SHARE);
  EXPECT_EQ(shared, TRUE);
  address += size;
  ASSERT_EQ(region(), KERN_SUCCESS);
  EXPECT_EQ(prot, VM_PROT_READ);
  EXPECT_EQ(max_prot, VM_PROT_READ);
  EXPECT_EQ(shared, FALSE);
  address += size;
  EXPECT_EQ(region(), KERN_NO_SPACE);
  EXPECT_EQ(vm_region(t_, &address, &size, &prot, &max_prot, &inheritance,
                      &shared, nullptr, &offset),
            KERN_INVALID_ARGUMENT);
  EXPECT_EQ(vm_region(t_, nullptr, &size, &prot, &max_prot, &inheritance,
                      &shared, &object, &offset),
            KERN_INVALID_ARGUMENT);
}

// --- vm_map_copy
// ---------------------------------------------------------------

TEST_F(ClientMach, MapCopyBetweenTasks) {
  Fill(2, 4);
  ASSERT_EQ(vm_protect(t_, kA + kPage, kPage, FALSE, VM_PROT_READ),
            KERN_SUCCESS);
  task_t u = TASK_NULL;
  ASSERT_EQ(taskfs_task_create(mount_.path().c_str(), "u", &u), KERN_SUCCESS);
  // dst_alloc: a new region with the source's attributes.
  ASSERT_EQ(vm_map_copy(u, t_, 0x800000, 2 * kPage, kA, TRUE, FALSE),
            KERN_SUCCESS);
  EXPECT_EQ(Maps("u"),
            "0000000000800000-0000000000801000 rw-/rwx copy\n"
            "0000000000801000-0000000000802000 r--/rwx copy\n");
  EXPECT_EQ(Read(u, 0x800000, 2 * kPage), Pattern(2 * kPage, 4));
  // dst_alloc onto a used range; without it, onto a hole or r--.
  EXPECT_EQ(vm_map_copy(u, t_, 0x800000, kPage, kA, TRUE, FALSE),
            KERN_NO_SPACE);
  EXPECT_EQ(vm_map_copy(u, t_, 0x900000, kPage, kA, FALSE, FALSE),
            KERN_INVALID_ADDRESS);
  EXPECT_EQ(vm_map_copy(u, t_, 0x801000, kPage, kA, FALSE, FALSE),
            KERN_PROTECTION_FAILURE);
  EXPECT_EQ(vm_map_copy(u, t_, 0x800000, kPage, kA + 1, FALSE, FALSE),
            KERN_INVALID_ARGUMENT);
  // Overwrite, then src_destroy.
  ASSERT_EQ(vm_map_copy(u, t_, 0x800000, kPage, kA + kPage, FALSE, TRUE),
            KERN_SUCCESS);
  EXPECT_EQ(Read(u, 0x800000, kPage),
            Pattern(2 * kPage, 4).substr(kPage, kPage));
  EXPECT_EQ(Maps("t"), "0000000000100000-0000000000101000 rw-/rwx copy\n");
  // A source task that is gone.
  task_t gone = TASK_NULL;
  ASSERT_EQ(taskfs_task_create(mount_.path().c_str(), "gone", &gone),
            KERN_SUCCESS);
  ASSERT_EQ(task_terminate(gone), KERN_SUCCESS);
  EXPECT_EQ(vm_map_copy(u, gone, 0x800000, kPage, 0, FALSE, FALSE),
            KERN_INVALID_TASK);
  EXPECT_EQ(vm_map_copy(gone, u, 0x800000, kPage, 0, FALSE, FALSE),
            KERN_INVALID_TASK);
  EXPECT_EQ(taskfs_task_close(gone), KERN_SUCCESS);
  EXPECT_EQ(vm_map_copy(u, gone, 0x800000, kPage, 0, FALSE, FALSE),
            KERN_INVALID_TASK);
  EXPECT_EQ(taskfs_task_close(u), KERN_SUCCESS);
}

// The "id: N" line of a task's status.
std::string StatusId(const std::string& status) {
  const std::size_t at = status.find("\nid: ");
  return at == std::string::npos
             ? ""
             : status.substr(at + 1, status.find('\n', at + 1) - at - 1);
}

TEST_F(ClientMach, RemapSharesAndCopies) {
  Fill(2, 3);
  ASSERT_EQ(vm_protect(t_, kA + kPage, kPage, FALSE, VM_PROT_READ),
            KERN_SUCCESS);
  task_t u = TASK_NULL;
  ASSERT_EQ(taskfs_task_create(mount_.path().c_str(), "u", &u), KERN_SUCCESS);
  vm_address_t at = 0x800000;
  vm_prot_t cur = -1, max = -1;
  ASSERT_EQ(taskfs_vm_remap(u, &at, 2 * kPage, FALSE, t_, kA, FALSE, &cur, &max,
                            VM_INHERIT_SHARE),
            KERN_SUCCESS);
  EXPECT_EQ(at, 0x800000u);
  EXPECT_EQ(cur, VM_PROT_READ);
  EXPECT_EQ(max, VM_PROT_ALL);
  EXPECT_EQ(Read(u, at, 2 * kPage), Read(t_, kA, 2 * kPage));
  // Shared: a write through u is seen in t.
  const std::string x(kPage, 'x');
  ASSERT_EQ(WriteCode(u, at, x), KERN_SUCCESS);
  EXPECT_EQ(Read(t_, kA, kPage), x);
  // A copy, anywhere: the lowest hole, and writes stay apart.
  vm_address_t copy = 0x1234;
  ASSERT_EQ(taskfs_vm_remap(u, &copy, kPage, TRUE, t_, kA, TRUE, &cur, &max,
                            VM_INHERIT_DEFAULT),
            KERN_SUCCESS);
  EXPECT_EQ(copy, 0u);
  EXPECT_EQ(cur, VM_PROT_DEFAULT);
  ASSERT_EQ(WriteCode(u, copy, std::string(kPage, 'y')), KERN_SUCCESS);
  EXPECT_EQ(Read(t_, kA, kPage), x);
  // Errors, each with its reason.
  EXPECT_EQ(taskfs_vm_remap(u, &at, kPage, FALSE, t_, kA, FALSE, &cur, &max,
                            VM_INHERIT_DEFAULT),
            KERN_NO_SPACE);
  EXPECT_EQ(std::string(taskfs_last_reason()),
            "overlaps region 0x800000-0x801000");
  vm_address_t free_at = 0x900000;
  EXPECT_EQ(taskfs_vm_remap(u, &free_at, 3 * kPage, FALSE, t_, kA, TRUE, &cur,
                            &max, VM_INHERIT_DEFAULT),
            KERN_INVALID_ADDRESS);
  EXPECT_EQ(std::string(taskfs_last_reason()),
            "page 0x102000 is not allocated");
  EXPECT_EQ(taskfs_vm_remap(u, &free_at, 0, FALSE, t_, kA, TRUE, &cur, &max,
                            VM_INHERIT_DEFAULT),
            KERN_INVALID_ARGUMENT);
  EXPECT_EQ(
      taskfs_vm_remap(u, &free_at, kPage, FALSE, t_, kA, TRUE, &cur, &max, 9),
      KERN_INVALID_ARGUMENT);
  EXPECT_EQ(taskfs_vm_remap(u, nullptr, kPage, FALSE, t_, kA, TRUE, &cur, &max,
                            VM_INHERIT_DEFAULT),
            KERN_INVALID_ARGUMENT);
  EXPECT_EQ(taskfs_vm_remap(u, &free_at, kPage, FALSE, TASK_NULL, kA, TRUE,
                            &cur, &max, VM_INHERIT_DEFAULT),
            KERN_INVALID_TASK);
  EXPECT_EQ(free_at, 0x900000u);
  EXPECT_EQ(taskfs_task_close(u), KERN_SUCCESS);
}

TEST_F(ClientMach, MapCopyFromAnotherMountIsInvalidTask) {
  // Two mounts, each with a task of the same id: the ioctl's source id would
  // name the destination's own mount's task.
  Mount second;
  ASSERT_TRUE(second.ok()) << second.error();
  struct stat first_st, second_st;
  ASSERT_EQ(::stat(mount_.path().c_str(), &first_st), 0);
  ASSERT_EQ(::stat(second.path().c_str(), &second_st), 0);
  EXPECT_NE(first_st.st_dev, second_st.st_dev);
  task_t d = TASK_NULL;
  ASSERT_EQ(taskfs_task_create(second.path().c_str(), "d", &d), KERN_SUCCESS);
  const std::string id = StatusId(ReadFile(mount_ / "t/status"));
  ASSERT_NE(id, "");
  ASSERT_EQ(StatusId(ReadFile(second / "d/status")), id);
  Fill(1, 7);  // t's greeting
  vm_address_t a = kA;
  ASSERT_EQ(vm_allocate(d, &a, kPage, FALSE), KERN_SUCCESS);
  ASSERT_EQ(WriteCode(d, kA, std::string(kPage, 'd')), KERN_SUCCESS);
  const std::string maps = ReadFile(second / "d/maps");
  EXPECT_EQ(vm_map_copy(d, t_, 0x800000, kPage, kA, TRUE, FALSE),
            KERN_INVALID_TASK);
  EXPECT_EQ(vm_map_copy(d, t_, kA, kPage, kA, FALSE, FALSE), KERN_INVALID_TASK);
  EXPECT_EQ(vm_map_copy(t_, d, 0x800000, kPage, kA, TRUE, TRUE),
            KERN_INVALID_TASK);
  // Refused before any ioctl: nothing changed, nothing recorded.
  EXPECT_EQ(ReadFile(second / "d/maps"), maps);
  EXPECT_EQ(Read(d, kA, kPage), std::string(kPage, 'd'));
  EXPECT_EQ(Maps("t"), "0000000000100000-0000000000101000 rw-/rwx copy\n");
  EXPECT_EQ(Read(t_, kA, kPage), Pattern(kPage, 7));
  EXPECT_EQ(ReadFile(second / "d/errors").find("vm_map_copy"),
            std::string::npos);
  EXPECT_EQ(ReadFile(mount_ / "t/errors").find("vm_map_copy"),
            std::string::npos);
  // On one mount the copy works.
  task_t near = TASK_NULL;
  ASSERT_EQ(taskfs_task_create(mount_.path().c_str(), "near", &near),
            KERN_SUCCESS);
  EXPECT_EQ(vm_map_copy(near, t_, 0x800000, kPage, kA, TRUE, FALSE),
            KERN_SUCCESS);
  EXPECT_EQ(Read(near, 0x800000, kPage), Pattern(kPage, 7));
  EXPECT_EQ(taskfs_task_close(near), KERN_SUCCESS);
  EXPECT_EQ(taskfs_task_close(d), KERN_SUCCESS);
}

// --- tasks
// ---------------------------------------------------------------------

TEST_F(ClientMach, TaskCreateNamesTheChildAndInheritsOnRequest) {
  Fill(3, 6);
  ASSERT_EQ(vm_inherit(t_, kA, kPage, VM_INHERIT_SHARE), KERN_SUCCESS);
  ASSERT_EQ(vm_inherit(t_, kA + 2 * kPage, kPage, VM_INHERIT_NONE),
            KERN_SUCCESS);
  task_t empty = TASK_NULL, fork1 = TASK_NULL, again = TASK_NULL;
  ASSERT_EQ(task_create(t_, FALSE, &empty), KERN_SUCCESS);
  EXPECT_EQ(StatusValue(ReadFile(mount_ / "t.1/status"), "name"), "t.1");
  EXPECT_EQ(Maps("t.1"), "");
  ASSERT_EQ(task_create(t_, TRUE, &fork1), KERN_SUCCESS);
  EXPECT_EQ(Maps("t.2"),
            "0000000000100000-0000000000101000 rw-/rwx share\n"
            "0000000000101000-0000000000102000 rw-/rwx copy\n");
  // share: the same memory; copy: a copy.
  ASSERT_EQ(WriteCode(fork1, kA, std::string(kPage, 'S')), KERN_SUCCESS);
  ASSERT_EQ(WriteCode(fork1, kA + kPage, std::string(kPage, 'C')),
            KERN_SUCCESS);
  EXPECT_EQ(Read(t_, kA, kPage), std::string(kPage, 'S'));
  EXPECT_EQ(Read(t_, kA + kPage, kPage),
            Pattern(3 * kPage, 6).substr(kPage, kPage));
  // The lowest free N.
  ASSERT_EQ(task_terminate(empty), KERN_SUCCESS);
  ASSERT_EQ(task_create(t_, FALSE, &again), KERN_SUCCESS);
  EXPECT_EQ(StatusValue(ReadFile(mount_ / "t.1/status"), "name"), "t.1");
  EXPECT_EQ(task_create(t_, FALSE, nullptr), KERN_INVALID_ARGUMENT);
  for (task_t h : {empty, fork1, again}) EXPECT_EQ(taskfs_task_close(h), 0);
}

TEST_F(ClientMach, TaskCreateOfALongNameIsInvalidArgument) {
  const std::string name(64, 'n');
  task_t parent = TASK_NULL, child = TASK_NULL;
  ASSERT_EQ(taskfs_task_create(mount_.path().c_str(), name.c_str(), &parent),
            KERN_SUCCESS);
  EXPECT_EQ(task_create(parent, FALSE, &child), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(taskfs_task_close(parent), KERN_SUCCESS);
}

TEST_F(ClientMach, TaskfsCreateAndForkRules) {
  task_t x = TASK_NULL;
  EXPECT_EQ(taskfs_task_create(mount_.path().c_str(), "t", &x),
            KERN_NAME_EXISTS);
  EXPECT_EQ(taskfs_task_create(mount_.path().c_str(), ".hidden", &x),
            KERN_INVALID_ARGUMENT);
  EXPECT_EQ(taskfs_task_create(mount_.path().c_str(), "a/b", &x),
            KERN_INVALID_ARGUMENT);
  EXPECT_EQ(taskfs_task_create(mount_.path().c_str(), "host_page_size", &x),
            KERN_INVALID_ARGUMENT);
  EXPECT_EQ(taskfs_task_create(mount_.path().c_str(),
                               std::string(65, 'x').c_str(), &x),
            KERN_INVALID_ARGUMENT);
  EXPECT_EQ(taskfs_task_create("/nonexistent/mnt", "x", &x),
            KERN_INVALID_ARGUMENT);
  EXPECT_EQ(taskfs_task_create(mount_.path().c_str(), "x", nullptr),
            KERN_INVALID_ARGUMENT);
  Fill(1, 8);
  task_t child = TASK_NULL;
  ASSERT_EQ(taskfs_task_fork(t_, "kid", &child), KERN_SUCCESS);
  EXPECT_EQ(Read(child, kA, kPage), Pattern(kPage, 8));
  EXPECT_EQ(taskfs_task_fork(t_, "kid", &x), KERN_NAME_EXISTS);
  EXPECT_EQ(taskfs_task_fork(t_, "bad name", &x), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(taskfs_task_close(child), KERN_SUCCESS);
}

// The rule is <taskfs/task_name.h>'s, the daemon's: its longest name is
// taken, and a refused one never reaches the file system.
TEST_F(ClientMach, TaskNamesFollowTheSharedRule) {
  task_t x = TASK_NULL;
  const std::string longest(TASKFS_TASK_NAME_MAX, 'l');
  ASSERT_EQ(taskfs_task_create(mount_.path().c_str(), longest.c_str(), &x),
            KERN_SUCCESS);
  EXPECT_EQ(taskfs_task_close(x), KERN_SUCCESS);
  for (const char* name :
       {"..", "../escape", "a\nb", TASKFS_TASK_NAME_RESERVED}) {
    EXPECT_EQ(taskfs_task_create(mount_.path().c_str(), name, &x),
              KERN_INVALID_ARGUMENT)
        << name;
    EXPECT_EQ(taskfs_task_fork(t_, name, &x), KERN_INVALID_ARGUMENT) << name;
  }
  struct stat st;
  EXPECT_NE(::stat((mount_.path() + "/../escape").c_str(), &st), 0);
}

TEST_F(ClientMach, TerminateKeepsTheHandleUntilClosed) {
  Fill(1);
  ASSERT_EQ(task_terminate(t_), KERN_SUCCESS);
  struct stat st;
  EXPECT_NE(::stat((mount_ / "t").c_str(), &st), 0);
  vm_address_t a = 0;
  EXPECT_EQ(vm_allocate(t_, &a, kPage, TRUE), KERN_INVALID_TASK);
  EXPECT_EQ(ReadCode(t_, kA, kPage), KERN_INVALID_TASK);
  EXPECT_EQ(WriteCode(t_, kA, std::string(kPage, 'x')), KERN_INVALID_TASK);
  EXPECT_EQ(task_terminate(t_), KERN_INVALID_TASK);
  // A new task of the same name is not the old handle's.
  task_t fresh = TASK_NULL;
  ASSERT_EQ(taskfs_task_create(mount_.path().c_str(), "t", &fresh),
            KERN_SUCCESS);
  EXPECT_EQ(task_terminate(t_), KERN_INVALID_TASK);
  EXPECT_EQ(::stat((mount_ / "t").c_str(), &st), 0);
  EXPECT_EQ(ReadCode(t_, kA, kPage), KERN_INVALID_TASK);
  EXPECT_EQ(taskfs_task_close(t_), KERN_SUCCESS);
  t_ = fresh;
}

// --- limits
// --------------------------------------------------------------------

class ClientMachLimits : public ClientMach {
 protected:
  ClientMachLimits()
      : ClientMach({"-o", "tasks=none,memory_limit=4M,max_tasks=2"}) {}
};

TEST_F(ClientMachLimits, MemoryLimitAndMaxTasksAreResourceShortage) {
  vm_address_t a = kA;
  ASSERT_EQ(vm_allocate(t_, &a, 8 << 20, FALSE), KERN_SUCCESS);
  EXPECT_EQ(WriteCode(t_, kA, std::string(8 << 20, 'r')),
            KERN_RESOURCE_SHORTAGE);
  task_t second = TASK_NULL, third = TASK_NULL;
  ASSERT_EQ(taskfs_task_create(mount_.path().c_str(), "second", &second),
            KERN_SUCCESS);
  EXPECT_EQ(taskfs_task_create(mount_.path().c_str(), "third", &third),
            KERN_RESOURCE_SHORTAGE);
  EXPECT_EQ(task_create(t_, FALSE, &third), KERN_RESOURCE_SHORTAGE);
  EXPECT_EQ(taskfs_task_close(second), KERN_SUCCESS);
}

// --- permissions: a read-only handle, an errno outside the table -------------

class ClientMachOtherUser : public ClientMach {
 protected:
  ClientMachOtherUser() : ClientMach({"-o", "tasks=none,allow_other"}) {}
};

TEST_F(ClientMachOtherUser, ReadOnlyHandleAndOtherUsersTasks) {
  Fill(1, 3);
  ASSERT_EQ(::chmod((mount_ / "t").c_str(), 0755), 0);
  ASSERT_EQ(::chmod((mount_ / "t/mem").c_str(), 0644), 0);
  const std::string dir = mount_ / "t";
  const std::string root = mount_.path();
  constexpr uid_t kNobody = 65534;
  const int result = RunAs({kNobody, kNobody, {}}, [&]() -> int {
    task_t t = TASK_NULL;
    if (taskfs_task_open(dir.c_str(), &t) != KERN_SUCCESS) return 1;
    vm_offset_t data = 0;
    mach_msg_type_number_t count = 0;
    if (vm_read(t, kA, kPage, &data, &count) != KERN_SUCCESS) return 2;
    if (std::string(reinterpret_cast<char*>(data), count) !=
        Pattern(kPage, 3)) {
      return 3;
    }
    // Changing calls: the kernel refuses mem for writing (EACCES).
    if (vm_write(t, kA, data, count) != KERN_PROTECTION_FAILURE) return 4;
    vm_address_t a = 0;
    if (vm_allocate(t, &a, kPage, TRUE) != KERN_PROTECTION_FAILURE) return 5;
    if (vm_copy(t, kA, kPage, kA) != KERN_PROTECTION_FAILURE) return 6;
    // rmdir of another user's task: EPERM, outside §2's table.
    if (task_terminate(t) != KERN_FAILURE) return 7;
    // vm_region needs only the read-only descriptor.
    vm_size_t size = 0;
    vm_prot_t p, mp;
    vm_inherit_t in;
    boolean_t sh;
    mach_port_t obj;
    vm_offset_t off;
    a = 0;
    if (vm_region(t, &a, &size, &p, &mp, &in, &sh, &obj, &off) !=
        KERN_SUCCESS) {
      return 8;
    }
    // fork needs write permission on ctl.
    task_t child = TASK_NULL;
    if (taskfs_task_fork(t, "theirs", &child) != KERN_PROTECTION_FAILURE) {
      return 9;
    }
    // A task of one's own on the same mount works.
    task_t mine = TASK_NULL;
    if (taskfs_task_create(root.c_str(), "mine", &mine) != KERN_SUCCESS) {
      return 10;
    }
    if (vm_map_copy(mine, t, kA, kPage, kA, TRUE, FALSE) != KERN_SUCCESS) {
      return 11;
    }
    if (vm_map_copy(mine, t, 0x200000, kPage, kA, TRUE, TRUE) !=
        KERN_PROTECTION_FAILURE) {
      return 12;
    }
    vm_deallocate(mach_task_self(), data, count);
    if (task_terminate(mine) != KERN_SUCCESS) return 13;
    taskfs_task_close(mine);
    taskfs_task_close(t);
    return 0;
  });
  EXPECT_EQ(result, 0);
  // Nothing changed in t.
  EXPECT_EQ(Read(t_, kA, kPage), Pattern(kPage, 3));
  EXPECT_EQ(Maps("t"), "0000000000100000-0000000000101000 rw-/rwx copy\n");
}

}  // namespace
}  // namespace taskfs::testing

namespace taskfs::testing {
namespace {

// An XNU mount (docs/reference.md §5): the client lets any byte range
// through, as XNU's calls take it.
class ClientMachXnu : public ClientMach {
 protected:
  ClientMachXnu() : ClientMach({"-o", "tasks=none,flavor=xnu"}) {}
};

TEST_F(ClientMachXnu, ReadWriteAndCopyOfAnyByteRange) {
  Fill(3, 5);
  const std::string p = Pattern(3 * kPage, 5);
  EXPECT_EQ(Read(t_, kA + kPage - 1, 3), p.substr(kPage - 1, 3));
  EXPECT_EQ(Read(t_, kA + 1, 1), p.substr(1, 1));
  // Data at an odd address of the calling process, at an odd address.
  const std::string bytes = "xnu";
  std::vector<char> odd(bytes.size() + 1);
  std::memcpy(odd.data() + 1, bytes.data(), bytes.size());
  ASSERT_EQ(vm_write(t_, kA + 2 * kPage - 2,
                     reinterpret_cast<vm_offset_t>(odd.data() + 1), 3),
            KERN_SUCCESS);
  std::string want = p;
  want.replace(2 * kPage - 2, 3, bytes);
  EXPECT_EQ(Read(t_, kA, 3 * kPage), want);
  ASSERT_EQ(vm_copy(t_, kA + 2 * kPage - 2, 3, kA + 5), KERN_SUCCESS);
  want.replace(5, 3, bytes);
  EXPECT_EQ(Read(t_, kA, 3 * kPage), want);
}

TEST_F(ClientMachXnu, XnusEdgeCases) {
  Fill(1, 5);
  // Zero size anywhere; 4 GiB or more is KERN_INVALID_ARGUMENT.
  EXPECT_EQ(ReadCode(t_, kA + 1, 0), KERN_SUCCESS);
  EXPECT_EQ(WriteCode(t_, 3, ""), KERN_SUCCESS);
  EXPECT_EQ(ReadCode(t_, kA + 1, vm_size_t{UINT32_MAX} + 1),
            KERN_INVALID_ARGUMENT);
  // The lowest offending page decides.
  EXPECT_EQ(ReadCode(t_, kA + kPage - 1, 2), KERN_INVALID_ADDRESS);
  EXPECT_EQ(WriteCode(t_, kA + kPage - 1, "ab"), KERN_INVALID_ADDRESS);
  ASSERT_EQ(vm_protect(t_, kA, kPage, FALSE, VM_PROT_READ), KERN_SUCCESS);
  EXPECT_EQ(WriteCode(t_, kA + 7, "ab"), KERN_PROTECTION_FAILURE);
}

}  // namespace
}  // namespace taskfs::testing
