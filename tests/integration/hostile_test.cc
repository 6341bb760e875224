// Hostile input through a real mount, one row per case, each with its exact
// errno (docs/reference.md §2, §5, §6, §8; README "choices where the spec is
// silent"; or, where the kernel answers before the daemon is asked, the
// kernel's errno, said so in the row's comment). After every row the daemon
// must still be alive, the task's map unchanged, its data intact and a normal
// write and read still working.
//
// Rows that mem_test.cc, ctl_test.cc and permissions_test.cc already cover
// (unaligned reads at 0x10001, 100-byte reads, 65-bit numbers, 1 MiB of
// random garbage, NUL and control bytes in ctl, mkdir of 255/256-byte and
// control-character names, empty/binary manifests, load of a missing file or
// a directory, ...) are not repeated here.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "taskfs/ioctl.h"
#include "tests/integration/mount_fixture.h"
#include "tests/integration/test_util.h"

namespace taskfs::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr off_t kEnd = off_t{1} << 32;  // the mounts use address_bits=32
constexpr off_t kInt64Max = INT64_MAX;
constexpr off_t kTwoPow63Minus1Page = INT64_MAX - 4095;  // 2^63 - 4096
constexpr off_t kTwoPow63Minus2Pages = INT64_MAX - 8191;
constexpr std::uint64_t kWrapStart = 0xfffffffffffff000ull;  // 2^64 - 4096
constexpr std::uint64_t kMaxU64 = UINT64_MAX;

// The task every row runs against, as SetUpTestSuite leaves it.
constexpr std::uint64_t kCanary = 0x10000;  // 64 KiB of Pattern(64K, 1)
constexpr std::size_t kCanarySize = 64 * 1024;
constexpr std::uint64_t kScratch = 0x20000;  // one rw- page
constexpr std::uint64_t kBig = 0x1000000;    // 16 MiB, zero-fill
constexpr std::uint64_t kShort = 0x4000000;  // 2 MiB less one page
constexpr char kSetup[] =
    "allocate 0x10000 64K\n"
    "allocate 0x20000 4K\n"
    "allocate 0x30000 4K\nprotect 0x30000 4K r--\n"
    "allocate 0x1000000 16M\n"
    "allocate 0x4000000 0x1ff000\n";
constexpr char kBaselineMaps[] =
    "0000000000010000-0000000000021000 rw-/rwx copy\n"
    "0000000000030000-0000000000031000 r--/rwx copy\n"
    "0000000001000000-0000000002000000 rw-/rwx copy\n"
    "0000000004000000-00000000041ff000 rw-/rwx copy\n";

// Results of a row's action that are neither a count nor -errno: a step
// inside the row went wrong (the row names which in its comment).
constexpr long kStep1 = -100001;
constexpr long kStep2 = -100002;
constexpr long kStep3 = -100003;
constexpr long kStep4 = -100004;
constexpr long kStep5 = -100005;

// -errno of a failed call, else its value.
long Ret(long r) { return r < 0 ? -errno : r; }

// What a row's action gets.
struct Ctx {
  const Mount& mount;
  int mem;           // task t's mem, O_RDWR, offset 0
  std::uint64_t id;  // task t's id
  std::string Path(const std::string& rel) const { return mount / rel; }
  std::string Maps() const { return ReadFile(mount / "t/maps"); }
  bool HasRegion(const std::string& line) const {
    return Maps().find(line) != std::string::npos;
  }
};

struct Row {
  std::string name;
  std::function<long(Ctx&)> action;
  long expect;  // a count or value, or -errno
};

void PrintTo(const Row& row, std::ostream* os) { *os << row.name; }

std::string RowName(const ::testing::TestParamInfo<Row>& info) {
  return info.param.name;
}

// open(2) of rel with flags: 0 (and the file closed again) or -errno.
long OpenFor(const Ctx& c, const std::string& rel, int flags) {
  const int fd = ::open(c.Path(rel).c_str(), flags);
  if (fd < 0) return -errno;
  ::close(fd);
  return 0;
}

// One write(2) of text to t's ctl, then close(2): 0 or -errno of the write,
// or of the close when the write kept a cut last line (README), which then
// runs at close. A short write is kStep3.
long CtlWrite(const Ctx& c, const std::string& text) {
  const int fd = ::open(c.Path("t/ctl").c_str(), O_RDWR);
  if (fd < 0) return -errno;
  const ssize_t n = ::write(fd, text.data(), text.size());
  const long r =
      n < 0 ? -errno
            : (static_cast<std::size_t>(n) == text.size() ? 0 : kStep3);
  if (::close(fd) != 0 && r == 0) return -errno;
  return r;
}

// Runs commands that must succeed (a row's clean-up).
void Ctl(const Ctx& c, const std::string& text) {
  ASSERT_EQ(WriteFile(c.Path("t/ctl"), text), 0) << text;
}

long PreadAt(const Ctx& c, std::size_t n, off_t off) {
  AlignedBuffer b(n);
  return Ret(::pread(c.mem, b.data, n, off));
}

long PwriteAt(const Ctx& c, std::size_t n, off_t off) {
  AlignedBuffer b(n);
  std::memset(b.data, 0x5c, n);
  return Ret(::pwrite(c.mem, b.data, n, off));
}

template <typename T>
long Ioctl(const Ctx& c, unsigned long cmd, T arg) {
  return Ret(::ioctl(c.mem, cmd, &arg));
}

// The whole range of a mis-numbered ioctl's argument, to see that nothing
// was copied back into it.
constexpr std::size_t kArgBytes = 16384;

// An ioctl whose number has the right type and nr but a wrong size or
// direction: ENOTTY (docs/reference.md §5 "unknown commands"), nothing changed,
// nothing copied back.
long MisnumberedIoctl(const Ctx& c, unsigned dir, unsigned nr, unsigned size) {
  std::vector<unsigned char> arg(kArgBytes, 0xa5);
  // Fields that would be a valid request of the right command: allocate
  // fixed at 0x40000, copy the canary onto the scratch page, ...
  std::uint64_t fields[5] = {0x40000, kPage, kScratch, 0, 0};
  if (nr == 1) {  // vm_copy {src, size, dst}
    fields[0] = kCanary;
  } else if (nr == 7) {  // vm_map_copy {id, src, size, dst, flags}
    fields[0] = c.id;
    fields[1] = kCanary;
    fields[2] = kPage;
    fields[3] = 0x40000;
    fields[4] = TASKFS_VM_MAP_COPY_DST_ALLOC;
  }
  std::memcpy(arg.data(), fields, sizeof fields);
  const std::vector<unsigned char> before = arg;
  const long r = Ret(::ioctl(c.mem, _IOC(dir, 'M', nr, size), arg.data()));
  if (arg != before) return kStep1;
  return r;
}

std::vector<Row> MisnumberedIoctlRows() {
  struct Command {
    const char* name;
    unsigned nr;
    unsigned size;
    unsigned dir;
  };
  const Command commands[] = {
      {"VmCopy", 1, sizeof(taskfs_vm_copy), _IOC_WRITE},
      {"VmAllocate", 2, sizeof(taskfs_vm_allocate), _IOC_READ | _IOC_WRITE},
      {"VmDeallocate", 3, sizeof(taskfs_vm_deallocate), _IOC_WRITE},
      {"VmProtect", 4, sizeof(taskfs_vm_protect), _IOC_WRITE},
      {"VmInherit", 5, sizeof(taskfs_vm_inherit), _IOC_WRITE},
      {"VmRegion", 6, sizeof(taskfs_vm_region), _IOC_READ | _IOC_WRITE},
      {"VmMapCopy", 7, sizeof(taskfs_vm_map_copy), _IOC_READ | _IOC_WRITE},
  };
  std::vector<Row> rows;
  auto add = [&](const Command& k, const char* what, unsigned dir,
                 unsigned size) {
    rows.push_back({std::string(k.name) + what,
                    [dir, nr = k.nr, size](Ctx& c) {
                      return MisnumberedIoctl(c, dir, nr, size);
                    },
                    -ENOTTY});
  };
  for (const Command& k : commands) {
    // The exact numbers are checked to work in mem_test.cc; these differ
    // from them in one field each.
    add(k, "SizeOneShort", k.dir, k.size - 1);
    add(k, "SizeOneLong", k.dir, k.size + 1);
    add(k, "SizeZero", k.dir, 0);
    add(k, "SizeMaximum", k.dir, (1u << _IOC_SIZEBITS) - 1);
    add(k, "NoDirection", _IOC_NONE, k.size);
    if (k.dir == _IOC_WRITE) {
      if (k.nr != 1) add(k, "ReadInsteadOfWrite", _IOC_READ, k.size);
      add(k, "ReadWriteInsteadOfWrite", _IOC_READ | _IOC_WRITE, k.size);
    } else {
      add(k, "WriteOnly", _IOC_WRITE, k.size);
      add(k, "ReadOnly", _IOC_READ, k.size);
    }
  }
  return rows;
}

