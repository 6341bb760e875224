// Every path that reads, writes or copies a task's memory through a real
// mount (pread, pwrite, preadv, pwritev, TASKFS_IOC_VM_COPY, ctl `copy`),
// in both flavors, against the reference model of tests/vmcore (extended
// to byte ranges for the XNU flavor): seeded random calls on one task
// whose map ctl changes as they go (allocate, deallocate, protect), each
// compared for its errno and, for reads, its bytes. TASKFS_SEED replays a
// run.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "taskfs/errno_table.h"
#include "taskfs/ioctl.h"
#include "tests/integration/mount_fixture.h"
#include "tests/vmcore/reference_model.h"

namespace taskfs::testing {
namespace {

using vm::KernReturn;
using vm::reference::Bytes;
using vm::reference::Hex;
using vm::reference::Model;

constexpr std::uint64_t kPage = 4096;
constexpr unsigned kAddressBits = 24;
// The calls land in the first kWindow pages, address 0 included, so that
// they meet holes, region edges and each other's bytes often.
constexpr std::uint64_t kWindow = 48;
constexpr int kCalls = 2500;

int ErrnoOf(KernReturn kr) {
  switch (kr) {
#define TASKFS_CASE(name, value) \
  case vm::name:                 \
    return value;
    TASKFS_ERRNO_TABLE(TASKFS_CASE)
#undef TASKFS_CASE
  }
  return -1;
}

std::uint64_t RunSeed() {
  if (const char* env = std::getenv("TASKFS_SEED")) {
    return std::strtoull(env, nullptr, 0);
  }
  return static_cast<std::uint64_t>(
      std::chrono::steady_clock::now().time_since_epoch().count());
}

class FlavorModelRun {
 public:
  FlavorModelRun(vm::Flavor flavor, std::uint64_t seed)
      : flavor_(flavor),
        random_(seed),
        mount_(
            {"-o", "tasks=none,address_bits=" + std::to_string(kAddressBits) +
                       ",memory_limit=64M,flavor=" + vm::FlavorName(flavor)}),
        model_(Config(flavor), 0) {}

  ~FlavorModelRun() {
    if (fd_ >= 0) ::close(fd_);
  }

  void Run() {
    ASSERT_TRUE(mount_.ok()) << mount_.error();
    ASSERT_EQ(::mkdir((mount_ / "t").c_str(), 0700), 0) << std::strerror(errno);
    ASSERT_EQ(model_.Create("t"), vm::KERN_SUCCESS);
    fd_ = ::open((mount_ / "t/mem").c_str(), O_RDWR);
    ASSERT_GE(fd_, 0) << std::strerror(errno);
    // The window starts allocated; deallocate makes holes, allocate fills.
    vm::vm_address_t zero = 0;
    ASSERT_EQ(model_.Allocate(0, &zero, kWindow * kPage, false),
              vm::KERN_SUCCESS);
    ASSERT_EQ(WriteFile(mount_ / "t/ctl",
                        "allocate 0 " + Hex(kWindow * kPage) + "\n"),
              0);
    for (call_ = 0; call_ < kCalls && !diverged_; ++call_) OneCall();
    // What the calls met: a run whose calls all failed would prove little.
    std::string outcomes;
    for (const auto& [what, count] : outcomes_) {
      outcomes += " " + what + "=" + std::to_string(count);
    }
    std::printf("[ flavor model ] %d calls:%s\n", call_, outcomes.c_str());
    EXPECT_GE(outcomes_["ok"], kCalls / 5) << outcomes;
    EXPECT_GE(read_bytes_, 100u * kPage) << "bytes read and compared";
  }

 private:
  static vm::VmConfig Config(vm::Flavor flavor) {
    vm::VmConfig config;
    config.page_size = kPage;
    config.address_bits = kAddressBits;
    config.flavor = flavor;
    return config;
  }

  std::uint64_t Below(std::uint64_t n) {
    return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(random_);
  }

