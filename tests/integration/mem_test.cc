// docs/reference.md §5 through a real mount: mem's reads, writes, errnos, seeks
// and ioctls, each with the exact errno.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "taskfs/ioctl.h"
#include "tests/integration/mount_fixture.h"

namespace taskfs::testing {
namespace {

constexpr std::size_t kPage = 4096;

// A page-aligned buffer, as direct I/O wants.
struct AlignedBuffer {
  explicit AlignedBuffer(std::size_t n) : size(n) {
    void* p = nullptr;
    if (posix_memalign(&p, kPage, n == 0 ? kPage : n) != 0) std::abort();
    data = static_cast<unsigned char*>(p);
    std::memset(data, 0, n);
  }
  ~AlignedBuffer() { std::free(data); }
  unsigned char* data;
  std::size_t size;
};

class MemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(mount_.ok()) << mount_.error();
    ASSERT_EQ(::mkdir((mount_ / "t").c_str(), 0700), 0) << std::strerror(errno);
    fd_ = ::open((mount_ / "t/mem").c_str(), O_RDWR);
    ASSERT_GE(fd_, 0) << std::strerror(errno);
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
  }
  // Runs ctl commands on task t; returns 0 or the errno of the write.
  int Ctl(const std::string& commands) {
    return WriteFile(mount_ / "t/ctl", commands);
  }
  // pread/pwrite returning -errno on failure.
  ssize_t Read(AlignedBuffer& b, off_t addr, std::size_t n) {
    const ssize_t r = ::pread(fd_, b.data, n, addr);
    return r < 0 ? -errno : r;
  }
  ssize_t Write(const AlignedBuffer& b, off_t addr, std::size_t n) {
    const ssize_t r = ::pwrite(fd_, b.data, n, addr);
    return r < 0 ? -errno : r;
  }

  Mount mount_{{"-o", "tasks=none,address_bits=32,memory_limit=64M"}};
  int fd_ = -1;
};