// --- the shared mount -------------------------------------------------------

class HostileTest : public ::testing::TestWithParam<Row> {
 protected:
  static void SetUpTestSuite() {
    mount_ = new Mount({"-o", "tasks=none,address_bits=32,memory_limit=256M"});
    if (!mount_->ok()) return;
    if (::mkdir((*mount_ / "t").c_str(), 0700) != 0) return;
    if (WriteFile(*mount_ / "t/ctl", kSetup) != 0) return;
    WriteMem(*mount_ / "t/mem", kCanary, Pattern(kCanarySize, 1));
    id_ = std::strtoull(
        StatusValue(ReadFile(*mount_ / "t/status"), "id").c_str(), nullptr, 10);
  }
  static void TearDownTestSuite() {
    delete mount_;
    mount_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(mount_->ok()) << mount_->error();
    ASSERT_TRUE(DaemonAlive(*mount_)) << mount_->DaemonLog();
    ASSERT_EQ(ReadFile(*mount_ / "t/maps"), kBaselineMaps)
        << "an earlier row left the task changed";
    ASSERT_NE(id_, 0u);
    fd_ = ::open((*mount_ / "t/mem").c_str(), O_RDWR);
    ASSERT_GE(fd_, 0) << std::strerror(errno);
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
  }

  // What must hold after every row, whatever it did.
  void ExpectUnharmed() {
    ASSERT_TRUE(DaemonAlive(*mount_)) << mount_->DaemonLog();
    EXPECT_EQ(ReadFile(*mount_ / "t/maps"), kBaselineMaps);
    std::string data;
    ASSERT_EQ(ReadMem(*mount_ / "t/mem", kCanary, kCanarySize, &data), 0);
    EXPECT_TRUE(data == Pattern(kCanarySize, 1)) << "the canary changed";
    const std::string page = Pattern(kPage, ++seed_);
    ASSERT_EQ(WriteMem(*mount_ / "t/mem", kScratch, page), 0);
    ASSERT_EQ(ReadMem(*mount_ / "t/mem", kScratch, kPage, &data), 0);
    EXPECT_TRUE(data == page) << "a normal write and read-back failed";
    EXPECT_EQ(ListDir(mount_->path()),
              (std::vector<std::string>{"host_page_size", "t"}));
  }

  static Mount* mount_;
  static std::uint64_t id_;
  static unsigned seed_;
  int fd_ = -1;
};

Mount* HostileTest::mount_ = nullptr;
std::uint64_t HostileTest::id_ = 0;
unsigned HostileTest::seed_ = 100;

TEST_P(HostileTest, Row) {
  Ctx c{*mount_, fd_, id_};
  const auto start = Clock::now();
  EXPECT_EQ(GetParam().action(c), GetParam().expect);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(30));
  ExpectUnharmed();
}

// --- offsets and sizes of mem, lseek
// ------------------------------------------