  // An address in the window: on a page boundary in the classic flavor
  // mostly (else nearly every call would fail its alignment check), any
  // byte in the XNU flavor mostly.
  std::uint64_t Address() {
    const std::uint64_t page = Below(kWindow) * kPage;
    const bool odd =
        flavor_ == vm::Flavor::kXnu ? Below(4) != 0 : Below(8) == 0;
    return odd ? page + Below(kPage) : page;
  }
  // A size of at most four pages, at least one byte (a zero-size pread
  // never reaches the daemon).
  std::uint64_t Size() {
    const std::uint64_t pages = 1 + Below(4);
    const bool odd =
        flavor_ == vm::Flavor::kXnu ? Below(4) != 0 : Below(8) == 0;
    return odd ? 1 + Below(pages * kPage) : pages * kPage;
  }

  void OneCall() {
    const std::uint64_t pick = Below(24);
    if (pick < 3) return Allocate();
    if (pick < 4) return Deallocate();
    if (pick < 6) return Protect();
    if (pick < 11) return Read(/*vector=*/false);
    if (pick < 13) return Read(/*vector=*/true);
    if (pick < 17) return Write(/*vector=*/false);
    if (pick < 19) return Write(/*vector=*/true);
    if (pick < 21) return Copy(/*by_ioctl=*/true);
    return Copy(/*by_ioctl=*/false);
  }

  // ctl: the errno of the write, against the model's result.
  void Ctl(const std::string& line, KernReturn model) {
    const int got = WriteFile(mount_ / "t/ctl", line + "\n");
    Compare("ctl " + line, got, model);
  }

  void Allocate() {
    const std::uint64_t address = Below(kWindow) * kPage;
    const std::uint64_t size = (1 + Below(2)) * kPage;
    vm::vm_address_t where = address;
    const KernReturn model = model_.Allocate(0, &where, size, false);
    Ctl("allocate " + Hex(address) + " " + Hex(size), model);
  }

  void Deallocate() {
    const std::uint64_t address = Below(kWindow) * kPage;
    const std::uint64_t size = (1 + Below(4)) * kPage;
    Ctl("deallocate " + Hex(address) + " " + Hex(size),
        model_.Deallocate(0, address, size));
  }

  void Protect() {
    static constexpr const char* kNames[] = {"---", "r--", "rw-", "r-x", "rwx"};
    static constexpr vm::vm_prot_t kProts[] = {
        vm::VM_PROT_NONE, vm::VM_PROT_READ,
        vm::VM_PROT_READ | vm::VM_PROT_WRITE,
        vm::VM_PROT_READ | vm::VM_PROT_EXECUTE, vm::VM_PROT_ALL};
    const std::uint64_t which = Below(5);
    const std::uint64_t address = Below(kWindow) * kPage;
    const std::uint64_t size = (1 + Below(3)) * kPage;
    const bool set_maximum = Below(20) == 0;
    Ctl("protect " + Hex(address) + " " + Hex(size) +
            (set_maximum ? " max " : " ") + kNames[which],
        model_.Protect(0, address, size, set_maximum, kProts[which]));
  }

  void Read(bool vector) {
    const std::uint64_t address = Address();
    const std::uint64_t size = Size();
    Bytes got(size, 0xa5);
    ssize_t n;
    if (vector) {
      const std::uint64_t half = Below(size + 1);
      iovec iov[2] = {{got.data(), half}, {got.data() + half, size - half}};
      n = ::preadv(fd_, iov, 2, static_cast<off_t>(address));
    } else {
      n = ::pread(fd_, got.data(), size, static_cast<off_t>(address));
    }
    const int error = n < 0 ? errno : 0;
    const std::string op = std::string(vector ? "preadv " : "pread ") +
                           Hex(address) + " " + Hex(size);
    Bytes want;
    const KernReturn model = model_.Read(0, address, size, &want);
    if (!Compare(op, error, model) || error != 0) return;
    if (n != static_cast<ssize_t>(size)) {
      return Diverge(op, "read " + std::to_string(n) + " bytes of " +
                             std::to_string(size));
    }
    read_bytes_ += size;
    if (got != want) {
      std::size_t at = 0;
      while (got[at] == want[at]) ++at;
      Diverge(op, "byte " + Hex(at) + ": mount " + Hex(got[at]) + ", model " +
                      Hex(want[at]));
    }
  }

