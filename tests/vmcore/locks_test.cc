// TaskLocks and ObjectLocks: what they lock, in which mode, and that they
// release it all.
#include "vmcore/locks.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "tests/vmcore/engine_test_util.h"
#include "tests/vmcore/lock_probe.h"

namespace taskfs::vm {
namespace {

// The engine tests' helpers (engine_test_util.h).
using namespace engine_test;  // NOLINT(build/namespaces)

bool Free(const PhaseFairMutex& mu) { return Probe(mu) == Held::kNot; }
bool SharedOnly(const PhaseFairMutex& mu) { return Probe(mu) == Held::kShared; }
bool Exclusive(const PhaseFairMutex& mu) {
  return Probe(mu) == Held::kExclusive;
}

TEST(TaskLocksTest, OneTaskSharedOrExclusive) {
  auto system = MakeSystem();
  auto task = MakeTask(*system, "t");
  {
    TaskLocks locks(*task, /*a_exclusive=*/false);
    EXPECT_TRUE(SharedOnly(task->mu()));
  }
  {
    TaskLocks locks(*task, /*a_exclusive=*/true);
    EXPECT_TRUE(Exclusive(task->mu()));
  }
  EXPECT_TRUE(Free(task->mu()));
}

TEST(TaskLocksTest, TwoTasksEachInItsModeAndOneTaskOnce) {
  auto system = MakeSystem();
  auto a = MakeTask(*system, "a");
  auto b = MakeTask(*system, "b");
  {
    // Given in descending id order; taken ascending (no deadlock to show
    // here, but both must end up held).
    TaskLocks locks(*b, true, *a, false);
    EXPECT_TRUE(Exclusive(b->mu()));
    EXPECT_TRUE(SharedOnly(a->mu()));
  }
  EXPECT_TRUE(Free(a->mu()));
  EXPECT_TRUE(Free(b->mu()));
  {
    // The same task twice: one lock, exclusive because one side wants it.
    TaskLocks locks(*a, false, *a, true);
    EXPECT_TRUE(Exclusive(a->mu()));
  }
  EXPECT_TRUE(Free(a->mu()));
}

TEST(ObjectLocksTest, AnExclusiveWantWinsAndEachObjectIsLockedOnce) {
  MemoryBudget budget(0);
  DeferredFreer freer(PageTable::kDeadNodes);
  VmObject x(budget, freer), y(budget, freer);
  {
    ObjectLocks locks;
    locks.Add(&y, /*exclusive=*/false);
    locks.Add(&x, /*exclusive=*/false);
    locks.Add(&y, /*exclusive=*/true);
    locks.Add(&x, /*exclusive=*/false);
    locks.LockAll();
    EXPECT_TRUE(Exclusive(y.mu()));
    EXPECT_TRUE(SharedOnly(x.mu()));
  }
  EXPECT_TRUE(Free(x.mu()));
  EXPECT_TRUE(Free(y.mu()));
}

// More objects than the inline capacity: all locked, all released.
TEST(ObjectLocksTest, ManyObjectsOfAMapRange) {
  auto system = MakeSystem();
  auto task = MakeTask(*system, "t");
  AddressMap& map = task->map();
  for (int i = 0; i < 10; ++i) {
    map.AllocateRange(R(map, 2 * i * kPage, kPage));  // holes: 10 objects
  }
  std::vector<const VmObject*> objects;
  for (const auto& [start, entry] : map.entries()) {
    objects.push_back(entry.object.get());
  }
  ASSERT_EQ(objects.size(), 10u);
  {
    ObjectLocks locks;
    locks.Add(map, R(map, 0, 20 * kPage), /*exclusive=*/true);
    locks.LockAll();
    for (const VmObject* o : objects) EXPECT_TRUE(Exclusive(o->mu()));
  }
  for (const VmObject* o : objects) EXPECT_TRUE(Free(o->mu()));
  {
    ObjectLocks locks;
    locks.Add(map, R(map, 4 * kPage, 3 * kPage), /*exclusive=*/false);
    locks.LockAll();
    EXPECT_TRUE(Free(objects[0]->mu()));
    EXPECT_TRUE(SharedOnly(objects[2]->mu()));
    EXPECT_TRUE(SharedOnly(objects[3]->mu()));
    EXPECT_TRUE(Free(objects[4]->mu()));
  }
}

}  // namespace
}  // namespace taskfs::vm