TEST_F(MemTest, SizeIsTheAddressSpace) {
  struct stat st;
  ASSERT_EQ(::fstat(fd_, &st), 0);
  EXPECT_EQ(st.st_size, off_t{1} << 32);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(MemTest, UnallocatedMemoryIsEfault) {
  AlignedBuffer b(kPage);
  EXPECT_EQ(Read(b, 0x10000, kPage), -EFAULT);
  EXPECT_EQ(Write(b, 0x10000, kPage), -EFAULT);
}

TEST_F(MemTest, WriteThenReadBackAndZeroFill) {
  ASSERT_EQ(Ctl("allocate 0x10000 64K\n"), 0);
  AlignedBuffer b(2 * kPage);
  for (std::size_t i = 0; i < b.size; ++i)
    b.data[i] = static_cast<unsigned char>(i * 7);
  ASSERT_EQ(Write(b, 0x10000, b.size), static_cast<ssize_t>(b.size));
  AlignedBuffer r(4 * kPage);
  ASSERT_EQ(Read(r, 0x10000, r.size), static_cast<ssize_t>(r.size));
  EXPECT_EQ(std::memcmp(r.data, b.data, b.size), 0);
  for (std::size_t i = b.size; i < r.size; ++i) ASSERT_EQ(r.data[i], 0) << i;
}

TEST_F(MemTest, UnalignedAddressOrSizeIsEinval) {
  ASSERT_EQ(Ctl("allocate 0x10000 64K\n"), 0);
  AlignedBuffer b(2 * kPage);
  EXPECT_EQ(Read(b, 0x10001, kPage), -EINVAL);
  EXPECT_EQ(Read(b, 0x10000, 100), -EINVAL);
  EXPECT_EQ(Write(b, 0x10000, 100), -EINVAL);
  EXPECT_EQ(Write(b, 0x10800, kPage), -EINVAL);
}

TEST_F(MemTest, ZeroSizeAndEndOfFile) {
  AlignedBuffer b(kPage);
  EXPECT_EQ(Read(b, 0x10000, 0), 0);
  EXPECT_EQ(Read(b, off_t{1} << 32, kPage), 0);  // end of file
  EXPECT_EQ(Read(b, (off_t{1} << 32) + kPage, kPage), 0);
  EXPECT_EQ(Write(b, off_t{1} << 32, kPage), -EFAULT);  // no end for writes
}

TEST_F(MemTest, ProtectionIsEaccesAndLowestPageDecides) {
  ASSERT_EQ(Ctl("allocate 0x10000 16K\nprotect 0x11000 4K r--\n"
                "protect 0x12000 4K -w-\n"),
            0);
  AlignedBuffer b(3 * kPage);
  EXPECT_EQ(Write(b, 0x11000, kPage), -EACCES);
  EXPECT_EQ(Read(b, 0x12000, kPage), -EACCES);
  // [0x12000, 0x15000): page 0x12000 unreadable, 0x14000 unallocated:
  // the lowest offending page decides.
  EXPECT_EQ(Read(b, 0x12000, 3 * kPage), -EACCES);
  // [0x13000, 0x16000): 0x14000 is the first bad page, a hole.
  EXPECT_EQ(Read(b, 0x13000, 3 * kPage), -EFAULT);
}

TEST_F(MemTest, FailedWriteChangesNothing) {
  ASSERT_EQ(Ctl("allocate 0x10000 8K\n"), 0);
  AlignedBuffer ones(3 * kPage);
  std::memset(ones.data, 0xAB, ones.size);
  // The third page is not allocated: nothing of the first two may change.
  EXPECT_EQ(Write(ones, 0x10000, 3 * kPage), -EFAULT);
  AlignedBuffer r(2 * kPage);
  ASSERT_EQ(Read(r, 0x10000, r.size), static_cast<ssize_t>(r.size));
  for (std::size_t i = 0; i < r.size; ++i) ASSERT_EQ(r.data[i], 0) << i;
}

TEST_F(MemTest, MemoryLimitIsEnospcAndChangesNothing) {
  ASSERT_EQ(Ctl("allocate 0x1000000 128M\n"), 0);
  AlignedBuffer b(1 << 20);
  std::memset(b.data, 0x5A, b.size);
  off_t addr = 0x1000000;
  ssize_t r = 0;
  for (int i = 0; i < 128; ++i, addr += static_cast<off_t>(b.size)) {
    r = Write(b, addr, b.size);
    if (r < 0) break;
  }
  EXPECT_EQ(r, -ENOSPC);
  // The refused request wrote nothing.
  AlignedBuffer check(1 << 20);
  ASSERT_EQ(Read(check, addr, check.size), static_cast<ssize_t>(check.size));
  for (std::size_t i = 0; i < check.size; ++i) ASSERT_EQ(check.data[i], 0);
}

TEST_F(MemTest, SeekDataAndHole) {
  ASSERT_EQ(Ctl("allocate 0x10000 8K\nallocate 0x20000 4K\n"), 0);
  EXPECT_EQ(::lseek(fd_, 0, SEEK_DATA), 0x10000);
  EXPECT_EQ(::lseek(fd_, 0x10000, SEEK_HOLE), 0x12000);
  EXPECT_EQ(::lseek(fd_, 0x12000, SEEK_DATA), 0x20000);
  EXPECT_EQ(::lseek(fd_, 0x0, SEEK_HOLE), 0);
  EXPECT_EQ(::lseek(fd_, 0x21000, SEEK_DATA), -1);
  EXPECT_EQ(errno, ENXIO);
  EXPECT_EQ(::lseek(fd_, 0x21000, SEEK_HOLE), 0x21000);
}

TEST_F(MemTest, SeekHoleAtEndOfFullSpace) {
  ASSERT_EQ(Ctl("allocate 0xfffff000 4K\n"), 0);
  EXPECT_EQ(::lseek(fd_, 0xfffff000, SEEK_HOLE), off_t{1} << 32);
}

TEST_F(MemTest, VmCopyIoctlIsAVirtualCopy) {
  ASSERT_EQ(Ctl("allocate 0x10000 8K\nallocate 0x20000 8K\n"), 0);
  AlignedBuffer b(2 * kPage);
  std::memset(b.data, 0x11, b.size);
  ASSERT_EQ(Write(b, 0x10000, b.size), static_cast<ssize_t>(b.size));
  taskfs_vm_copy c{0x10000, 2 * kPage, 0x20000};
  ASSERT_EQ(::ioctl(fd_, TASKFS_IOC_VM_COPY, &c), 0) << std::strerror(errno);
  // A later write to the source does not show through.
  std::memset(b.data, 0x22, b.size);
  ASSERT_EQ(Write(b, 0x10000, b.size), static_cast<ssize_t>(b.size));
  AlignedBuffer r(2 * kPage);
  ASSERT_EQ(Read(r, 0x20000, r.size), static_cast<ssize_t>(r.size));
  for (std::size_t i = 0; i < r.size; ++i) ASSERT_EQ(r.data[i], 0x11);
  // Errors: unaligned, hole, protection.
  c = {0x10001, kPage, 0x20000};
  EXPECT_EQ(::ioctl(fd_, TASKFS_IOC_VM_COPY, &c), -1);
  EXPECT_EQ(errno, EINVAL);
  c = {0x30000, kPage, 0x20000};
  EXPECT_EQ(::ioctl(fd_, TASKFS_IOC_VM_COPY, &c), -1);
  EXPECT_EQ(errno, EFAULT);
}

TEST_F(MemTest, AllocateRegionDeallocateProtectInheritIoctls) {
  taskfs_vm_allocate a{0, 3 * kPage, TASKFS_VM_ALLOCATE_ANYWHERE, 0};
  ASSERT_EQ(::ioctl(fd_, TASKFS_IOC_VM_ALLOCATE, &a), 0)
      << std::strerror(errno);
  const std::uint64_t base = a.address;
  taskfs_vm_protect p{base, kPage, 0, TASKFS_VM_PROT_READ};
  ASSERT_EQ(::ioctl(fd_, TASKFS_IOC_VM_PROTECT, &p), 0);
  taskfs_vm_inherit in{base + kPage, kPage, TASKFS_VM_INHERIT_SHARE, 0};
  ASSERT_EQ(::ioctl(fd_, TASKFS_IOC_VM_INHERIT, &in), 0);
  taskfs_vm_region r{base + 2 * kPage, 0, 0, 0, 0, 0};
  ASSERT_EQ(::ioctl(fd_, TASKFS_IOC_VM_REGION, &r), 0);
  EXPECT_EQ(r.address, base + 2 * kPage);
  EXPECT_EQ(r.size, kPage);
  EXPECT_EQ(r.prot, TASKFS_VM_PROT_READ | TASKFS_VM_PROT_WRITE);
  EXPECT_EQ(r.max_prot, 7u);
  EXPECT_EQ(r.inheritance, TASKFS_VM_INHERIT_COPY);
  r = {base, 0, 0, 0, 0, 0};
  ASSERT_EQ(::ioctl(fd_, TASKFS_IOC_VM_REGION, &r), 0);
  EXPECT_EQ(r.prot, TASKFS_VM_PROT_READ);
  // Raising above the maximum: EACCES; bad protection bits: EINVAL.
  p = {base, kPage, 1, TASKFS_VM_PROT_READ};
  ASSERT_EQ(::ioctl(fd_, TASKFS_IOC_VM_PROTECT, &p), 0);
  p = {base, kPage, 0, TASKFS_VM_PROT_READ | TASKFS_VM_PROT_WRITE};
  EXPECT_EQ(::ioctl(fd_, TASKFS_IOC_VM_PROTECT, &p), -1);
  EXPECT_EQ(errno, EACCES);
  p = {base, kPage, 0, 8};
  EXPECT_EQ(::ioctl(fd_, TASKFS_IOC_VM_PROTECT, &p), -1);
  EXPECT_EQ(errno, EINVAL);
  taskfs_vm_deallocate d{base, 3 * kPage};
  ASSERT_EQ(::ioctl(fd_, TASKFS_IOC_VM_DEALLOCATE, &d), 0);
  r = {0, 0, 0, 0, 0, 0};
  EXPECT_EQ(::ioctl(fd_, TASKFS_IOC_VM_REGION, &r), -1);
  EXPECT_EQ(errno, ENOMEM);
  // Allocating over a region: ENOMEM.
  a = {0x10000, kPage, 0, 0};
  ASSERT_EQ(::ioctl(fd_, TASKFS_IOC_VM_ALLOCATE, &a), 0);
  EXPECT_EQ(::ioctl(fd_, TASKFS_IOC_VM_ALLOCATE, &a), -1);
  EXPECT_EQ(errno, ENOMEM);
}

TEST_F(MemTest, UnknownOrMisSizedIoctlIsEnotty) {
  std::uint64_t arg[8] = {};
  EXPECT_EQ(::ioctl(fd_, _IOW('M', 1, std::uint64_t[2]), arg), -1);
  EXPECT_EQ(errno, ENOTTY);
  EXPECT_EQ(::ioctl(fd_, _IOR('M', 1, taskfs_vm_copy), arg), -1);
  EXPECT_EQ(errno, ENOTTY);
  EXPECT_EQ(::ioctl(fd_, _IOW('M', 99, taskfs_vm_copy), arg), -1);
  EXPECT_EQ(errno, ENOTTY);
}

TEST_F(MemTest, ChangingIoctlNeedsTheFileOpenForWriting) {
  const int ro = ::open((mount_ / "t/mem").c_str(), O_RDONLY);
  ASSERT_GE(ro, 0);
  taskfs_vm_allocate a{0x10000, kPage, 0, 0};
  EXPECT_EQ(::ioctl(ro, TASKFS_IOC_VM_ALLOCATE, &a), -1);
  EXPECT_EQ(errno, EBADF);
  taskfs_vm_region r{0, 0, 0, 0, 0, 0};
  EXPECT_EQ(::ioctl(ro, TASKFS_IOC_VM_REGION, &r), -1);
  EXPECT_EQ(errno, ENOMEM);  // read-only calls work; there is no region
  ::close(ro);
}

// The page-state query through the mount: written, never written, copied
// (one memory at two addresses) and shared with a fork (one memory in two
// tasks).
TEST_F(MemTest, PageQueryIoctl) {
  ASSERT_EQ(Ctl("allocate 0x10000 16K\ninherit 0x13000 4K share\n"), 0);
  AlignedBuffer b(kPage);
  std::memset(b.data, 0x5a, kPage);
  ASSERT_EQ(Write(b, 0x10000, kPage), static_cast<ssize_t>(kPage));
  ASSERT_EQ(Write(b, 0x13000, kPage), static_cast<ssize_t>(kPage));
  ASSERT_EQ(Ctl("copy 0x10000 4K 0x11000\nfork child\n"), 0);
  auto q = std::make_unique<taskfs_vm_page_query>();
  q->address = 0x10000;
  q->count = 5;
  ASSERT_EQ(::ioctl(fd_, TASKFS_IOC_VM_PAGE_QUERY, q.get()), 0)
      << std::strerror(errno);
  const std::uint32_t kResident = TASKFS_PAGE_ALLOCATED | TASKFS_PAGE_RESIDENT;
  const std::uint32_t kShared = kResident | TASKFS_PAGE_SHARED;
  EXPECT_EQ(q->pages[0].flags, kShared);  // and the copy at 0x11000
  EXPECT_EQ(q->pages[1].flags, kShared);
  EXPECT_EQ(q->pages[0].identity, q->pages[1].identity);
  EXPECT_EQ(q->pages[2].flags, TASKFS_PAGE_ALLOCATED);
  EXPECT_EQ(q->pages[2].mappings, 0u);
  EXPECT_EQ(q->pages[3].flags, kShared);  // the fork's share region
  EXPECT_EQ(q->pages[4].flags, 0u);
  // The child's copy regions are copy-on-write copies of the same memory:
  // four mappings of the page at 0x10000 (two here, two in the child).
  EXPECT_EQ(q->pages[0].mappings, 4u);
  const int child = ::open((mount_ / "child/mem").c_str(), O_RDONLY);
  ASSERT_GE(child, 0) << std::strerror(errno);
  auto c = std::make_unique<taskfs_vm_page_query>();
  c->address = 0x13000;
  c->count = 1;
  ASSERT_EQ(::ioctl(child, TASKFS_IOC_VM_PAGE_QUERY, c.get()), 0);
  EXPECT_EQ(c->pages[0].identity, q->pages[3].identity);
  EXPECT_EQ(c->pages[0].mappings, 2u);
  // A write to the child's copy gives it memory of its own.
  const int child_rw = ::open((mount_ / "child/mem").c_str(), O_RDWR);
  ASSERT_GE(child_rw, 0);
  ASSERT_EQ(::pwrite(child_rw, b.data, kPage, 0x10000),
            static_cast<ssize_t>(kPage));
  c->address = 0x10000;
  ASSERT_EQ(::ioctl(child, TASKFS_IOC_VM_PAGE_QUERY, c.get()), 0);
  EXPECT_EQ(c->pages[0].flags, kResident);
  EXPECT_EQ(c->pages[0].mappings, 1u);
  EXPECT_NE(c->pages[0].identity, q->pages[0].identity);
  ::close(child_rw);
  ::close(child);
  // Too many pages: EINVAL; past the address space: EFAULT; a file open
  // only for writing: EBADF. Each failure has its reason.
  q->count = TASKFS_PAGE_QUERY_MAX + 1;
  EXPECT_EQ(::ioctl(fd_, TASKFS_IOC_VM_PAGE_QUERY, q.get()), -1);
  EXPECT_EQ(errno, EINVAL);
  q->address = 0xfffff000;
  q->count = 2;
  EXPECT_EQ(::ioctl(fd_, TASKFS_IOC_VM_PAGE_QUERY, q.get()), -1);
  EXPECT_EQ(errno, EFAULT);
  const std::string errors = ReadFile(mount_ / "t/errors");
  EXPECT_NE(errors.find("ioctl vm_page_query 0x10000 count 1001"),
            std::string::npos)
      << errors;
  const int wo = ::open((mount_ / "t/mem").c_str(), O_WRONLY);
  ASSERT_GE(wo, 0);
  q->count = 1;
  EXPECT_EQ(::ioctl(wo, TASKFS_IOC_VM_PAGE_QUERY, q.get()), -1);
  EXPECT_EQ(errno, EBADF);
  ::close(wo);
}

// vm_read_list through the mount: each entry is its own vm_read by the
// classic rules, a failed entry leaves zeros and its own errors line and
// does not stop the others; the call fails only for a bad count or total,
// or a file not open for reading.
TEST_F(MemTest, ReadListIoctl) {
  ASSERT_EQ(Ctl("allocate 0x10000 12K\nprotect 0x12000 4K -w-\n"), 0);
  AlignedBuffer b(2 * kPage);
  std::memset(b.data, 0x11, kPage);
  std::memset(b.data + kPage, 0x22, kPage);
  ASSERT_EQ(Write(b, 0x10000, 2 * kPage), static_cast<ssize_t>(2 * kPage));
  auto l = std::make_unique<taskfs_vm_read_list>();
  const taskfs_vm_read_entry entries[] = {
      {0x11000, kPage, -1, 0},  // read
      {0x20000, kPage, -1, 0},  // not allocated
      {0x12000, kPage, -1, 0},  // no read permission
      {0x10000, 0x800, -1, 0},  // not a page multiple
      {0x10000, 0, -1, 0},      // nothing to read
      {0x10000, kPage, -1, 0},  // read: the list goes on after failures
  };
  static_assert(3 * kPage + 0x800 + kPage > TASKFS_READ_LIST_DATA);
  // Exactly the data area: 3 pages and a half, the last entry left out.
  l->count = 5;
  std::memcpy(l->entries, entries, sizeof entries);
  std::memset(l->data, 0x99, sizeof l->data);
  ASSERT_EQ(::ioctl(fd_, TASKFS_IOC_VM_READ_LIST, l.get()), 0)
      << std::strerror(errno);
  EXPECT_EQ(l->entries[0].kern_return, 0);
  EXPECT_EQ(l->entries[1].kern_return, 1);  // KERN_INVALID_ADDRESS
  EXPECT_EQ(l->entries[2].kern_return, 2);  // KERN_PROTECTION_FAILURE
  EXPECT_EQ(l->entries[3].kern_return, 4);  // KERN_INVALID_ARGUMENT
  EXPECT_EQ(l->entries[4].kern_return, 0);
  EXPECT_EQ(l->entries[5].kern_return, 0);  // past count: cleared
  EXPECT_EQ(l->entries[5].address, 0u);
  for (std::size_t i = 0; i < sizeof l->data; ++i) {
    ASSERT_EQ(l->data[i], i < kPage ? 0x22 : 0) << i;
  }
  const std::string errors = ReadFile(mount_ / "t/errors");
  EXPECT_NE(errors.find("ioctl vm_read_list entry 1 of 5 0x20000 0x1000: "
                        "KERN_INVALID_ADDRESS: page 0x20000 is not allocated"),
            std::string::npos)
      << errors;
  EXPECT_NE(errors.find("ioctl vm_read_list entry 2 of 5 0x12000 0x1000: "
                        "KERN_PROTECTION_FAILURE: page 0x12000 is -w-/rwx"),
            std::string::npos)
      << errors;
  EXPECT_NE(errors.find("ioctl vm_read_list entry 3 of 5 0x10000 0x800: "
                        "KERN_INVALID_ARGUMENT"),
            std::string::npos)
      << errors;
  EXPECT_EQ(errors.find("entry 0 of"), std::string::npos) << errors;

  // Entries that succeed: the bytes of each at its place.
  l->count = 2;
  l->entries[0] = {0x10000, kPage, -1, 0};
  l->entries[1] = {0x11000, 2, -1, 0};
  ASSERT_EQ(Ctl("protect 0x11000 4K r--\n"), 0);
  ASSERT_EQ(::ioctl(fd_, TASKFS_IOC_VM_READ_LIST, l.get()), 0);
  EXPECT_EQ(l->entries[0].kern_return, 0);
  EXPECT_EQ(l->entries[1].kern_return, 4);  // 2 bytes: not a page multiple
  l->entries[1].size = kPage;
  ASSERT_EQ(::ioctl(fd_, TASKFS_IOC_VM_READ_LIST, l.get()), 0);
  EXPECT_EQ(l->entries[0].kern_return, 0);
  EXPECT_EQ(l->entries[1].kern_return, 0);
  EXPECT_EQ(l->data[0], 0x11);
  EXPECT_EQ(l->data[kPage - 1], 0x11);
  EXPECT_EQ(l->data[kPage], 0x22);
  EXPECT_EQ(l->data[2 * kPage - 1], 0x22);
  EXPECT_EQ(l->data[2 * kPage], 0);

  // A count of 0 reads nothing and succeeds.
  l->count = 0;
  ASSERT_EQ(::ioctl(fd_, TASKFS_IOC_VM_READ_LIST, l.get()), 0);
  EXPECT_EQ(l->entries[0].address, 0u);
  // Too many entries, or more bytes than the data area holds: EINVAL
  // before anything is read, with the reason.
  l->count = TASKFS_READ_LIST_MAX + 1;
  EXPECT_EQ(::ioctl(fd_, TASKFS_IOC_VM_READ_LIST, l.get()), -1);
  EXPECT_EQ(errno, EINVAL);
  std::memcpy(l->entries, entries, sizeof entries);
  l->count = 6;
  EXPECT_EQ(::ioctl(fd_, TASKFS_IOC_VM_READ_LIST, l.get()), -1);
  EXPECT_EQ(errno, EINVAL);
  l->count = 2;
  l->entries[1].size = ~std::uint64_t{0};  // no wrapping of the total
  EXPECT_EQ(::ioctl(fd_, TASKFS_IOC_VM_READ_LIST, l.get()), -1);
  EXPECT_EQ(errno, EINVAL);
  const std::string after = ReadFile(mount_ / "t/errors");
  EXPECT_NE(after.find("ioctl vm_read_list count 65: KERN_INVALID_ARGUMENT: "
                       "count 65 is more than the 64 entries a list holds"),
            std::string::npos)
      << after;
  EXPECT_NE(after.find("ioctl vm_read_list count 6: KERN_INVALID_ARGUMENT: "
                       "the sizes of entries 0 to 5 add up to more than the "
                       "14336 bytes a list holds"),
            std::string::npos)
      << after;
  // Only for reading: a file open only for writing is EBADF.
  const int wo = ::open((mount_ / "t/mem").c_str(), O_WRONLY);
  ASSERT_GE(wo, 0);
  l->count = 1;
  l->entries[0] = {0x10000, kPage, -1, 0};
  EXPECT_EQ(::ioctl(wo, TASKFS_IOC_VM_READ_LIST, l.get()), -1);
  EXPECT_EQ(errno, EBADF);
  ::close(wo);
  const int ro = ::open((mount_ / "t/mem").c_str(), O_RDONLY);
  ASSERT_GE(ro, 0);
  EXPECT_EQ(::ioctl(ro, TASKFS_IOC_VM_READ_LIST, l.get()), 0);
  EXPECT_EQ(l->data[0], 0x11);
  ::close(ro);
}

// vm_read_list against a hostile caller: counts and sizes at and past the
// limits, ranges that wrap or leave the address space, garbage in the pads
// and the data area, a buffer shorter than the command's size, and a file
// whose mode changed after it was opened. No failed entry leaves a byte of
// another entry or of the daemon in the reply.
TEST_F(MemTest, ReadListHostileLists) {
  ASSERT_EQ(Ctl("allocate 0x10000 12K\n"), 0);
  AlignedBuffer b(3 * kPage);
  for (std::size_t i = 0; i < 3; ++i) {
    std::memset(b.data + i * kPage, 0x31 + static_cast<int>(i), kPage);
  }
  ASSERT_EQ(Write(b, 0x10000, 3 * kPage), static_cast<ssize_t>(3 * kPage));
  auto l = std::make_unique<taskfs_vm_read_list>();
  const auto garbage = [&] { std::memset(l.get(), 0xAB, sizeof *l); };

  // The largest count: EINVAL before anything is read.
  garbage();
  l->count = 0xffffffffu;
  EXPECT_EQ(::ioctl(fd_, TASKFS_IOC_VM_READ_LIST, l.get()), -1);
  EXPECT_EQ(errno, EINVAL);
  // A total that wraps 64 bits: sizes 14336 and 2^64 - 14336.
  l->count = 2;
  l->entries[0] = {0x10000, TASKFS_READ_LIST_DATA, 0, 0};
  l->entries[1] = {0x10000, ~std::uint64_t{0} - TASKFS_READ_LIST_DATA + 1, 0,
                   0};
  EXPECT_EQ(::ioctl(fd_, TASKFS_IOC_VM_READ_LIST, l.get()), -1);
  EXPECT_EQ(errno, EINVAL);

  // All 64 entries, garbage everywhere else: entries 0 and 63 are read,
  // the empty ones succeed but for one that is not aligned, and every byte
  // not read is zero.
  garbage();
  l->count = TASKFS_READ_LIST_MAX;
  for (std::uint32_t i = 0; i < TASKFS_READ_LIST_MAX; ++i) {
    l->entries[i].address = 0x10000;
    l->entries[i].size = 0;
  }
  l->entries[0] = {0x10000, kPage, 0, 0};
  l->entries[4] = {0x10001, 0, 0, 0};  // empty, not aligned
  l->entries[63] = {0x12000, kPage, 0, 0};
  ASSERT_EQ(::ioctl(fd_, TASKFS_IOC_VM_READ_LIST, l.get()), 0)
      << std::strerror(errno);
  EXPECT_EQ(l->count, TASKFS_READ_LIST_MAX);
  EXPECT_EQ(l->pad, 0u);
  for (std::uint32_t i = 0; i < TASKFS_READ_LIST_MAX; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(l->entries[i].pad, 0u);
    EXPECT_EQ(l->entries[i].kern_return, i == 4 ? 4 : 0);  // INVALID_ARGUMENT
  }
  for (std::size_t i = 0; i < sizeof l->data; ++i) {
    ASSERT_EQ(l->data[i], i < kPage ? 0x31 : i < 2 * kPage ? 0x33 : 0) << i;
  }
  // Ranges that wrap, or lie past the address space (2^32 here), around
  // one that is read: KERN_INVALID_ADDRESS, zeros in their place.
  const struct {
    taskfs_vm_read_entry first, second;
    bool second_read;
  } ranges[] = {
      {{0xfffffffffffff000u, 2 * kPage, 0, 0}, {0x11000, kPage, 0, 0}, true},
      {{0xfffff000u, kPage, 0, 0}, {0x100000000u, kPage, 0, 0}, false},
      {{0xfffff000u, 2 * kPage, 0, 0}, {0x11000, kPage, 0, 0}, true},
  };
  for (const auto& r : ranges) {
    SCOPED_TRACE(r.first.address);
    garbage();
    l->count = 2;
    l->entries[0] = r.first;
    l->entries[1] = r.second;
    ASSERT_EQ(::ioctl(fd_, TASKFS_IOC_VM_READ_LIST, l.get()), 0)
        << std::strerror(errno);
    EXPECT_EQ(l->entries[0].kern_return, 1);
    EXPECT_EQ(l->entries[1].kern_return, r.second_read ? 0 : 1);
    const std::size_t at = r.first.size;
    for (std::size_t i = 0; i < sizeof l->data; ++i) {
      const bool read = r.second_read && i >= at && i < at + kPage;
      ASSERT_EQ(l->data[i], read ? 0x32 : 0) << i;
    }
  }
  const std::string errors = ReadFile(mount_ / "t/errors");
  EXPECT_NE(errors.find("ioctl vm_read_list count 4294967295: "
                        "KERN_INVALID_ARGUMENT: count 4294967295 is more than "
                        "the 64 entries a list holds"),
            std::string::npos)
      << errors;
  EXPECT_NE(errors.find("ioctl vm_read_list entry 0 of 2 0xfffffffffffff000 "
                        "0x2000: KERN_INVALID_ADDRESS"),
            std::string::npos)
      << errors;
  EXPECT_NE(errors.find("ioctl vm_read_list entry 4 of 64 0x10001 0x0: "
                        "KERN_INVALID_ARGUMENT"),
            std::string::npos)
      << errors;
  // The reason channel holds the last failed entry's line, though the
  // call succeeded.
  taskfs_last_reason last;
  std::memset(&last, 0, sizeof last);
  ASSERT_EQ(::ioctl(fd_, TASKFS_IOC_LAST_REASON, &last), 0);
  EXPECT_NE(std::string(last.line).find("ioctl vm_read_list entry 0 of 2 "
                                        "0xfffff000 0x2000"),
            std::string::npos)
      << last.line;

  // A buffer shorter than the command's size: the kernel's EFAULT.
  const long page = ::sysconf(_SC_PAGESIZE);
  void* const map = ::mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(map, MAP_FAILED);
  ASSERT_EQ(::munmap(static_cast<char*>(map) + page, page), 0);
  auto* const tail = reinterpret_cast<taskfs_vm_read_list*>(
      static_cast<char*>(map) + page - 64);
  std::memset(tail, 0, 64);
  EXPECT_EQ(::ioctl(fd_, TASKFS_IOC_VM_READ_LIST, tail), -1);
  EXPECT_EQ(errno, EFAULT);
  ::munmap(map, page);

  // Rights are fixed at open: a file opened for reading keeps reading
  // after mem's mode loses read, as pread does; a new open is refused.
  const int ro = ::open((mount_ / "t/mem").c_str(), O_RDONLY);
  ASSERT_GE(ro, 0);
  ASSERT_EQ(::chmod((mount_ / "t/mem").c_str(), 0200), 0);
  l->count = 1;
  l->entries[0] = {0x11000, kPage, -1, 0};
  ASSERT_EQ(::ioctl(ro, TASKFS_IOC_VM_READ_LIST, l.get()), 0);
  EXPECT_EQ(l->entries[0].kern_return, 0);
  EXPECT_EQ(l->data[0], 0x32);
  AlignedBuffer one(kPage);
  EXPECT_EQ(::pread(ro, one.data, kPage, 0x11000), static_cast<ssize_t>(kPage));
  ::close(ro);
  ASSERT_EQ(::chmod((mount_ / "t/mem").c_str(), 0600), 0);
}

// Each entry is one vm_read, atomic on its own: while another thread
// rewrites two pages in one pwrite, an entry covering both sees one write's
// bytes in both, never a mix, and no entry fails.
TEST_F(MemTest, ReadListEntriesAreEachAtomic) {
  ASSERT_EQ(Ctl("allocate 0x10000 8K\n"), 0);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    AlignedBuffer w(2 * kPage);
    for (unsigned char k = 1; !stop.load(); k = k == 255 ? 1 : k + 1) {
      std::memset(w.data, k, w.size);
      if (::pwrite(fd_, w.data, w.size, 0x10000) !=
          static_cast<ssize_t>(w.size)) {
        ADD_FAILURE() << std::strerror(errno);
        return;
      }
    }
  });
  struct Join {
    std::atomic<bool>& stop;
    std::thread& thread;
    ~Join() {
      stop = true;
      thread.join();
    }
  } join{stop, writer};
  auto l = std::make_unique<taskfs_vm_read_list>();
  for (int round = 0; round < 500; ++round) {
    l->count = 2;
    l->entries[0] = {0x10000, 2 * kPage, -1, 0};
    l->entries[1] = {0x11000, kPage, -1, 0};
    ASSERT_EQ(::ioctl(fd_, TASKFS_IOC_VM_READ_LIST, l.get()), 0)
        << std::strerror(errno);
    ASSERT_EQ(l->entries[0].kern_return, 0);
    ASSERT_EQ(l->entries[1].kern_return, 0);
    for (std::size_t j = 0; j < 3 * kPage; ++j) {
      const std::size_t first = j < 2 * kPage ? 0 : 2 * kPage;
      ASSERT_EQ(l->data[j], l->data[first]) << "round " << round << " " << j;
    }
  }
}

