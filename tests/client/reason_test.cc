// The reason channel through a real mount: taskfs_last_reason() and
// taskfs_last_error_line() give each thread the reason of its own last
// failed call, while many threads of several processes fail on one task at
// once with different reasons (docs/reference.md §5, TASKFS_IOC_LAST_REASON).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "taskfs/mach.h"
#include "tests/integration/child_processes.h"
#include "tests/integration/mount_fixture.h"
#include "tests/integration/test_util.h"

namespace taskfs::testing {
namespace {

constexpr vm_address_t kReadOnly = 0x100000;  // pages writes are refused on
constexpr vm_address_t kHoles = 0x40000000;   // nothing is allocated here
constexpr int kThreads = 6;
constexpr int kProcesses = 3;
constexpr int kRounds = 40;

// One thread's failures, each at an address no other thread uses, so that
// its reason names that address: a read of a hole (KERN_INVALID_ADDRESS)
// and a write of a read-only page (KERN_PROTECTION_FAILURE), then a call
// that succeeds. Returns the number of reasons that were not its own.
int Worker(task_t t, int index) {
  int bad = 0;
  AlignedBuffer buf(kPage);
  std::memset(buf.data, 7, kPage);
  char line[1100];
  for (int round = 0; round < kRounds; ++round) {
    const vm_address_t hole =
        kHoles + static_cast<vm_address_t>(index * kRounds + round) * kPage;
    vm_offset_t data = 0;
    mach_msg_type_number_t count = 0;
    if (vm_read(t, hole, kPage, &data, &count) != KERN_INVALID_ADDRESS) ++bad;
    if (std::string(taskfs_last_reason()) !=
        fmt::format("page {:#x} is not allocated", hole)) {
      ++bad;
    }
    if (taskfs_last_error_line(line, sizeof line) != KERN_SUCCESS ||
        std::strstr(
            line,
            fmt::format(" pread {:#x} 0x1000: KERN_INVALID_ADDRESS: ", hole)
                .c_str()) == nullptr) {
      ++bad;
    }
    const vm_address_t page =
        kReadOnly + static_cast<vm_address_t>(index) * kPage;
    if (vm_write(t, page, reinterpret_cast<vm_offset_t>(buf.data), kPage) !=
        KERN_PROTECTION_FAILURE) {
      ++bad;
    }
    if (std::string(taskfs_last_reason()) !=
        fmt::format("page {:#x} is r--/rwx, write needs w", page)) {
      ++bad;
    }
    // Success forgets it.
    if (vm_read(t, kReadOnly, kPage, &data, &count) != KERN_SUCCESS) {
      ++bad;
    } else {
      vm_deallocate(mach_task_self(), data, count);
    }
    if (taskfs_last_reason()[0] != '\0') ++bad;
  }
  return bad;
}

// Runs kThreads workers on t, numbered from first; their bad count.
int Threads(task_t t, int first) {
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] { bad += Worker(t, first + i); });
  }
  for (std::thread& th : threads) th.join();
  return bad.load();
}

class ClientReason : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(mount_.ok()) << mount_.error();
    ASSERT_EQ(taskfs_task_create(mount_.path().c_str(), "t", &t_),
              KERN_SUCCESS);
    vm_address_t a = kReadOnly;
    const vm_size_t size = (kProcesses + 1) * kThreads * kPage;
    ASSERT_EQ(vm_allocate(t_, &a, size, FALSE), KERN_SUCCESS);
    ASSERT_EQ(vm_protect(t_, a, size, FALSE, VM_PROT_READ), KERN_SUCCESS);
  }
  void TearDown() override {
    if (t_ != TASK_NULL) taskfs_task_close(t_);
  }
  Mount mount_{{"-o", "tasks=none"}};
  task_t t_ = TASK_NULL;
};

TEST_F(ClientReason, EachThreadOfEachProcessGetsItsOwnReason) {
  ChildProcesses<DescribeChildExit> children;
  const std::string dir = mount_ / "t";
  for (int p = 1; p <= kProcesses; ++p) {
    children.Spawn(fmt::format("process {}", p), [&, p] {
      task_t t = TASK_NULL;
      if (taskfs_task_open(dir.c_str(), &t) != KERN_SUCCESS) return 1;
      const int bad = Threads(t, p * kThreads);
      taskfs_task_close(t);
      return bad == 0 ? 0 : kFirstOwnChildCode;
    });
  }
  EXPECT_EQ(Threads(t_, 0), 0);
  EXPECT_TRUE(children.WaitAll(std::chrono::steady_clock::now() +
                               std::chrono::seconds(120)));
  EXPECT_TRUE(children.ExpectAllSucceeded());
}

TEST_F(ClientReason, LocalFailuresHaveAReasonButNoLine) {
  vm_offset_t data = 0;
  mach_msg_type_number_t count = 0;
  EXPECT_EQ(vm_read(t_, kReadOnly + 1, kPage, &data, &count),
            KERN_INVALID_ARGUMENT);
  EXPECT_NE(std::string(taskfs_last_reason()), "");
  char line[64] = "x";
  EXPECT_EQ(taskfs_last_error_line(line, sizeof line), KERN_SUCCESS);
  EXPECT_STREQ(line, "");
  EXPECT_EQ(vm_read(TASK_NULL, kReadOnly, kPage, &data, &count),
            KERN_INVALID_TASK);
  EXPECT_STREQ(taskfs_last_reason(), "not an open task handle");
  EXPECT_EQ(taskfs_last_error_line(nullptr, 1), KERN_INVALID_ARGUMENT);
}

TEST_F(ClientReason, ALineTooLongForTheBufferIsCut) {
  vm_offset_t data = 0;
  mach_msg_type_number_t count = 0;
  ASSERT_EQ(vm_read(t_, kHoles, kPage, &data, &count), KERN_INVALID_ADDRESS);
  char line[8];
  EXPECT_EQ(taskfs_last_error_line(line, sizeof line), KERN_NO_SPACE);
  EXPECT_EQ(std::strlen(line), 7u);
}

TEST_F(ClientReason, CtlFailuresHaveTheirReasonToo) {
  task_t child = TASK_NULL;
  ASSERT_EQ(taskfs_task_fork(t_, "kid", &child), KERN_SUCCESS);
  EXPECT_EQ(taskfs_task_close(child), KERN_SUCCESS);
  EXPECT_EQ(taskfs_task_fork(t_, "kid", &child), KERN_NAME_EXISTS);
  char line[1100];
  ASSERT_EQ(taskfs_last_error_line(line, sizeof line), KERN_SUCCESS);
  EXPECT_NE(std::strstr(line, " ctl fork kid: KERN_NAME_EXISTS: "), nullptr)
      << line;
  EXPECT_NE(std::string(taskfs_last_reason()), "");
}

}  // namespace
}  // namespace taskfs::testing