const Row kOffsetRows[] = {
    // Inside the space but unaligned: EINVAL (docs/reference.md §5).
    {"ReadUnalignedInTheLastPage",
     [](Ctx& c) { return PreadAt(c, kPage, kEnd - 1); }, -EINVAL},
    // At or past the end a read is end of file before anything else
    // (docs/reference.md §5 lists that rule before alignment).
    {"ReadUnalignedPastTheEndIsEndOfFile",
     [](Ctx& c) { return PreadAt(c, kPage, kEnd + 1); }, 0},
    // A write has no end of file: argument checks come before bounds
    // (docs/reference.md §2 order), so unaligned past the end is EINVAL, not
    // EFAULT.
    {"WriteUnalignedPastTheEndIsEinval",
     [](Ctx& c) { return PwriteAt(c, kPage, kEnd + 1); }, -EINVAL},
    // Starts inside, runs past the end: EFAULT (README "Reads at the end").
    {"ReadStraddlingTheEnd",
     [](Ctx& c) { return PreadAt(c, 2 * kPage, kEnd - kPage); }, -EFAULT},
    {"WriteStraddlingTheEnd",
     [](Ctx& c) { return PwriteAt(c, 2 * kPage, kEnd - kPage); }, -EFAULT},
    {"ReadJustBelowTwoPow63IsEndOfFile",
     [](Ctx& c) { return PreadAt(c, kPage, kTwoPow63Minus2Pages); }, 0},
    {"WriteJustBelowTwoPow63IsEfault",
     [](Ctx& c) { return PwriteAt(c, kPage, kTwoPow63Minus2Pages); }, -EFAULT},
    // offset + size reaches 2^63: the kernel refuses (rw_verify_area).
    {"ReadEndingAtTwoPow63IsEinvalFromTheKernel",
     [](Ctx& c) { return PreadAt(c, kPage, kTwoPow63Minus1Page); }, -EINVAL},
    {"WriteEndingAtTwoPow63IsEinvalFromTheKernel",
     [](Ctx& c) { return PwriteAt(c, kPage, kTwoPow63Minus1Page); }, -EINVAL},
    // 2^64 - 4096 as an off_t is negative: the kernel's EINVAL.
    {"ReadAtTwoPow64MinusOnePage",
     [](Ctx& c) { return PreadAt(c, kPage, static_cast<off_t>(kWrapStart)); },
     -EINVAL},
    {"WriteAtTwoPow64MinusOnePage",
     [](Ctx& c) { return PwriteAt(c, kPage, static_cast<off_t>(kWrapStart)); },
     -EINVAL},
    // lseek may go to 2^63 - 1 (the kernel's limit for FUSE); a read there
    // would end past 2^63: EINVAL. Step 1: lseek did not land there.
    {"LseekToInt64MaxThenRead",
     [](Ctx& c) {
       if (::lseek(c.mem, kInt64Max, SEEK_SET) != kInt64Max) return kStep1;
       AlignedBuffer b(kPage);
       return Ret(::read(c.mem, b.data, kPage));
     },
     -EINVAL},
    // The position just below: a read is end of file, a write EFAULT.
    // Step 1: lseek, step 2: the read.
    {"LseekBelowTwoPow63ThenReadAndWrite",
     [](Ctx& c) {
       if (::lseek(c.mem, kTwoPow63Minus2Pages, SEEK_SET) !=
           kTwoPow63Minus2Pages) {
         return kStep1;
       }
       AlignedBuffer b(kPage);
       if (::read(c.mem, b.data, kPage) != 0) return kStep2;
       return Ret(::write(c.mem, b.data, kPage));
     },
     -EFAULT},
    // 2^63 does not fit an off_t: EINVAL, and the position stays.
    {"LseekToTwoPow63IsEinval",
     [](Ctx& c) {
       const long r = Ret(::lseek(c.mem, LLONG_MIN, SEEK_SET));
       return ::lseek(c.mem, 0, SEEK_CUR) == 0 ? r : kStep1;
     },
     -EINVAL},
    {"LseekCurPastInt64MaxIsEinval",
     [](Ctx& c) {
       if (::lseek(c.mem, kInt64Max - 10, SEEK_SET) != kInt64Max - 10) {
         return kStep1;
       }
       const long r = Ret(::lseek(c.mem, 11, SEEK_CUR));
       return ::lseek(c.mem, 0, SEEK_CUR) == kInt64Max - 10 ? r : kStep2;
     },
     -EINVAL},
    // SEEK_END is st_size, 2^32; past it by INT64_MAX overflows.
    {"LseekEndPlusInt64MaxIsEinval",
     [](Ctx& c) {
       if (::lseek(c.mem, 0, SEEK_END) != kEnd) return kStep1;
       return Ret(::lseek(c.mem, kInt64Max, SEEK_END));
     },
     -EINVAL},
    // At the end of file (SEEK_END): read 0, write EFAULT (docs/reference.md
    // §5).
    {"ReadAndWriteAtSeekEnd",
     [](Ctx& c) {
       if (::lseek(c.mem, 0, SEEK_END) != kEnd) return kStep1;
       AlignedBuffer b(kPage);
       if (::read(c.mem, b.data, kPage) != 0) return kStep2;
       return Ret(::write(c.mem, b.data, kPage));
     },
     -EFAULT},
    // SEEK_DATA/SEEK_HOLE from at or past the end: ENXIO (README).
    {"SeekDataFromTheEndIsEnxio",
     [](Ctx& c) { return Ret(::lseek(c.mem, kEnd, SEEK_DATA)); }, -ENXIO},
    {"SeekHoleFromInt64MaxIsEnxio",
     [](Ctx& c) { return Ret(::lseek(c.mem, kInt64Max, SEEK_HOLE)); }, -ENXIO},
    {"SeekDataFromTwoPow63IsEnxio",
     [](Ctx& c) { return Ret(::lseek(c.mem, LLONG_MIN, SEEK_DATA)); }, -ENXIO},
    {"SeekHoleFromTwoPow64MinusOnePageIsEnxio",
     [](Ctx& c) {
       return Ret(::lseek(c.mem, static_cast<off_t>(kWrapStart), SEEK_HOLE));
     },
     -ENXIO},
    // A read of 2 GiB (the kernel's most per call) that starts in the
    // canary and runs into a hole: EFAULT, and only a few pages of the
    // buffer are touched. Step 1: no buffer.
    {"ReadOfTwoGibibytesIntoAHoleIsEfault",
     [](Ctx& c) {
       const std::size_t n = 0x7ffff000;
       void* p = ::mmap(nullptr, n, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
       if (p == MAP_FAILED) return kStep1;
       const long r = Ret(::pread(c.mem, p, n, kCanary));
       ::munmap(p, n);
       return r;
     },
     -EFAULT},
    // 16 MiB in one pread: sixteen 1 MiB requests, all of it returned.
    // Step 1: not all zeros.
    {"ReadOfSixteenMebibytesSpansSixteenRequests",
     [](Ctx& c) {
       AlignedBuffer b(16 << 20);
       std::memset(b.data, 0xee, b.size);
       const long r = Ret(::pread(c.mem, b.data, b.size, kBig));
       for (std::size_t i = 0; i < b.size; i += 512) {
         if (b.data[i] != 0) return kStep1;
       }
       return r;
     },
     16 << 20},
    // 2 MiB in one pwrite whose last page is a hole: the kernel sends it in
    // requests of the mount's request size (README "Request size"); those
    // before the one reaching the hole are done and their bytes returned,
    // and the failing request changed nothing (docs/reference.md §2, §5). 1: as
    // promised. Step 2: zeroing failed, 3: the count, 4: the bytes done,
    // 5: the bytes not done.
    {"WriteOfTwoMebibytesStopsAtTheRequestThatFails",
     [](Ctx& c) {
       const std::size_t mib = 1 << 20;
       if (WriteMem(c.Path("t/mem"), kShort,
                    std::string(2 * mib - kPage, '\0')) != 0) {
         return kStep2;
       }
       const std::string pattern = Pattern(2 * mib, 9);
       AlignedBuffer b(2 * mib);
       std::memcpy(b.data, pattern.data(), b.size);
       const long r = Ret(::pwrite(c.mem, b.data, b.size, kShort));
       if (r <= 0 || r % kPage != 0 ||
           static_cast<std::size_t>(r) >= 2 * mib - kPage) {
         return kStep3;
       }
       const std::size_t done = static_cast<std::size_t>(r);
       std::string got;
       if (ReadMem(c.Path("t/mem"), kShort, 2 * mib - kPage, &got) != 0 ||
           got.compare(0, done, pattern, 0, done) != 0) {
         return kStep4;
       }
       if (got.substr(done) != std::string(2 * mib - kPage - done, '\0')) {
         return kStep5;
       }
       return 1L;
     },
     1},
    // 1 MiB into a buffer one byte off a page boundary: any buffer works
    // (docs/reference.md §5), every byte as written.
    {"ReadOfOneMebibyteIntoAnUnalignedBuffer",
     [](Ctx& c) {
       const std::string pattern = Pattern(1 << 20, 4);
       if (WriteMem(c.Path("t/mem"), kBig, pattern) != 0) return kStep2;
       AlignedBuffer b((1 << 20) + kPage);
       const long r = Ret(::pread(c.mem, b.data + 1, 1 << 20, kBig));
       const bool same =
           std::memcmp(b.data + 1, pattern.data(), pattern.size()) == 0;
       // Zero-fill again, as the other rows expect.
       if (WriteMem(c.Path("t/mem"), kBig, std::string(1 << 20, '\0')) != 0) {
         return kStep4;
       }
       return r == (1 << 20) && !same ? kStep3 : r;
     },
     1 << 20},
};
INSTANTIATE_TEST_SUITE_P(Offsets, HostileTest, ::testing::ValuesIn(kOffsetRows),
                         RowName);

// --- ioctls -----------------------------------------------------------------

INSTANTIATE_TEST_SUITE_P(MisnumberedIoctls, HostileTest,
                         ::testing::ValuesIn(MisnumberedIoctlRows()), RowName);

long IoctlOn(const Ctx& c, const std::string& rel, int flags) {
  const int fd = ::open(c.Path(rel).c_str(), flags);
  if (fd < 0) return kStep1;
  taskfs_vm_region r{0, 0, 0, 0, 0, 0};
  const long result = Ret(::ioctl(fd, TASKFS_IOC_VM_REGION, &r));
  ::close(fd);
  return result;
}

const Row kIoctlRows[] = {
    {"WrongTypeLetter",
     [](Ctx& c) {
       taskfs_vm_copy a{kCanary, kPage, kScratch};
       return Ret(::ioctl(c.mem, _IOW('m', 1, taskfs_vm_copy), &a));
     },
     -ENOTTY},
    {"NumberZero",
     [](Ctx& c) {
       taskfs_vm_copy a{kCanary, kPage, kScratch};
       return Ret(::ioctl(c.mem, _IOW('M', 0, taskfs_vm_copy), &a));
     },
     -ENOTTY},
    {"NumberEight",
     [](Ctx& c) {
       taskfs_vm_map_copy a{c.id, kCanary, kPage, 0x40000, 1, 0};
       return Ret(::ioctl(c.mem, _IOWR('M', 8, taskfs_vm_map_copy), &a));
     },
     -ENOTTY},
    // isatty(3) asks TCGETS: a mem file is no terminal.
    {"Tcgets", [](Ctx& c) { return Ret(::isatty(c.mem) ? 0 : -1); }, -ENOTTY},
    // A NULL argument: the kernel cannot copy the struct in.
    {"NullArgument",
     [](Ctx& c) { return Ret(::ioctl(c.mem, TASKFS_IOC_VM_COPY, nullptr)); },
     -EFAULT},
    // The ioctls are mem's only (spec silent; ENOTTY as for any file
    // without them).
    {"OnCtl", [](Ctx& c) { return IoctlOn(c, "t/ctl", O_RDWR); }, -ENOTTY},
    {"OnMaps", [](Ctx& c) { return IoctlOn(c, "t/maps", O_RDONLY); }, -ENOTTY},
    {"OnStatus", [](Ctx& c) { return IoctlOn(c, "t/status", O_RDONLY); },
     -ENOTTY},
    {"OnHostPageSize",
     [](Ctx& c) { return IoctlOn(c, "host_page_size", O_RDONLY); }, -ENOTTY},
    {"OnTheTaskDirectory",
     [](Ctx& c) { return IoctlOn(c, "t", O_RDONLY | O_DIRECTORY); }, -ENOTTY},
    {"OnTheRoot", [](Ctx& c) { return IoctlOn(c, "", O_RDONLY | O_DIRECTORY); },
     -ENOTTY},
    // Bad flags, protections, inheritances: EINVAL (docs/reference.md §2).
    {"AllocateUnknownFlag",
     [](Ctx& c) {
       return Ioctl(c, TASKFS_IOC_VM_ALLOCATE,
                    taskfs_vm_allocate{0x40000, kPage, 2, 0});
     },
     -EINVAL},
    {"AllocateEveryFlagBit",
     [](Ctx& c) {
       return Ioctl(c, TASKFS_IOC_VM_ALLOCATE,
                    taskfs_vm_allocate{0x40000, kPage, 0xffffffffu, 0});
     },
     -EINVAL},
    {"ProtectSetMaximumTwo",
     [](Ctx& c) {
       return Ioctl(c, TASKFS_IOC_VM_PROTECT,
                    taskfs_vm_protect{kCanary, kPage, 2, 1});
     },
     -EINVAL},
    {"ProtectEveryProtectionBit",
     [](Ctx& c) {
       return Ioctl(c, TASKFS_IOC_VM_PROTECT,
                    taskfs_vm_protect{kCanary, kPage, 0, 0xffffffffu});
     },
     -EINVAL},
    {"InheritThree",
     [](Ctx& c) {
       return Ioctl(c, TASKFS_IOC_VM_INHERIT,
                    taskfs_vm_inherit{kCanary, kPage, 3, 0});
     },
     -EINVAL},
    {"InheritEveryBit",
     [](Ctx& c) {
       return Ioctl(c, TASKFS_IOC_VM_INHERIT,
                    taskfs_vm_inherit{kCanary, kPage, 0xffffffffu, 0});
     },
     -EINVAL},
    {"MapCopyUnknownFlag",
     [](Ctx& c) {
       return Ioctl(c, TASKFS_IOC_VM_MAP_COPY,
                    taskfs_vm_map_copy{c.id, kCanary, kPage, 0x40000, 5, 0});
     },
     -EINVAL},
    // Task ids that do not exist: ESRCH (docs/reference.md §2).
    {"MapCopyTaskIdZero",
     [](Ctx& c) {
       return Ioctl(c, TASKFS_IOC_VM_MAP_COPY,
                    taskfs_vm_map_copy{0, kCanary, kPage, 0x40000, 1, 0});
     },
     -ESRCH},
    {"MapCopyTaskIdMax",
     [](Ctx& c) {
       return Ioctl(c, TASKFS_IOC_VM_MAP_COPY,
                    taskfs_vm_map_copy{kMaxU64, kCanary, kPage, 0x40000, 1, 0});
     },
     -ESRCH},
    // Nothing at or above 2^64 - 1: KERN_NO_SPACE (docs/reference.md §5 table).
    {"RegionAtTheTopOfTheAddressRange",
     [](Ctx& c) {
       return Ioctl(c, TASKFS_IOC_VM_REGION,
                    taskfs_vm_region{kMaxU64, 0, 0, 0, 0, 0});
     },
     -ENOMEM},
};
INSTANTIATE_TEST_SUITE_P(Ioctls, HostileTest, ::testing::ValuesIn(kIoctlRows),
                         RowName);

// --- address + size wrapping past 2^64 (docs/reference.md §2: EFAULT)
// ----------------------

const Row kWrapRows[] = {
    {"CopySourceWraps",
     [](Ctx& c) {
       return Ioctl(c, TASKFS_IOC_VM_COPY,
                    taskfs_vm_copy{kWrapStart, 2 * kPage, kScratch});
     },
     -EFAULT},
    {"CopyDestinationWraps",
     [](Ctx& c) {
       return Ioctl(c, TASKFS_IOC_VM_COPY,
                    taskfs_vm_copy{kCanary, 2 * kPage, kWrapStart});
     },
     -EFAULT},
    {"CopySizeWraps",
     [](Ctx& c) {
       return Ioctl(c, TASKFS_IOC_VM_COPY,
                    taskfs_vm_copy{kCanary, kWrapStart, kScratch});
     },
     -EFAULT},
    // Unaligned as well as wrapping: the argument check comes first.
    {"CopyUnalignedAndWrappingIsEinval",
     [](Ctx& c) {
       return Ioctl(c, TASKFS_IOC_VM_COPY,
                    taskfs_vm_copy{kWrapStart + 1, 2 * kPage, kScratch});
     },
     -EINVAL},
    {"CopyOfTwoPow63Bytes",
     [](Ctx& c) {
       return Ioctl(c, TASKFS_IOC_VM_COPY,
                    taskfs_vm_copy{0, std::uint64_t{1} << 63, 0});
     },
     -EFAULT},
    {"AllocateFixedWraps",
     [](Ctx& c) {
       return Ioctl(c, TASKFS_IOC_VM_ALLOCATE,
                    taskfs_vm_allocate{kWrapStart, 2 * kPage, 0, 0});
     },
     -EFAULT},
    // Rounding the size up to a page would wrap.
    {"AllocateFixedOfTwoPow64MinusOneBytes",
     [](Ctx& c) {
       return Ioctl(c, TASKFS_IOC_VM_ALLOCATE,
                    taskfs_vm_allocate{0x40000, kMaxU64, 0, 0});
     },
     -EFAULT},
    {"AllocateAnywhereOfTwoPow64MinusOneBytes",
     [](Ctx& c) {
       return Ioctl(c, TASKFS_IOC_VM_ALLOCATE,
                    taskfs_vm_allocate{0, kMaxU64, 1, 0});
     },
     -ENOMEM},
    {"AllocateAnywhereLargerThanTheSpace",
     [](Ctx& c) {
       return Ioctl(
           c, TASKFS_IOC_VM_ALLOCATE,
           taskfs_vm_allocate{0, (std::uint64_t{1} << 32) + kPage, 1, 0});
     },
     -ENOMEM},
    // A deallocation from the canary that wraps must not free anything.
    {"DeallocateFromTheCanaryWraps",
     [](Ctx& c) {
       return Ioctl(c, TASKFS_IOC_VM_DEALLOCATE,
                    taskfs_vm_deallocate{kCanary, kMaxU64});
     },
     -EFAULT},
    {"DeallocateWraps",
     [](Ctx& c) {
       return Ioctl(c, TASKFS_IOC_VM_DEALLOCATE,
                    taskfs_vm_deallocate{kWrapStart, 2 * kPage});
     },
     -EFAULT},
    {"ProtectWraps",
     [](Ctx& c) {
       return Ioctl(c, TASKFS_IOC_VM_PROTECT,
                    taskfs_vm_protect{kCanary, kWrapStart, 0, 1});
     },
     -EFAULT},
    {"InheritWraps",
     [](Ctx& c) {
       return Ioctl(c, TASKFS_IOC_VM_INHERIT,
                    taskfs_vm_inherit{kWrapStart, 2 * kPage, 2, 0});
     },
     -EFAULT},
    {"MapCopySourceWraps",
     [](Ctx& c) {
       return Ioctl(
           c, TASKFS_IOC_VM_MAP_COPY,
           taskfs_vm_map_copy{c.id, kWrapStart, 2 * kPage, 0x40000, 1, 0});
     },
     -EFAULT},
    // With src_destroy: the source (the canary) must survive the refusal.
    {"MapCopyDestinationWrapsWithDestroy",
     [](Ctx& c) {
       return Ioctl(
           c, TASKFS_IOC_VM_MAP_COPY,
           taskfs_vm_map_copy{c.id, kCanary, 2 * kPage, kWrapStart, 3, 0});
     },
     -EFAULT},
    {"CtlDeallocateFromTheCanaryWraps",
     [](Ctx& c) {
       return CtlWrite(c, "deallocate 0x10000 0xffffffffffffffff\n");
     },
     -EFAULT},
    {"CtlProtectWraps",
     [](Ctx& c) { return CtlWrite(c, "protect 0xfffffffffffff000 8K r--\n"); },
     -EFAULT},
    {"CtlInheritWraps",
     [](Ctx& c) {
       return CtlWrite(c, "inherit 0x10000 0xfffffffffffff000 none\n");
     },
     -EFAULT},
    {"CtlCopyWraps",
     [](Ctx& c) { return CtlWrite(c, "copy 0xfffffffffffff000 8K 0x20000\n"); },
     -EFAULT},
    {"CtlCopyFromItselfWrapsWithDestroy",
     [](Ctx& c) {
       return CtlWrite(c,
                       "copy-from t 0x10000 8K 0xfffffffffffff000 alloc "
                       "destroy\n");
     },
     -EFAULT},
    {"CtlAllocateAtTwoPow64MinusOne",
     [](Ctx& c) { return CtlWrite(c, "allocate 0xffffffffffffffff 4K\n"); },
     -EFAULT},
    {"CtlAllocateTwoPow64MinusOneBytes",
     [](Ctx& c) {
       return CtlWrite(c, "allocate 0x40000 18446744073709551615\n");
     },
     -EFAULT},
    {"CtlAllocateAnywhereTwoPow64MinusOneBytes",
     [](Ctx& c) {
       return CtlWrite(c, "allocate anywhere 0xffffffffffffffff\n");
     },
     -ENOMEM},
};
INSTANTIATE_TEST_SUITE_P(Wrapping, HostileTest, ::testing::ValuesIn(kWrapRows),
                         RowName);

// --- ctl --------------------------------------------------------------------

// Nearly 1 MiB of comment lines ending in `last`, which has no newline: one
// request, but one whose size is near the largest.
std::string NearlyOneMebibyteEndingIn(const std::string& last) {
  const std::size_t total = (1 << 20) - 64;
  std::string text;
  const std::string line = "# " + std::string(60, 'p') + "\n";
  while (text.size() + line.size() + last.size() <= total) text += line;
  text += std::string(total - text.size() - last.size() - 1, '#') + "\n";
  return text + last;
}

// One write(2) from a page-aligned buffer (so a write of up to 1 MiB is one
// request) on an open ctl file: the count written or -errno.
long AlignedWriteCount(int fd, const std::string& text) {
  AlignedBuffer b(text.size());
  std::memcpy(b.data, text.data(), text.size());
  const ssize_t n = ::write(fd, b.data, b.size);
  return n < 0 ? -errno : static_cast<long>(n);
}

// The same: 0 if all of text was written, or -errno.
long AlignedWrite(int fd, const std::string& text) {
  const long n = AlignedWriteCount(fd, text);
  if (n < 0) return n;
  return static_cast<std::size_t>(n) == text.size() ? 0 : kStep3;
}

constexpr char kRegion40000[] =
    "0000000000040000-0000000000041000 rw-/rwx copy\n";
constexpr char kRegion50000[] =
    "0000000000050000-0000000000051000 rw-/rwx copy\n";

const Row kCtlRows[] = {
    {"TwoMebibytesOfRandomBytes",
     [](Ctx& c) {
       std::mt19937 random(7);
       std::string garbage(2 << 20, '\0');
       for (char& ch : garbage) ch = static_cast<char>(random() & 0xff);
       return CtlWrite(c, garbage);
     },
     -EINVAL},
    {"OneMebibyteOfNulBytes",
     [](Ctx& c) { return CtlWrite(c, std::string(1 << 20, '\0')); }, -EINVAL},
    // Blank lines and comments are allowed (README): nothing to do.
    {"OneMebibyteOfNewlines",
     [](Ctx& c) { return CtlWrite(c, std::string(1 << 20, '\n')); }, 0},
    {"OneMebibyteOfComments",
     [](Ctx& c) {
       std::string text;
       while (text.size() < (1 << 20)) text += "# allocate 0x40000 4K\n";
       return CtlWrite(c, text);
     },
     0},
    {"DelByte", [](Ctx& c) { return CtlWrite(c, "allocate 0x40000 4K\x7f\n"); },
     -EINVAL},
    {"HighByte",
     [](Ctx& c) { return CtlWrite(c, "allocate 0x40000 4K\xff\n"); }, -EINVAL},
    {"TerminalEscapeSequence",
     [](Ctx& c) { return CtlWrite(c, "\x1b[2Jallocate 0x40000 4K\n"); },
     -EINVAL},
    {"Backspaces",
     [](Ctx& c) { return CtlWrite(c, "allocate 0x40000 4K\b\b8K\n"); },
     -EINVAL},
    {"VerticalTabAsSeparator",
     [](Ctx& c) { return CtlWrite(c, "allocate\v0x40000 4K\n"); }, -EINVAL},
    // CR before LF is taken as white space (spec silent; the code's
    // choice, so that files written on Windows work). Step 1: not run.
    {"CrLfLineEnding",
     [](Ctx& c) {
       const long r = CtlWrite(c, "allocate 0x40000 4K\r\n");
       if (!c.HasRegion(kRegion40000)) return kStep1;
       Ctl(c, "deallocate 0x40000 4K\n");
       return r;
     },
     0},
    {"ThousandDigitNumber",
     [](Ctx& c) {
       return CtlWrite(c, "allocate " + std::string(1000, '9') + " 4K\n");
     },
     -EINVAL},
    // Sizes take K, M, G and T everywhere: ctl, manifests and -o options
    // share one number grammar (README). 1T parses, and lies past this
    // mount's 4 GiB space: a bounds failure, not a malformed command.
    {"TeraSuffix", [](Ctx& c) { return CtlWrite(c, "allocate 0x40000 1T\n"); },
     -EFAULT},
    // Long only because of leading zeros: the value fits 64 bits, so it is
    // a number like any other (spec silent). Step 1: not run.
    {"LeadingZerosMakeNoNumberTooLong",
     [](Ctx& c) {
       const long r =
           CtlWrite(c, "allocate 0x" + std::string(40, '0') + "40000 " +
                           std::string(40, '0') + "4096\n");
       if (!c.HasRegion(kRegion40000)) return kStep1;
       Ctl(c, "deallocate 0x40000 4K\n");
       return r;
     },
     0},
    {"NegativeZero", [](Ctx& c) { return CtlWrite(c, "allocate -0 4K\n"); },
     -EINVAL},
    {"NegativeSizeWithSuffix",
     [](Ctx& c) { return CtlWrite(c, "allocate 0x40000 -4K\n"); }, -EINVAL},
    {"NegativeDestination",
     [](Ctx& c) { return CtlWrite(c, "copy 0x10000 4K -0x20000\n"); }, -EINVAL},
    {"UnknownCommandOfFourThousandLetters",
     [](Ctx& c) { return CtlWrite(c, std::string(4000, 'z') + " 0 4K\n"); },
     -EINVAL},
    // A valid command padded past 4 KiB of white space: the line is too
    // long (spec silent; the code caps a line at 4096 bytes).
    {"CommandPaddedPastFourKibibytes",
     [](Ctx& c) {
       return CtlWrite(c, "allocate" + std::string(5000, ' ') + "0x40000 4K\n");
     },
     -EINVAL},
    // A write without a newline is one command and runs at once (README):
    // it fails the write.
    {"FailingLastLineWithoutNewline",
     [](Ctx& c) { return CtlWrite(c, "allocate 0x10000 4K"); }, -ENOMEM},
    // After a newline, a cut last line waits for close(2), which runs it
    // and fails with its errno. Step 1: the first line did not stay done.
    {"MalformedLastLineWithoutNewline",
     [](Ctx& c) {
       const long r = CtlWrite(c, "allocate 0x40000 4K\nallocate 0x50000");
       if (!c.HasRegion(kRegion40000)) return kStep1;
       Ctl(c, "deallocate 0x40000 4K\n");
       return r;
     },
     -EINVAL},
    // One write(2) of nearly 1 MiB in one request whose last line has no
    // newline: like any write that holds a newline and ends inside a line
    // (README), it keeps that line for the next write or for close(2).
    // Step 1: the write was short; step 2: the cut line ran before close;
    // step 3: it had not run after close.
    {"NearlyOneMebibyteWriteKeepsItsCutLineUntilClose",
     [](Ctx& c) {
       const int fd = ::open(c.Path("t/ctl").c_str(), O_RDWR);
       if (fd < 0) return -static_cast<long>(errno);
       const std::string text =
           NearlyOneMebibyteEndingIn("allocate 0x40000 4K");
       long r = AlignedWriteCount(fd, text);
       if (r >= 0) r = r == static_cast<long>(text.size()) ? 0 : kStep1;
       if (r == 0 && c.HasRegion(kRegion40000)) r = kStep2;
       if (::close(fd) != 0 && r == 0) r = -errno;
       if (r == 0 && !c.HasRegion(kRegion40000)) r = kStep3;
       WriteFile(c.Path("t/ctl"), "deallocate 0x40000 4K\n");
       return r;
     },
     0},
    // Its failing cut line fails close(2) with its errno.
    {"NearlyOneMebibyteWritesFailingCutLineFailsClose",
     [](Ctx& c) {
       const int fd = ::open(c.Path("t/ctl").c_str(), O_RDWR);
       if (fd < 0) return -static_cast<long>(errno);
       const long r =
           AlignedWrite(fd, NearlyOneMebibyteEndingIn("allocate 0x10000 4K"));
       if (::close(fd) != 0) return r == 0 ? -static_cast<long>(errno) : r;
       return r;
     },
     -ENOMEM},
    // The next write on the same open file continues the cut line, as a
    // stream would: "allocate 0x40000 4Kallocate 0x50000 4K" is one line,
    // which fails that write. Step 1: either command ran.
    {"WriteAfterANearlyOneMebibyteWriteContinuesItsCutLine",
     [](Ctx& c) {
       const int fd = ::open(c.Path("t/ctl").c_str(), O_RDWR);
       if (fd < 0) return -static_cast<long>(errno);
       long r =
           AlignedWrite(fd, NearlyOneMebibyteEndingIn("allocate 0x40000 4K"));
       if (r == 0) r = AlignedWrite(fd, "allocate 0x50000 4K\n");
       if (c.HasRegion(kRegion40000) || c.HasRegion(kRegion50000)) r = kStep1;
       if (::close(fd) != 0 && r == 0) r = -errno;
       WriteFile(c.Path("t/ctl"), "deallocate 0x40000 0x20000\n");
       return r;
     },
     -EINVAL},
    // ctl ignores the file offset (README). Step 1: not run.
    {"PwriteAtOffsetTwoPow62",
     [](Ctx& c) {
       const int fd = ::open(c.Path("t/ctl").c_str(), O_RDWR);
       if (fd < 0) return -static_cast<long>(errno);
       const std::string cmd = "allocate 0x40000 4K\n";
       long r = Ret(::pwrite(fd, cmd.data(), cmd.size(), off_t{1} << 62));
       ::close(fd);
       if (r >= 0 && !c.HasRegion(kRegion40000)) return kStep1;
       WriteFile(c.Path("t/ctl"), "deallocate 0x40000 4K\n");
       return r;
     },
     20},
    // offset + size past 2^63: the kernel refuses before the daemon runs it.
    {"PwriteEndingPastTwoPow63",
     [](Ctx& c) {
       const int fd = ::open(c.Path("t/ctl").c_str(), O_RDWR);
       if (fd < 0) return -static_cast<long>(errno);
       const std::string cmd = "allocate 0x40000 4K\n";
       const long r = Ret(::pwrite(fd, cmd.data(), cmd.size(), kInt64Max - 5));
       ::close(fd);
       return r;
     },
     -EINVAL},
    // maps, status, errors and host_page_size take no writes: an open for
    // writing is EACCES, for root (these tests' user) too, whom the modes
    // would let past (docs/reference.md §4).
    {"WriteToMaps", [](Ctx& c) { return OpenFor(c, "t/maps", O_WRONLY); },
     -EACCES},
    {"ReadWriteOpenOfStatus",
     [](Ctx& c) { return OpenFor(c, "t/status", O_RDWR); }, -EACCES},
    {"WriteToErrors", [](Ctx& c) { return OpenFor(c, "t/errors", O_WRONLY); },
     -EACCES},
    {"WriteToHostPageSize",
     [](Ctx& c) { return OpenFor(c, "host_page_size", O_WRONLY | O_TRUNC); },
     -EACCES},
    // Opening them for reading still works.
    {"ReadOpenOfErrors",
     [](Ctx& c) { return OpenFor(c, "t/errors", O_RDONLY); }, 0},
};
INSTANTIATE_TEST_SUITE_P(Ctl, HostileTest, ::testing::ValuesIn(kCtlRows),
                         RowName);

// --- task names -------------------------------------------------------------

long MkDirAt(const Ctx& c, const std::string& name) {
  return Ret(::mkdir(c.Path(name).c_str(), 0700));
}

const Row kNameRows[] = {
    // fork takes a name from a ctl line, where '/' and ".." can appear;
    // docs/reference.md §4's name rule makes each EINVAL.
    {"ForkNameWithSlash", [](Ctx& c) { return CtlWrite(c, "fork a/b\n"); },
     -EINVAL},
    {"ForkNameDotDot", [](Ctx& c) { return CtlWrite(c, "fork ..\n"); },
     -EINVAL},
    {"ForkNameDot", [](Ctx& c) { return CtlWrite(c, "fork .\n"); }, -EINVAL},
    {"ForkNameEscapingTheMount",
     [](Ctx& c) { return CtlWrite(c, "fork ../../tmp/x\n"); }, -EINVAL},
    {"ForkName255Bytes",
     [](Ctx& c) { return CtlWrite(c, "fork " + std::string(255, 'n') + "\n"); },
     -EINVAL},
    {"ForkName256Bytes",
     [](Ctx& c) { return CtlWrite(c, "fork " + std::string(256, 'n') + "\n"); },
     -EINVAL},
    {"ForkNameWithDel", [](Ctx& c) { return CtlWrite(c, "fork a\x7f\n"); },
     -EINVAL},
    // copy-from names a task that cannot exist: ESRCH (docs/reference.md §2 "a
    // named
    // task does not exist"), whatever the name looks like.
    {"CopyFromNameWithSlash",
     [](Ctx& c) {
       return CtlWrite(c, "copy-from t/ 0x10000 4K 0x40000 alloc\n");
     },
     -ESRCH},
    {"CopyFromNameDotDot",
     [](Ctx& c) {
       return CtlWrite(c, "copy-from .. 0x10000 4K 0x40000 alloc\n");
     },
     -ESRCH},
    {"CopyFromHostPageSize",
     [](Ctx& c) {
       return CtlWrite(c,
                       "copy-from host_page_size 0x10000 4K 0x40000 alloc\n");
     },
     -ESRCH},
    {"CopyFromName255Bytes",
     [](Ctx& c) {
       return CtlWrite(c, "copy-from " + std::string(255, 'n') +
                              " 0x10000 4K 0x40000 alloc\n");
     },
     -ESRCH},
    {"MkdirNameWithNewline", [](Ctx& c) { return MkDirAt(c, "a\nb"); },
     -EINVAL},
    {"MkdirNameWithDel", [](Ctx& c) { return MkDirAt(c, "a\x7f"); }, -EINVAL},
    {"MkdirNameWithEscape", [](Ctx& c) { return MkDirAt(c, "\x1b[31m"); },
     -EINVAL},
    // "." and ".." exist: the kernel answers EEXIST before asking.
    {"MkdirDot", [](Ctx& c) { return MkDirAt(c, "."); }, -EEXIST},
    {"MkdirDotDot", [](Ctx& c) { return MkDirAt(c, ".."); }, -EEXIST},
    // A '/' in mkdir's path is a path walk through a task that is not there.
    {"MkdirThroughAMissingTask", [](Ctx& c) { return MkDirAt(c, "a/b"); },
     -ENOENT},
    {"RmdirName256Bytes",
     [](Ctx& c) { return Ret(::rmdir(c.Path(std::string(256, 'n')).c_str())); },
     -ENOENT},
};
INSTANTIATE_TEST_SUITE_P(Names, HostileTest, ::testing::ValuesIn(kNameRows),
                         RowName);

// --- manifests --------------------------------------------------------------

// A manifest case: the file to give the daemon, and the line its error must
// name (0: an error about the whole file, "taskfs: PATH: ..."), or -1 when
// the daemon must mount.
struct ManifestCase {
  std::string path;
  int line;
};

struct ManifestRow {
  const char* name;
  std::function<ManifestCase(const TempDir&)> make;
  std::function<void(const Mount&)> check = {};  // for one that mounts
};

void PrintTo(const ManifestRow& row, std::ostream* os) { *os << row.name; }

std::string ManifestRowName(const ::testing::TestParamInfo<ManifestRow>& info) {
  return info.param.name;
}

constexpr char kOneRegion[] = "task a\nallocate 0x10000 4K\n";

ManifestCase Text(const TempDir& dir, const std::string& text, int line) {
  return {dir.Write("m.tasks", text), line};
}

const ManifestRow kManifestRows[] = {
    {"TaskNameWithSlash",
     [](const TempDir& d) { return Text(d, "task a/b\n", 1); }},
    {"TaskNameDotDot",
     [](const TempDir& d) { return Text(d, "task ..\n", 1); }},
    {"TaskNameWithControlCharacter",
     [](const TempDir& d) { return Text(d, "task ok\ntask a\x01x\n", 2); }},
    {"TaskName255Bytes",
     [](const TempDir& d) {
       return Text(d, "task " + std::string(255, 'n') + "\n", 1);
     }},
    {"TaskName256Bytes",
     [](const TempDir& d) {
       return Text(d, "task " + std::string(256, 'n') + "\n", 1);
     }},
    // 8 MiB of bytes above 0x7f and no newline: line 1.
    {"EightMebibytesOfHighBytes",
     [](const TempDir& d) {
       std::string text(8 << 20, '\0');
       std::mt19937 random(3);
       for (char& ch : text) ch = static_cast<char>(0x80 | (random() & 0x7f));
       return Text(d, text, 1);
     }},
    // 200,000 comment lines, then garbage: lines are counted right.
    {"GarbageAfterTwoHundredThousandLines",
     [](const TempDir& d) {
       std::string text;
       for (int i = 0; i < 200000; ++i) text += "# a comment line\n";
       return Text(d, text + "\xff\xfe\n", 200001);
     }},
    // load of what is no regular file must end the daemon, not block or
    // read forever.
    {"LoadOfDevZero",
     [](const TempDir& d) {
       return Text(d, std::string(kOneRegion) + "load 0x10000 /dev/zero\n", 3);
     }},
    {"LoadOfAFifo",
     [](const TempDir& d) {
       ::mkfifo((d / "fifo").c_str(), 0600);
       return Text(d, std::string(kOneRegion) + "load 0x10000 fifo\n", 3);
     }},
    {"LoadOfAMissingAbsolutePath",
     [](const TempDir& d) {
       return Text(
           d,
           std::string(kOneRegion) + "load 0x10000 /nonexistent/taskfs/x.bin\n",
           3);
     }},
    {"LoadOfASymlinkToADirectory",
     [](const TempDir& d) {
       d.MakeDir("sub");
       ::symlink("sub", (d / "link").c_str());
       return Text(d, std::string(kOneRegion) + "load 0x10000 link\n", 3);
     }},
    {"LoadOfDotDot",
     [](const TempDir& d) {
       return Text(d, std::string(kOneRegion) + "load 0x10000 ..\n", 3);
     }},
    {"LoadWithoutAFile",
     [](const TempDir& d) {
       return Text(d, std::string(kOneRegion) + "load 0x10000\n", 3);
     }},
    // The manifest itself is no regular file: an error about the file.
    {"ManifestIsADirectory",
     [](const TempDir& d) {
       return ManifestCase{d.MakeDir("dir.tasks"), 0};
     }},
    {"ManifestIsAFifo",
     [](const TempDir& d) {
       ::mkfifo((d / "fifo.tasks").c_str(), 0600);
       return ManifestCase{d / "fifo.tasks", 0};
     }},
    {"ManifestIsDevZero",
     [](const TempDir&) {
       return ManifestCase{"/dev/zero", 0};
     }},
    // Huge but valid: a 16 MiB comment line and 100,000 blank lines.
    {"HugeValidManifestMounts",
     [](const TempDir& d) {
       return Text(d,
                   "#" + std::string(16 << 20, 'c') + "\n" +
                       std::string(100000, '\n') + kOneRegion +
                       "fill 0x10000 4K 0x5a\n",
                   -1);
     },
     [](const Mount& m) {
       EXPECT_EQ(ReadFile(m / "a/maps"),
                 "0000000000010000-0000000000011000 rw-/rwx copy\n");
       std::string data;
       ASSERT_EQ(ReadMem(m / "a/mem", 0x10000, kPage, &data), 0);
       EXPECT_EQ(data, std::string(kPage, '\x5a'));
     }},
    // load of an empty file loads nothing (spec silent; sensible).
    {"LoadOfAnEmptyFileMounts",
     [](const TempDir& d) {
       d.Write("empty.bin", "");
       return Text(d, std::string(kOneRegion) + "load 0x10000 empty.bin\n", -1);
     },
     [](const Mount& m) {
       std::string data;
       ASSERT_EQ(ReadMem(m / "a/mem", 0x10000, kPage, &data), 0);
       EXPECT_EQ(data, std::string(kPage, '\0'));
     }},
};

class HostileManifestTest : public ::testing::TestWithParam<ManifestRow> {};

TEST_P(HostileManifestTest, Row) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const ManifestCase m = GetParam().make(dir);
  const auto start = Clock::now();
  if (m.line < 0) {
    Mount mount({"-o", "tasks=" + m.path});
    ASSERT_TRUE(mount.ok()) << mount.error();
    if (GetParam().check) GetParam().check(mount);
    EXPECT_TRUE(DaemonAlive(mount));
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(20));
    return;
  }
  const std::string mountpoint = dir.MakeDir("mnt");
  const RunResult r =
      RunCommand({DaemonPath(), "-f", "-o", "tasks=" + m.path, mountpoint},
                 std::chrono::seconds(20));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_FALSE(IsMountpoint(mountpoint));
  EXPECT_EQ(r.out, "");
  const std::string prefix =
      "taskfs: " + m.path +
      (m.line > 0 ? ":" + std::to_string(m.line) + ": " : std::string(": "));
  EXPECT_EQ(r.err.rfind(prefix, 0), 0u) << r.err.substr(0, 300);
  EXPECT_GT(r.err.size(), prefix.size() + 1) << r.err.substr(0, 300);
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "not one line";
  EXPECT_LT(r.err.size(), 1000u) << "the message quotes too much";
}