TEST_F(MemTest, MapCopyIoctlFromAnotherTask) {
  ASSERT_EQ(::mkdir((mount_ / "src").c_str(), 0700), 0);
  ASSERT_EQ(WriteFile(mount_ / "src/ctl", "allocate 0x10000 8K\n"), 0);
  const int src = ::open((mount_ / "src/mem").c_str(), O_RDWR);
  ASSERT_GE(src, 0);
  AlignedBuffer b(2 * kPage);
  std::memset(b.data, 0x77, b.size);
  ASSERT_EQ(::pwrite(src, b.data, b.size, 0x10000),
            static_cast<ssize_t>(b.size));
  const std::string status = ReadFile(mount_ / "src/status");
  const std::size_t at = status.find("\nid: ");
  ASSERT_NE(at, std::string::npos);
  const std::uint64_t src_id =
      std::strtoull(status.c_str() + at + 5, nullptr, 10);
  taskfs_vm_map_copy m{
      src_id,
      0x10000,
      2 * kPage,
      0x40000,
      TASKFS_VM_MAP_COPY_DST_ALLOC | TASKFS_VM_MAP_COPY_SRC_DESTROY,
      0};
  ASSERT_EQ(::ioctl(fd_, TASKFS_IOC_VM_MAP_COPY, &m), 0)
      << std::strerror(errno);
  AlignedBuffer r(2 * kPage);
  ASSERT_EQ(Read(r, 0x40000, r.size), static_cast<ssize_t>(r.size));
  for (std::size_t i = 0; i < r.size; ++i) ASSERT_EQ(r.data[i], 0x77);
  // The source is gone (src_destroy); an unknown task id is ESRCH.
  EXPECT_EQ(::pread(src, b.data, kPage, 0x10000), -1);
  EXPECT_EQ(errno, EFAULT);
  m.src_task_id = 9999;
  EXPECT_EQ(::ioctl(fd_, TASKFS_IOC_VM_MAP_COPY, &m), -1);
  EXPECT_EQ(errno, ESRCH);
  ::close(src);
}

