// The gate's machinery: the guard, opening tasks, and the checks in Mach's
// order with their reasons. (The calls that use them: vm_user_test.cc.)
#include "vmcore/gate.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "vmcore/vm_system.h"

namespace taskfs::vm::gate {
namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kLimit = std::uint64_t{1} << 32;

std::string Reason() { return std::string(LastFailureReason()); }

// --- the guard ---------------------------------------------------------------

TEST(GateTest, GuardedTurnsTheLimitIntoResourceShortageWithItsFigures) {
  EXPECT_EQ(Guarded([]() -> KernReturn { throw LimitReached(100, 90, 20); }),
            KERN_RESOURCE_SHORTAGE);
  EXPECT_EQ(Reason(),
            "memory limit 100 bytes: 90 in use, the call needs 20 more");
}

TEST(GateTest, GuardedTurnsEveryOtherExceptionIntoACode) {
  EXPECT_EQ(Guarded([]() -> KernReturn { throw std::bad_alloc(); }),
            KERN_RESOURCE_SHORTAGE);
  EXPECT_EQ(Reason(),
            "out of memory: the daemon could not allocate what the call needs");
  EXPECT_EQ(Guarded([]() -> KernReturn { throw std::runtime_error("x"); }),
            KERN_FAILURE);
  EXPECT_EQ(Reason(), "an unexpected error inside the VM core");
  // A call that returns a value gets the code in its result.
  const KernResult<int> thrown =
      Guarded([]() -> KernResult<int> { throw std::bad_alloc(); });
  EXPECT_EQ(thrown.code(), KERN_RESOURCE_SHORTAGE);
  const KernResult<int> value = Guarded([]() -> KernResult<int> { return 7; });
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(value.value(), 7);
}

// Every failure leaves a reason: the path's own, else the code's name; a
// success leaves the last one as it was.
TEST(GateTest, WithReasonNamesTheCodeOfAFailureThatSetNone) {
  SetFailureReason("before");
  EXPECT_EQ(WithReason([] { return KERN_SUCCESS; }), KERN_SUCCESS);
  EXPECT_EQ(Reason(), "before");
  EXPECT_EQ(WithReason([] { return KERN_NO_SPACE; }), KERN_NO_SPACE);
  EXPECT_EQ(Reason(), std::string(KernReturnName(KERN_NO_SPACE)));
  EXPECT_EQ(WithReason([] {
              SetFailureReason("its own");
              return KERN_NO_SPACE;
            }),
            KERN_NO_SPACE);
  EXPECT_EQ(Reason(), "its own");
}

// --- opening a task ----------------------------------------------------------

class GateOpenTest : public ::testing::Test {
 protected:
  GateOpenTest() {
    VmConfig config;
    config.address_bits = 32;
    system_ = std::make_unique<VmSystem>(config);
    a_ = system_->AddTask("a").value();
    b_ = system_->AddTask("b").value();
  }
  void Terminate(Task& task) {
    std::unique_lock lock(task.mu());
    task.Terminate();
  }