INSTANTIATE_TEST_SUITE_P(Manifests, HostileManifestTest,
                         ::testing::ValuesIn(kManifestRows), ManifestRowName);

// --- scale ------------------------------------------------------------------

std::string TaskName(int i) {
  char name[16];
  std::snprintf(name, sizeof name, "t%05d", i);
  return name;
}

// 10,000 tasks by mkdir, the cap (max_tasks) holding at 10,000 for mkdir and
// for fork, the listing complete and in order, and every task usable.
TEST(HostileScaleTest, TenThousandTasks) {
  constexpr int kTasks = 10000;
  Mount mount({"-o", "tasks=none,max_tasks=10000"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  const auto start = Clock::now();
  for (int i = 0; i < kTasks; ++i) {
    ASSERT_EQ(Err(::mkdir((mount / TaskName(i)).c_str(), 0700)), 0) << i;
  }
  EXPECT_EQ(Err(::mkdir((mount / "one-more").c_str(), 0700)), ENOSPC);
  EXPECT_EQ(WriteFile(mount / "t00000/ctl", "fork one-more\n"), ENOSPC);
  const std::vector<std::string> names = ListDir(mount.path());
  ASSERT_EQ(names.size(), kTasks + 1u);
  EXPECT_EQ(names[0], "host_page_size");
  for (int i = 0; i < kTasks; ++i) {
    ASSERT_EQ(names[i + 1], TaskName(i));
  }
  for (int i : {0, 4999, kTasks - 1}) {
    const std::string t = mount / TaskName(i);
    EXPECT_EQ(StatusValue(ReadFile(t + "/status"), "id"),
              std::to_string(i + 1));
    ASSERT_EQ(WriteFile(t + "/ctl", "allocate 0x10000 4K\n"), 0);
    ASSERT_EQ(WriteMem(t + "/mem", 0x10000, Pattern(kPage, i)), 0);
    std::string data;
    ASSERT_EQ(ReadMem(t + "/mem", 0x10000, kPage, &data), 0);
    EXPECT_TRUE(data == Pattern(kPage, i)) << i;
  }
  // Removing one makes room for exactly one.
  ASSERT_EQ(Err(::rmdir((mount / TaskName(1234)).c_str())), 0);
  EXPECT_EQ(WriteFile(mount / "t00000/ctl", "fork one-more\n"), 0);
  EXPECT_EQ(Err(::mkdir((mount / "two-more").c_str(), 0700)), ENOSPC);
  EXPECT_TRUE(DaemonAlive(mount));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(60));
}

// The same 10,000 from a manifest, and the 10,001st task line names its line.
TEST(HostileScaleTest, TenThousandTasksFromAManifest) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 10000; ++i) text += "task " + TaskName(i) + "\n";
  const std::string good = dir.Write("good.tasks", text);
  const std::string bad = dir.Write("bad.tasks", text + "task one-more\n");
  const auto start = Clock::now();
  {
    Mount mount({"-o", "tasks=" + good + ",max_tasks=10000"});
    ASSERT_TRUE(mount.ok()) << mount.error();
    EXPECT_EQ(ListDir(mount.path()).size(), 10001u);
    EXPECT_EQ(StatusValue(ReadFile(mount / "t09999/status"), "id"), "10000");
  }
  const std::string mountpoint = dir.MakeDir("mnt");
  const RunResult r =
      RunCommand({DaemonPath(), "-f", "-o", "tasks=" + bad + ",max_tasks=10000",
                  mountpoint},
                 std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_FALSE(IsMountpoint(mountpoint));
  EXPECT_EQ(r.err.rfind("taskfs: " + bad + ":10001: ", 0), 0u) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(60));
}