// TASKFS_IOC_VM_REMAP (docs/reference.md §5.2): share is the same memory in
// both tasks, copy a copy; the protections come back; errors are exact.
TEST_F(MemTest, RemapIoctlSharesAndCopies) {
  ASSERT_EQ(::mkdir((mount_ / "src").c_str(), 0700), 0);
  ASSERT_EQ(WriteFile(mount_ / "src/ctl",
                      "allocate 0x10000 8K\nprotect 0x11000 4K r--\n"),
            0);
  const int src = ::open((mount_ / "src/mem").c_str(), O_RDWR);
  ASSERT_GE(src, 0);
  AlignedBuffer b(kPage);
  std::memset(b.data, 0x11, kPage);
  ASSERT_EQ(::pwrite(src, b.data, kPage, 0x10000), static_cast<ssize_t>(kPage));
  const std::string status = ReadFile(mount_ / "src/status");
  const std::uint64_t src_id =
      std::strtoull(status.c_str() + status.find("\nid: ") + 5, nullptr, 10);
  taskfs_vm_remap r{src_id, 0x10000, 2 * kPage, 0x40000, 0, 1, 0, 0};
  ASSERT_EQ(::ioctl(fd_, TASKFS_IOC_VM_REMAP, &r), 0) << std::strerror(errno);
  EXPECT_EQ(r.target_address, 0x40000u);
  EXPECT_EQ(r.cur_protection, 1u);  // r-- and rw-: r--
  EXPECT_EQ(r.max_protection, 7u);
  // Shared: a write through t is seen in src.
  std::memset(b.data, 0x22, kPage);
  ASSERT_EQ(Write(b, 0x40000, kPage), static_cast<ssize_t>(kPage));
  AlignedBuffer got(kPage);
  ASSERT_EQ(::pread(src, got.data, kPage, 0x10000),
            static_cast<ssize_t>(kPage));
  EXPECT_EQ(got.data[0], 0x22);
  EXPECT_EQ(ReadFile(mount_ / "t/maps"),
            "0000000000040000-0000000000041000 rw-/rwx copy\n"
            "0000000000041000-0000000000042000 r--/rwx copy\n");
  // Copy, anywhere, inheritance share: a copy, at the lowest hole.
  r = {src_id,
       0x10000,
       kPage,
       0,
       TASKFS_VM_REMAP_ANYWHERE | TASKFS_VM_REMAP_COPY,
       0,
       0,
       0};
  ASSERT_EQ(::ioctl(fd_, TASKFS_IOC_VM_REMAP, &r), 0) << std::strerror(errno);
  EXPECT_EQ(r.target_address, 0u);
  EXPECT_EQ(r.cur_protection, 3u);
  std::memset(b.data, 0x33, kPage);
  ASSERT_EQ(Write(b, 0, kPage), static_cast<ssize_t>(kPage));
  ASSERT_EQ(::pread(src, got.data, kPage, 0x10000),
            static_cast<ssize_t>(kPage));
  EXPECT_EQ(got.data[0], 0x22);
  // Errors: a taken target, a hole in the source, bad flags, no such task.
  r = {src_id, 0x10000, kPage, 0x40000, 0, 1, 0, 0};
  EXPECT_EQ(::ioctl(fd_, TASKFS_IOC_VM_REMAP, &r), -1);
  EXPECT_EQ(errno, ENOMEM);
  r = {src_id, 0x10000, 3 * kPage, 0x80000, 0, 1, 0, 0};
  EXPECT_EQ(::ioctl(fd_, TASKFS_IOC_VM_REMAP, &r), -1);
  EXPECT_EQ(errno, EFAULT);
  r = {src_id, 0x10000, kPage, 0x80000, 4, 1, 0, 0};
  EXPECT_EQ(::ioctl(fd_, TASKFS_IOC_VM_REMAP, &r), -1);
  EXPECT_EQ(errno, EINVAL);
  r = {9999, 0x10000, kPage, 0x80000, 0, 1, 0, 0};
  EXPECT_EQ(::ioctl(fd_, TASKFS_IOC_VM_REMAP, &r), -1);
  EXPECT_EQ(errno, ESRCH);
  const std::string errors = ReadFile(mount_ / "t/errors");
  EXPECT_NE(errors.find("ioctl vm_remap task " + std::to_string(src_id) +
                        " 0x10000 0x3000 0x80000 flags 0x0 inheritance 1: "
                        "KERN_INVALID_ADDRESS: page 0x12000 is not allocated"),
            std::string::npos)
      << errors;
  // A read-only descriptor cannot remap.
  const int ro = ::open((mount_ / "t/mem").c_str(), O_RDONLY);
  ASSERT_GE(ro, 0);
  r = {src_id, 0x10000, kPage, 0x80000, 0, 1, 0, 0};
  EXPECT_EQ(::ioctl(ro, TASKFS_IOC_VM_REMAP, &r), -1);
  EXPECT_EQ(errno, EBADF);
  ::close(ro);
  ::close(src);
}