  void Write(bool vector) {
    const std::uint64_t address = Address();
    const std::uint64_t size = Size();
    Bytes data(size);
    const auto stamp = static_cast<std::uint8_t>(1 + call_ % 254);
    for (std::uint64_t i = 0; i < size; ++i) {
      data[i] = static_cast<std::uint8_t>(stamp + i * 13);
    }
    ssize_t n;
    if (vector) {
      const std::uint64_t half = Below(size + 1);
      iovec iov[2] = {{data.data(), half}, {data.data() + half, size - half}};
      n = ::pwritev(fd_, iov, 2, static_cast<off_t>(address));
    } else {
      n = ::pwrite(fd_, data.data(), size, static_cast<off_t>(address));
    }
    const int error = n < 0 ? errno : 0;
    const std::string op = std::string(vector ? "pwritev " : "pwrite ") +
                           Hex(address) + " " + Hex(size);
    const KernReturn model = model_.Write(0, address, data.data(), size);
    if (Compare(op, error, model) && error == 0 &&
        n != static_cast<ssize_t>(size)) {
      Diverge(op, "wrote " + std::to_string(n) + " bytes of " +
                      std::to_string(size));
    }
  }

  void Copy(bool by_ioctl) {
    const std::uint64_t source = Address();
    const std::uint64_t size = Size();
    const std::uint64_t dest = Address();
    const KernReturn model = model_.Copy(0, source, size, dest);
    if (by_ioctl) {
      taskfs_vm_copy arg = {source, size, dest};
      const int error = ::ioctl(fd_, TASKFS_IOC_VM_COPY, &arg) < 0 ? errno : 0;
      Compare(
          "ioctl vm_copy " + Hex(source) + " " + Hex(size) + " " + Hex(dest),
          error, model);
    } else {
      Ctl("copy " + Hex(source) + " " + Hex(size) + " " + Hex(dest), model);
    }
  }

  bool Compare(const std::string& op, int error, KernReturn model) {
    const std::string outcome = error == 0 ? "ok" : strerrorname_np(error);
    ++outcomes_[outcome];
    recent_.push_back(op + " -> " + outcome);
    if (recent_.size() > 12) recent_.pop_front();
    if (error == ErrnoOf(model)) return true;
    Diverge(op, std::string("mount errno ") + std::to_string(error) +
                    ", model " + std::string(vm::KernReturnName(model)));
    return false;
  }

  void Diverge(const std::string& op, const std::string& detail) {
    diverged_ = true;
    std::string calls;
    for (const std::string& line : recent_) calls += "    " + line + "\n";
    ADD_FAILURE() << "mount and model diverge at call " << call_ << " ("
                  << vm::FlavorName(flavor_) << " flavor): " << op << ": "
                  << detail << "\n  last calls, oldest first:\n"
                  << calls;
  }

  const vm::Flavor flavor_;
  std::mt19937_64 random_;
  Mount mount_;
  Model model_;
  int fd_ = -1;
  int call_ = 0;
  bool diverged_ = false;
  std::deque<std::string> recent_;
  std::map<std::string, int> outcomes_;
  std::uint64_t read_bytes_ = 0;
};

void RunFlavor(vm::Flavor flavor) {
  const std::uint64_t seed = RunSeed();
  std::printf("[ flavor model ] %s: seed=%llu (TASKFS_SEED=%llu replays it)\n",
              vm::FlavorName(flavor), static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  SCOPED_TRACE("TASKFS_SEED=" + std::to_string(seed));
  FlavorModelRun run(flavor, seed);
  run.Run();
}

TEST(FlavorModelTest, XnuByteRangesThroughEveryPathMatchTheModel) {
  RunFlavor(vm::Flavor::kXnu);
}

TEST(FlavorModelTest, ClassicThroughEveryPathMatchesTheModel) {
  RunFlavor(vm::Flavor::kClassic);
}

}  // namespace
}  // namespace taskfs::testing