// 100,000 regions in one task from one ctl write (several requests), then
// maps, status, vm_region, SEEK_DATA, I/O at the last region, a refused
// operation over all of them that must change nothing, and one deallocate
// that frees them all.
TEST(HostileScaleTest, HundredThousandRegions) {
  constexpr std::uint64_t kRegions = 100000;
  Mount mount({"-o", "tasks=none,address_bits=40"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  ASSERT_EQ(Err(::mkdir((mount / "t").c_str(), 0700)), 0);
  const auto start = Clock::now();
  std::string script;
  char line[64];
  for (std::uint64_t i = 0; i < kRegions; ++i) {
    std::snprintf(line, sizeof line, "allocate 0x%llx 4K\n",
                  static_cast<unsigned long long>(0x100000 + 2 * i * kPage));
    script += line;
  }
  ASSERT_EQ(WriteFile(mount / "t/ctl", script), 0);
  const std::uint64_t last = 0x100000 + 2 * (kRegions - 1) * kPage;
  EXPECT_EQ(StatusValue(ReadFile(mount / "t/status"), "regions"), "100000");
  EXPECT_EQ(StatusValue(ReadFile(mount / "t/status"), "virtual_bytes"),
            std::to_string(kRegions * kPage));
  const std::string maps = ReadFile(mount / "t/maps");
  ASSERT_EQ(maps.size(), kRegions * 47);
  EXPECT_EQ(maps.substr(0, 47),
            "0000000000100000-0000000000101000 rw-/rwx copy\n");
  std::snprintf(line, sizeof line, "%016llx-%016llx rw-/rwx copy\n",
                static_cast<unsigned long long>(last),
                static_cast<unsigned long long>(last + kPage));
  EXPECT_EQ(maps.substr(maps.size() - 47), line);

  const int fd = ::open((mount / "t/mem").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  taskfs_vm_region r{last - kPage, 0, 0, 0, 0, 0};
  ASSERT_EQ(::ioctl(fd, TASKFS_IOC_VM_REGION, &r), 0) << std::strerror(errno);
  EXPECT_EQ(r.address, last);
  EXPECT_EQ(r.size, kPage);
  EXPECT_EQ(::lseek(fd, static_cast<off_t>(last + kPage), SEEK_DATA), -1);
  EXPECT_EQ(errno, ENXIO);
  EXPECT_EQ(::lseek(fd, static_cast<off_t>(last - kPage), SEEK_DATA),
            static_cast<off_t>(last));
  const std::string page = Pattern(kPage, 5);
  ASSERT_EQ(WriteMem(mount / "t/mem", last, page), 0);
  std::string data;
  ASSERT_EQ(ReadMem(mount / "t/mem", last, kPage, &data), 0);
  EXPECT_TRUE(data == page);

  // protect over all of them runs into the holes between: EFAULT, and not
  // one region changed (all or nothing).
  std::snprintf(line, sizeof line, "protect 0x100000 0x%llx r--\n",
                static_cast<unsigned long long>(last + kPage - 0x100000));
  EXPECT_EQ(WriteFile(mount / "t/ctl", line), EFAULT);
  EXPECT_EQ(ReadFile(mount / "t/maps"), maps);
  // A copy over all of them: source holes, EFAULT.
  std::snprintf(line, sizeof line, "copy 0x100000 0x%llx 0x8000000000\n",
                static_cast<unsigned long long>(last + kPage - 0x100000));
  EXPECT_EQ(WriteFile(mount / "t/ctl", line), EFAULT);
  // fork copies every region.
  ASSERT_EQ(WriteFile(mount / "t/ctl", "fork kid\n"), 0);
  EXPECT_EQ(StatusValue(ReadFile(mount / "kid/status"), "regions"), "100000");
  ASSERT_EQ(ReadMem(mount / "kid/mem", last, kPage, &data), 0);
  EXPECT_TRUE(data == page);
  // One deallocate frees them all.
  ASSERT_EQ(WriteFile(mount / "t/ctl", "deallocate 0 0x10000000000\n"), 0);
  EXPECT_EQ(StatusValue(ReadFile(mount / "t/status"), "regions"), "0");
  EXPECT_EQ(ReadFile(mount / "t/maps"), "");
  EXPECT_EQ(StatusValue(ReadFile(mount / "kid/status"), "regions"), "100000");
  ::close(fd);
  EXPECT_TRUE(DaemonAlive(mount));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(60));
}

}  // namespace
}  // namespace taskfs::testing