TEST_F(MemTest, RemapCtlCommand) {
  ASSERT_EQ(Ctl("allocate 0x10000 4K\n"), 0);
  AlignedBuffer b(kPage);
  std::memset(b.data, 0x44, kPage);
  ASSERT_EQ(Write(b, 0x10000, kPage), static_cast<ssize_t>(kPage));
  const int ctl = ::open((mount_ / "t/ctl").c_str(), O_RDWR);
  ASSERT_GE(ctl, 0);
  const std::string line = "remap t 0x10000 4K anywhere share\n";
  ASSERT_EQ(::write(ctl, line.data(), line.size()),
            static_cast<ssize_t>(line.size()));
  char result[64] = {};
  ASSERT_GT(::read(ctl, result, sizeof result - 1), 0);
  EXPECT_STREQ(result, "0x0\n");
  ::close(ctl);
  ASSERT_EQ(Ctl("remap t 0x10000 4K 0x20000 copy\n"), 0);
  std::memset(b.data, 0x55, kPage);
  ASSERT_EQ(Write(b, 0, kPage), static_cast<ssize_t>(kPage));
  AlignedBuffer got(kPage);
  ASSERT_EQ(Read(got, 0x10000, kPage), static_cast<ssize_t>(kPage));
  EXPECT_EQ(got.data[0], 0x55);  // shared
  ASSERT_EQ(Read(got, 0x20000, kPage), static_cast<ssize_t>(kPage));
  EXPECT_EQ(got.data[0], 0x44);  // copied before the write
  EXPECT_EQ(Ctl("remap t 0x10000 4K 0x20000 copy\n"), ENOMEM);
  EXPECT_EQ(Ctl("remap t 0x10000 4K 0x30000\n"), EINVAL);
  EXPECT_EQ(Ctl("remap t 0x10000 4K 0x30000 move\n"), EINVAL);
  EXPECT_EQ(Ctl("remap nosuch 0x10000 4K 0x30000 copy\n"), ESRCH);
}

