// libtaskfs from many threads at once, on one task and on several: run
// under ThreadSanitizer (-DTASKFS_SANITIZE=thread) it must report nothing.
// Each thread owns its pages, so every byte it reads back is checked.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "taskfs/mach.h"
#include "tests/integration/mount_fixture.h"
#include "tests/integration/test_util.h"

namespace taskfs::testing {
namespace {

constexpr int kThreads = 6;
constexpr int kRounds = 60;
constexpr vm_address_t kBase = 0x1000000;
constexpr vm_size_t kSlice = 16 * kPage;  // each thread's own range

// One thread's work on task t in its own slice: write, read back, copy
// within the slice, region lookups, allocate/deallocate anywhere. Returns
// the number of mismatches or unexpected codes.
int Worker(task_t t, int index) {
  int bad = 0;
  const vm_address_t mine = kBase + index * kSlice;
  AlignedBuffer buf(kSlice / 2);
  for (int round = 0; round < kRounds; ++round) {
    const std::string p = Pattern(kSlice / 2, index * 1000 + round);
    std::memcpy(buf.data, p.data(), p.size());
    if (vm_write(t, mine, reinterpret_cast<vm_offset_t>(buf.data),
                 kSlice / 2) != KERN_SUCCESS) {
      ++bad;
    }
    if (vm_copy(t, mine, kSlice / 2, mine + kSlice / 2) != KERN_SUCCESS) ++bad;
    vm_offset_t data = 0;
    mach_msg_type_number_t count = 0;
    if (vm_read(t, mine + kSlice / 2, kSlice / 2, &data, &count) !=
        KERN_SUCCESS) {
      ++bad;
    } else {
      if (std::memcmp(reinterpret_cast<void*>(data), p.data(), count) != 0) {
        ++bad;
      }
      if (vm_deallocate(mach_task_self(), data, count) != KERN_SUCCESS) ++bad;
    }
    vm_address_t a = mine + kPage;
    vm_size_t size = 0;
    vm_prot_t prot, max_prot;
    vm_inherit_t inheritance;
    boolean_t shared;
    mach_port_t object;
    vm_offset_t offset;
    if (vm_region(t, &a, &size, &prot, &max_prot, &inheritance, &shared,
                  &object, &offset) != KERN_SUCCESS) {
      ++bad;
    }
    vm_address_t anywhere = 0;
    if (vm_allocate(t, &anywhere, kPage, TRUE) != KERN_SUCCESS) {
      ++bad;
    } else if (vm_deallocate(t, anywhere, kPage) != KERN_SUCCESS) {
      ++bad;
    }
    // Errors from many threads at once each get their own code.
    if (vm_read(t, mine + 1, kPage, &data, &count) != KERN_INVALID_ARGUMENT) {
      ++bad;
    }
    if (vm_read(t, 0x10, 0, &data, &count) != KERN_INVALID_ARGUMENT) ++bad;
  }
  return bad;
}

class ClientThreads : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(mount_.ok()) << mount_.error(); }
  task_t Create(const std::string& name) {
    task_t t = TASK_NULL;
    EXPECT_EQ(taskfs_task_create(mount_.path().c_str(), name.c_str(), &t),
              KERN_SUCCESS);
    vm_address_t a = kBase;
    EXPECT_EQ(vm_allocate(t, &a, kThreads * kSlice, FALSE), KERN_SUCCESS);
    return t;
  }
  Mount mount_{{"-o", "tasks=none"}};
};

TEST_F(ClientThreads, ManyThreadsOnOneTask) {
  const task_t t = Create("one");
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] { bad += Worker(t, i); });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(taskfs_task_close(t), KERN_SUCCESS);
}

TEST_F(ClientThreads, ThreadsOnSeveralTasksWhileHandlesComeAndGo) {
  std::vector<task_t> tasks;
  for (int i = 0; i < 3; ++i) {
    // Appended, not "t" + std::to_string(i): GCC 12 reports that as
    // -Wrestrict in Release builds.
    std::string name = "t";
    name += std::to_string(i);
    tasks.push_back(Create(name));
  }
  std::atomic<int> bad{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] { bad += Worker(tasks[i % tasks.size()], i); });
  }
  // Meanwhile: handles opened, used and closed; children made and ended.
  const std::string dir = mount_ / "t0";
  threads.emplace_back([&] {
    int n = 0;
    while (!stop) {
      task_t h = TASK_NULL, child = TASK_NULL;
      if (taskfs_task_open(dir.c_str(), &h) != KERN_SUCCESS) {
        ++bad;
        continue;
      }
      if (task_create(h, (n++ % 2) == 0, &child) != KERN_SUCCESS) {
        ++bad;
      } else {
        if (task_terminate(child) != KERN_SUCCESS) ++bad;
        if (taskfs_task_close(child) != KERN_SUCCESS) ++bad;
      }
      if (taskfs_task_close(h) != KERN_SUCCESS) ++bad;
    }
  });
  for (int i = 0; i < kThreads; ++i) threads[i].join();
  stop = true;
  threads.back().join();
  EXPECT_EQ(bad.load(), 0);
  for (task_t t : tasks) EXPECT_EQ(taskfs_task_close(t), KERN_SUCCESS);
}

TEST_F(ClientThreads, CloseRacingWithCallsOnTheSameHandle) {
  const task_t keep = Create("race");
  const std::string dir = mount_ / "race";
  for (int round = 0; round < 20; ++round) {
    task_t h = TASK_NULL;
    ASSERT_EQ(taskfs_task_open(dir.c_str(), &h), KERN_SUCCESS);
    std::atomic<int> bad{0};
    std::vector<std::thread> users;
    for (int i = 0; i < 4; ++i) {
      users.emplace_back([&, i] {
        for (int k = 0; k < 20; ++k) {
          vm_offset_t data = 0;
          mach_msg_type_number_t count = 0;
          const kern_return_t kr =
              vm_read(h, kBase + i * kSlice, kPage, &data, &count);
          if (kr == KERN_SUCCESS) {
            vm_deallocate(mach_task_self(), data, count);
          } else if (kr != KERN_INVALID_TASK) {
            ++bad;
          }
        }
      });
    }
    EXPECT_EQ(taskfs_task_close(h), KERN_SUCCESS);
    for (std::thread& u : users) u.join();
    EXPECT_EQ(bad.load(), 0);
  }
  EXPECT_EQ(taskfs_task_close(keep), KERN_SUCCESS);
}

}  // namespace
}  // namespace taskfs::testing