  std::unique_ptr<VmSystem> system_;
  std::shared_ptr<Task> a_, b_;
};

TEST_F(GateOpenTest, LocksTheTaskAsAskedWhileTheBodyRuns) {
  EXPECT_EQ(Open(*a_, Lock::kExclusive,
                 [&] {
                   EXPECT_FALSE(a_->mu().try_lock_shared());
                   return KERN_SUCCESS;
                 }),
            KERN_SUCCESS);
  EXPECT_EQ(Open(*a_, Lock::kShared,
                 [&] {
                   EXPECT_FALSE(a_->mu().try_lock());
                   return KERN_SUCCESS;
                 }),
            KERN_SUCCESS);
  // Unlocked again.
  ASSERT_TRUE(a_->mu().try_lock());
  a_->mu().unlock();
}

TEST_F(GateOpenTest, ATerminatedTaskRunsNoBody) {
  Terminate(*a_);
  bool ran = false;
  EXPECT_EQ(Open(*a_, Lock::kShared,
                 [&] {
                   ran = true;
                   return KERN_SUCCESS;
                 }),
            KERN_INVALID_TASK);
  EXPECT_FALSE(ran);
  EXPECT_EQ(Reason(), "task a was terminated");
}

TEST_F(GateOpenTest, TwoTasksEitherTerminated) {
  Terminate(*b_);
  bool ran = false;
  EXPECT_EQ(Open(*a_, Lock::kExclusive, *b_, Lock::kShared,
                 [&] {
                   ran = true;
                   return KERN_SUCCESS;
                 }),
            KERN_INVALID_TASK);
  EXPECT_FALSE(ran);
  EXPECT_EQ(Reason(), "task b was terminated");
  // One task twice is opened once.
  EXPECT_EQ(Open(*a_, Lock::kShared, *a_, Lock::kShared,
                 [&] {
                   ran = true;
                   return KERN_SUCCESS;
                 }),
            KERN_SUCCESS);
  EXPECT_TRUE(ran);
}

TEST_F(GateOpenTest, TheBodysExceptionsAreGuarded) {
  EXPECT_EQ(Open(*a_, Lock::kExclusive,
                 []() -> KernReturn { throw LimitReached(1, 1, 1); }),
            KERN_RESOURCE_SHORTAGE);
  ASSERT_TRUE(a_->mu().try_lock());  // and the lock went with them
  a_->mu().unlock();
}

// --- reasons -----------------------------------------------------------------

TEST(GateTest, Reasons) {
  EXPECT_EQ(BadTaskName("a b"), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(Reason(),
            "bad task name 'a b' (1 to 64 of A-Z a-z 0-9 . _ -, not starting "
            "with '.', not host_page_size)");
  EXPECT_EQ(Needs(VM_PROT_READ), "read needs r");
  EXPECT_EQ(Needs(VM_PROT_WRITE), "write needs w");
  EXPECT_EQ(Needs(VM_PROT_READ | VM_PROT_EXECUTE), "access needs rx");
  MapEntry entry;
  entry.protection = VM_PROT_READ;
  entry.max_protection = VM_PROT_ALL;
  EXPECT_EQ(NeedsExplained(VM_PROT_WRITE)(entry, 0x3000),
            "page 0x3000 is r--/rwx, write needs w");
}

// --- the checks --------------------------------------------------------------

// A map of a 4 GiB space holding [0x1000, 0x3000), its upper page
// read-only.
class GateChecksTest : public ::testing::Test {
 protected:
  GateChecksTest() {
    VmConfig config;
    config.address_bits = 32;
    system_ = std::make_unique<VmSystem>(config);
    task_ = system_->AddTask("t").value();
    map().AllocateRange(Range(0x1000, 0x2000));
    map().SetProtection(Range(0x2000, 0x1000), VM_PROT_READ, false);
  }
  AddressMap& map() { return task_->map(); }
  const Geometry& geometry() { return task_->geometry(); }
  PageRange Range(vm_address_t start, vm_size_t size) {
    return PageRange::Exact(geometry(), start, size).value();
  }

  std::unique_ptr<VmSystem> system_;
  std::shared_ptr<Task> task_;
};

// The first failure is kept, with its reason; the checks after it do
// nothing.
TEST_F(GateChecksTest, TheFirstFailureIsKept) {
  PageRange range = Range(0x5000, kPage);
  Checks check(geometry());
  check.Aligned({{"address", 0x1000}, {"size", 0x10}, {"destination", 1}})
      .NonEmpty(0x10)
      .Exact(~std::uint64_t{0}, 0x2000, &range)
      .Allocated(map(), range);
  EXPECT_FALSE(check.passed());
  EXPECT_EQ(check.code(), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(Reason(), "size 0x10 is not a multiple of the page size 0x1000");
  EXPECT_EQ(range.start(), 0x5000u);  // the bounds check did not run
}

TEST_F(GateChecksTest, AValueOutsideItsSetIsAnInvalidArgument) {
  Checks check(geometry());
  check.Valid(false, [] { return std::string("why"); }).NonEmpty(kPage);
  EXPECT_EQ(check.code(), KERN_INVALID_ARGUMENT);
  EXPECT_EQ(Reason(), "why");
}

// A zero size passes and ends the checks: success with nothing to do.
TEST_F(GateChecksTest, AZeroSizeEndsTheChecks) {
  SetFailureReason("before");
  PageRange range = Range(0x5000, kPage);
  Checks check(geometry());
  check.Aligned({{"size", 0}}).NonEmpty(0).Exact(~std::uint64_t{0}, 0, &range);
  check.Free(map(), Range(0x1000, kPage));
  EXPECT_FALSE(check.passed());
  EXPECT_EQ(check.code(), KERN_SUCCESS);
  EXPECT_EQ(range.start(), 0x5000u);
  EXPECT_EQ(Reason(), "before");
}

TEST_F(GateChecksTest, BoundsWrapOrLeaveTheSpace) {
  PageRange range;
  Checks wraps(geometry());
  wraps.NonEmpty(0x2000).Exact(~std::uint64_t{0} - 0xfff, 0x2000, &range);
  EXPECT_EQ(wraps.code(), KERN_INVALID_ADDRESS);
  EXPECT_EQ(Reason(), "0xfffffffffffff000 + 0x2000 wraps past 2^64");
  Checks outside(geometry());
  outside.NonEmpty(0x2000).Rounded(kLimit - 0x1000, 0x2000, &range);
  EXPECT_EQ(outside.code(), KERN_INVALID_ADDRESS);
  EXPECT_EQ(Reason(),
            "0xfffff000-0x100001000 is not inside the address space [0, "
            "0x100000000)");
  Checks fits(geometry());
  fits.NonEmpty(1).RoundedApart(0x1fff, 1, &range);
  EXPECT_TRUE(fits.passed());
  EXPECT_EQ(range.start(), 0x1000u);
  EXPECT_EQ(range.end(), 0x2000u);
}

// A range check decides at its lowest offending page.
TEST_F(GateChecksTest, RangesFailAtTheLowestOffendingPage) {
  Checks write(geometry());
  write.Access(map(), Range(0x1000, 0x3000), VM_PROT_WRITE);
  EXPECT_EQ(write.code(), KERN_PROTECTION_FAILURE);
  EXPECT_EQ(Reason(), "page 0x2000 is r--/rwx, write needs w");
  Checks read(geometry());
  read.Access(map(), Range(0x1000, 0x3000), VM_PROT_READ);
  EXPECT_EQ(read.code(), KERN_INVALID_ADDRESS);
  EXPECT_EQ(Reason(), "page 0x3000 is not allocated");
  Checks allocated(geometry());
  allocated.Allocated(map(), Range(0x1000, 0x2000));
  EXPECT_TRUE(allocated.passed());
  // The source range decides before the destination.
  Checks both(geometry());
  both.Access(map(), Range(0, kPage), VM_PROT_READ)
      .Access(map(), Range(0x2000, kPage), VM_PROT_WRITE);
  EXPECT_EQ(both.code(), KERN_INVALID_ADDRESS);
  EXPECT_EQ(Reason(), "page 0x0 is not allocated");
}

TEST_F(GateChecksTest, AFreeDestinationNamesTheRegionInTheWay) {
  Checks check(geometry());
  check.Free(map(), Range(0, 0x2000));
  EXPECT_EQ(check.code(), KERN_NO_SPACE);
  EXPECT_EQ(Reason(), "overlaps region 0x1000-0x2000");
  Checks free(geometry());
  free.Free(map(), Range(0x3000, kPage));
  EXPECT_TRUE(free.passed());
}

// The call's own destination: the lowest hole of the rounded size.
TEST_F(GateChecksTest, AHoleIsTheLowestThatFits) {
  PageRange range;
  Checks first(geometry());
  first.NonEmpty(kPage).Hole(map(), kPage, &range);
  ASSERT_TRUE(first.passed());
  EXPECT_EQ(range.start(), 0u);
  EXPECT_EQ(range.end(), kPage);
  Checks rounded(geometry());
  rounded.NonEmpty(kPage + 1).Hole(map(), kPage + 1, &range);
  ASSERT_TRUE(rounded.passed());
  EXPECT_EQ(range.start(), 0x3000u);
  EXPECT_EQ(range.end(), 0x5000u);
}

TEST_F(GateChecksTest, NoHoleIsNoSpace) {
  PageRange range;
  Checks whole(geometry());
  whole.NonEmpty(kLimit).Hole(map(), kLimit, &range);
  EXPECT_EQ(whole.code(), KERN_NO_SPACE);
  EXPECT_EQ(Reason(),
            "no free range of 0x100000000 bytes in the address space");
  Checks past(geometry());
  past.NonEmpty(~std::uint64_t{0}).Hole(map(), ~std::uint64_t{0}, &range);
  EXPECT_EQ(past.code(), KERN_NO_SPACE);
  EXPECT_EQ(Reason(),
            "no free range of 0xffffffffffffffff bytes in the address space");
  // A zero size looks for none.
  Checks zero(geometry());
  zero.NonEmpty(0).Hole(map(), 0, &range);
  EXPECT_EQ(zero.code(), KERN_SUCCESS);
  EXPECT_FALSE(zero.passed());
}

// --- what the calls check ----------------------------------------------------

TEST_F(GateChecksTest, ReadableCollectsTheEntriesItAccepts) {
  std::vector<const MapEntry*>& entries = ReadEntries();
  EXPECT_TRUE(entries.empty());
  Checks check(geometry());
  check.Range(map(), Range(0x1000, 0x2000), Readable(&entries),
              NeedsExplained(VM_PROT_READ));
  ASSERT_TRUE(check.passed());
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0]->start, 0x1000u);
  EXPECT_EQ(entries[1]->start, 0x2000u);
  EXPECT_TRUE(ReadEntries().empty());  // the next read's, emptied
}

TEST(GateTest, ProtectableWithinTheMaximum) {
  MapEntry entry;
  entry.max_protection = VM_PROT_READ | VM_PROT_WRITE;
  EXPECT_EQ(Protectable(entry, VM_PROT_READ), KERN_SUCCESS);
  EXPECT_EQ(Protectable(entry, VM_PROT_READ | VM_PROT_WRITE), KERN_SUCCESS);
  EXPECT_EQ(Protectable(entry, VM_PROT_EXECUTE), KERN_PROTECTION_FAILURE);
}

}  // namespace
}  // namespace taskfs::vm::gate