TEST_F(MemTest, TruncateIsANoOpAndFsyncSucceeds) {
  ASSERT_EQ(Ctl("allocate 0x10000 4K\n"), 0);
  AlignedBuffer b(kPage);
  std::memset(b.data, 0x42, kPage);
  ASSERT_EQ(Write(b, 0x10000, kPage), static_cast<ssize_t>(kPage));
  ASSERT_EQ(::ftruncate(fd_, 0), 0);
  const int t = ::open((mount_ / "t/mem").c_str(), O_WRONLY | O_TRUNC);
  ASSERT_GE(t, 0) << std::strerror(errno);
  ::close(t);
  EXPECT_EQ(::fsync(fd_), 0);
  AlignedBuffer r(kPage);
  ASSERT_EQ(Read(r, 0x10000, kPage), static_cast<ssize_t>(kPage));
  EXPECT_EQ(r.data[0], 0x42);
  struct stat st;
  ASSERT_EQ(::fstat(fd_, &st), 0);
  EXPECT_EQ(st.st_size, off_t{1} << 32);
}

TEST_F(MemTest, SharedMmapIsRefused) {
  void* p = ::mmap(nullptr, kPage, PROT_READ, MAP_SHARED, fd_, 0);
  EXPECT_EQ(p, MAP_FAILED);
  EXPECT_EQ(errno, ENODEV);
}

TEST_F(MemTest, IoAfterRmdirIsEsrch) {
  ASSERT_EQ(Ctl("allocate 0x10000 4K\n"), 0);
  const int ctl = ::open((mount_ / "t/ctl").c_str(), O_RDWR);
  ASSERT_GE(ctl, 0);
  ASSERT_EQ(::rmdir((mount_ / "t").c_str()), 0) << std::strerror(errno);
  AlignedBuffer b(kPage);
  EXPECT_EQ(Read(b, 0x10000, kPage), -ESRCH);
  EXPECT_EQ(Write(b, 0x10000, kPage), -ESRCH);
  taskfs_vm_copy c{0x10000, kPage, 0x10000};
  EXPECT_EQ(::ioctl(fd_, TASKFS_IOC_VM_COPY, &c), -1);
  EXPECT_EQ(errno, ESRCH);
  const std::string cmd = "allocate 0x20000 4K\n";
  EXPECT_EQ(::write(ctl, cmd.data(), cmd.size()), -1);
  EXPECT_EQ(errno, ESRCH);
  ::close(ctl);
  struct stat st;
  EXPECT_NE(::stat((mount_ / "t").c_str(), &st), 0);
}

TEST_F(MemTest, FstatAfterRmdirGivesTheLastAttributes) {
  ASSERT_EQ(Ctl("allocate 0x10000 4K\n"), 0);
  ASSERT_EQ(::chmod((mount_ / "t/mem").c_str(), 0640), 0);
  const int ctl = ::open((mount_ / "t/ctl").c_str(), O_RDWR);
  ASSERT_GE(ctl, 0);
  struct stat before, ctl_before;
  ASSERT_EQ(::fstat(fd_, &before), 0);
  ASSERT_EQ(::fstat(ctl, &ctl_before), 0);
  EXPECT_EQ(before.st_mode, S_IFREG | 0640u);
  ASSERT_EQ(::rmdir((mount_ / "t").c_str()), 0) << std::strerror(errno);
  // fstat still works, with what the files were (dd does this first).
  for (const auto& [fd, expected] :
       {std::pair{fd_, before}, std::pair{ctl, ctl_before}}) {
    struct stat after;
    ASSERT_EQ(::fstat(fd, &after), 0) << std::strerror(errno);
    EXPECT_EQ(after.st_ino, expected.st_ino);
    EXPECT_EQ(after.st_mode, expected.st_mode);
    EXPECT_EQ(after.st_uid, expected.st_uid);
    EXPECT_EQ(after.st_size, expected.st_size);
  }
  // I/O does not, and no path leads to the task any more.
  AlignedBuffer b(kPage);
  EXPECT_EQ(Read(b, 0x10000, kPage), -ESRCH);
  struct stat st;
  EXPECT_NE(::stat((mount_ / "t/mem").c_str(), &st), 0);
  EXPECT_EQ(errno, ENOENT);
  // dd on the open descriptor: fstat passes, the read is ESRCH.
  const RunResult dd = RunCommand(
      {"sh", "-c",
       "dd of=/dev/null bs=4096 count=1 skip=16 <&" + std::to_string(fd_)});
  EXPECT_NE(dd.exit_code, 0);
  EXPECT_EQ(dd.err.find("cannot fstat"), std::string::npos) << dd.err;
  EXPECT_NE(dd.err.find("No such process"), std::string::npos) << dd.err;
  ::close(ctl);
}

TEST_F(MemTest, DdWritesAndReadsWithAndWithoutNotrunc) {
  ASSERT_EQ(Ctl("allocate 0x10000 64K\n"), 0);
  const std::string in = "/tmp/taskfs-dd-in";
  AlignedBuffer b(8 * kPage);
  for (std::size_t i = 0; i < b.size; ++i)
    b.data[i] = static_cast<unsigned char>(i % 251);
  {
    const int f = ::open(in.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_EQ(::write(f, b.data, b.size), static_cast<ssize_t>(b.size));
    ::close(f);
  }
  const std::string mem = mount_ / "t/mem";
  RunResult w =
      RunCommand({"dd", "if=" + in, "of=" + mem, "bs=4096",
                  "seek=" + std::to_string(0x10000 / kPage), "status=none"});
  EXPECT_EQ(w.exit_code, 0) << w.err;
  w = RunCommand({"dd", "if=" + in, "of=" + mem, "bs=4096", "conv=notrunc",
                  "seek=" + std::to_string(0x18000 / kPage), "status=none"});
  EXPECT_EQ(w.exit_code, 0) << w.err;
  RunResult r =
      RunCommand({"dd", "if=" + mem, "bs=4096", "count=16",
                  "skip=" + std::to_string(0x10000 / kPage), "status=none"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.out.size(), 16 * kPage);
  EXPECT_EQ(std::memcmp(r.out.data(), b.data, b.size), 0);
  EXPECT_EQ(std::memcmp(r.out.data() + b.size, b.data, b.size), 0);
  // dd onto a hole reports the errno's message and fails.
  RunResult bad = RunCommand({"dd", "if=" + in, "of=" + mem, "bs=4096",
                              "count=1", "seek=1", "status=none"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("Bad address"), std::string::npos) << bad.err;
  ::unlink(in.c_str());
}

// mem's modification and change times are when the task's memory or map
// last changed (docs/reference.md §4), so stat, find -newer and make see a
// change made through any path; maps and status show the same time.
timespec MTime(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return {-1, 0};
  EXPECT_EQ(st.st_mtim.tv_sec, st.st_ctim.tv_sec) << path;
  EXPECT_EQ(st.st_mtim.tv_nsec, st.st_ctim.tv_nsec) << path;
  return st.st_mtim;
}
bool Later(const timespec& a, const timespec& b) {
  return a.tv_sec != b.tv_sec ? a.tv_sec > b.tv_sec : a.tv_nsec > b.tv_nsec;
}
bool Same(const timespec& a, const timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}
// Creates path holding text; false on failure.
bool CreateFile(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return false;
  const bool ok = ::write(fd, text.data(), text.size()) ==
                  static_cast<ssize_t>(text.size());
  return ::close(fd) == 0 && ok;
}
// Waits until clock is past t: a change made after that is later than t,
// and a file the kernel stamps then (with its coarse clock) is later too.
void PassClock(clockid_t clock, const timespec& t) {
  timespec now;
  do {
    clock_gettime(clock, &now);
  } while (!Later(now, t));
}

TEST_F(MemTest, ModificationTimeMovesOnEveryWriteCopyAndMapChange) {
  const std::string mem = mount_ / "t/mem";
  const auto expect_moves = [&](const char* what, auto&& change) {
    const timespec before = MTime(mem);
    PassClock(CLOCK_REALTIME, before);
    change();
    const timespec after = MTime(mem);
    EXPECT_TRUE(Later(after, before)) << what;
    EXPECT_TRUE(Same(MTime(mount_ / "t/maps"), after)) << what;
    EXPECT_TRUE(Same(MTime(mount_ / "t/status"), after)) << what;
  };
  expect_moves("ctl allocate", [&] {
    ASSERT_EQ(Ctl("allocate 0x10000 8K\nallocate 0x20000 8K\n"), 0);
  });
  AlignedBuffer b(kPage);
  std::memset(b.data, 0x5a, b.size);
  expect_moves("pwrite", [&] {
    ASSERT_EQ(Write(b, 0x10000, kPage), static_cast<ssize_t>(kPage));
  });
  expect_moves("vm_copy ioctl", [&] {
    taskfs_vm_copy c{0x10000, kPage, 0x20000};
    ASSERT_EQ(::ioctl(fd_, TASKFS_IOC_VM_COPY, &c), 0) << std::strerror(errno);
  });
  expect_moves("ctl protect",
               [&] { ASSERT_EQ(Ctl("protect 0x20000 4K r--\n"), 0); });
  expect_moves("ctl deallocate",
               [&] { ASSERT_EQ(Ctl("deallocate 0x20000 8K\n"), 0); });
  // Reads and failures change nothing, and leave the time.
  const timespec settled = MTime(mem);
  PassClock(CLOCK_REALTIME, settled);
  AlignedBuffer r(kPage);
  ASSERT_EQ(Read(r, 0x10000, kPage), static_cast<ssize_t>(kPage));
  EXPECT_EQ(Write(b, 0x30000, kPage), -EFAULT);
  EXPECT_NE(Ctl("allocate 0x10000 4K\n"), 0);
  EXPECT_NE(Ctl("protect 0x30000 4K r--\n"), 0);
  EXPECT_TRUE(Same(MTime(mem), settled));
}

TEST_F(MemTest, FindNewerSeesAWriteByDd) {
  ASSERT_EQ(Ctl("allocate 0x10000 4K\n"), 0);
  const std::string dir = mount_ / "t";
  // A reference file stamped (by the kernel's coarse clock) after mem's
  // last change: mem is not newer than it.
  const TempDir scratch;
  const std::string ref = scratch.path() + "/ref";
  PassClock(CLOCK_REALTIME_COARSE, MTime(dir + "/mem"));
  ASSERT_TRUE(CreateFile(ref, "x"));
  const std::vector<std::string> find = {"find", dir,      "-name",
                                         "mem",  "-newer", ref};
  RunResult before = RunCommand(find);
  ASSERT_EQ(before.exit_code, 0) << before.err;
  EXPECT_EQ(before.out, "");
  // A write by dd, after the reference file's time: mem is newer.
  struct stat ref_st;
  ASSERT_EQ(::stat(ref.c_str(), &ref_st), 0);
  PassClock(CLOCK_REALTIME, ref_st.st_mtim);
  const std::string page = scratch.path() + "/page";
  ASSERT_TRUE(CreateFile(page, std::string(kPage, 'd')));
  RunResult dd =
      RunCommand({"dd", "if=" + page, "of=" + dir + "/mem", "bs=4096",
                  "seek=16", "conv=notrunc", "status=none"});
  ASSERT_EQ(dd.exit_code, 0) << dd.err;
  RunResult after = RunCommand(find);
  ASSERT_EQ(after.exit_code, 0) << after.err;
  EXPECT_EQ(after.out, dir + "/mem\n");
}

// st_blocks is the task's resident memory (docs/reference.md §5), so du and
// ls -s tell what the task holds: a written page counts, an allocated page
// never written does not, and a copy shares its pages.
TEST_F(MemTest, BlocksAreTheResidentMemorySoDuAndLsSMeanSomething) {
  const std::string mem = mount_ / "t/mem";
  const auto blocks = [&] {
    struct stat st;
    EXPECT_EQ(::stat(mem.c_str(), &st), 0);
    return st.st_blocks;
  };
  ASSERT_EQ(Ctl("allocate 0x10000 64K\nallocate 0x40000 64K\n"), 0);
  EXPECT_EQ(blocks(), 0);
  AlignedBuffer b(3 * kPage);
  std::memset(b.data, 0x5a, b.size);
  ASSERT_EQ(Write(b, 0x10000, 3 * kPage), static_cast<ssize_t>(3 * kPage));
  EXPECT_EQ(blocks(), 3 * 4096 / 512);
  taskfs_vm_copy c{0x10000, 3 * kPage, 0x40000};
  ASSERT_EQ(::ioctl(fd_, TASKFS_IOC_VM_COPY, &c), 0) << std::strerror(errno);
  EXPECT_EQ(blocks(), 3 * 4096 / 512);
  std::memset(b.data, 0x33, kPage);
  ASSERT_EQ(Write(b, 0x40000, kPage), static_cast<ssize_t>(kPage));
  EXPECT_EQ(blocks(), 4 * 4096 / 512);
  const RunResult du = RunCommand({"du", "-k", mem});
  ASSERT_EQ(du.exit_code, 0) << du.err;
  EXPECT_EQ(du.out, "16\t" + mem + "\n");
  const RunResult ls = RunCommand({"ls", "-s", "--block-size=1K", mem});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_EQ(ls.out, "16 " + mem + "\n");
  const RunResult st = RunCommand({"stat", "-c", "%b %B %s", mem});
  ASSERT_EQ(st.exit_code, 0) << st.err;
  EXPECT_EQ(st.out, "32 512 4294967296\n");
  // The copy keeps its two unchanged pages and its own.
  ASSERT_EQ(Ctl("deallocate 0x10000 64K\n"), 0);
  EXPECT_EQ(blocks(), 3 * 4096 / 512);
  ASSERT_EQ(Ctl("deallocate 0x40000 64K\n"), 0);
  EXPECT_EQ(blocks(), 0);
}

}  // namespace
}  // namespace taskfs::testing
