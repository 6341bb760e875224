// Conformance of libtaskfs with the cases of three Mach VM test suites,
// written anew from their cases and expected results (every test name
// begins with "Conformance": ctest -R '^Conformance'):
//
//   XnuVmAllocation*  XNU tests/vm/vm_allocation.c: its matrix of sizes 0, 1,
//                     page - 1, page, page + 1 and 1024 pages, allocated
//                     anywhere or at fixed page-aligned or unaligned
//                     addresses, with write buffers at boundary offsets 0, 1
//                     and 2; and its edge, inaccessibility, pattern,
//                     protection and copy-on-write cases.
//   Conformance.XnuQuickTestMachVm
//                     XNU tools/tests/xnu_quick_test/machvm_tests.c.
//   ConformanceGnuMachTestVm
//                     GNU Mach tests/test-vm.c (the VM-limit and maximum
//                     protection cases; the rest needs devices and wiring).
//
// The target is a taskfs task (the suites use mach_task_self()), so a write
// buffer lives in this process and the task's memory is reached only
// through vm_read. Where taskfs's classic Mach rules differ from what XNU or
// GNU Mach do, the test asserts taskfs's behaviour; docs/conformance.md
// lists each such case with the other system's source line.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <climits>
#include <cstdint>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "taskfs/mach.h"
#include "tests/integration/mount_fixture.h"

namespace taskfs::testing {
namespace {

constexpr vm_size_t kPage = 4096;
constexpr vm_size_t kDefaultSize = 1024 * kPage;  // vm_allocation.c's default
constexpr vm_address_t kMax = UINTPTR_MAX;

vm_address_t TruncPage(vm_address_t a) { return a & ~(kPage - 1); }
vm_size_t RoundPage(vm_size_t s) { return (s + kPage - 1) & ~(kPage - 1); }
bool Aligned(vm_address_t a) { return a % kPage == 0; }

std::string Name(kern_return_t kr) {
  switch (kr) {
    case KERN_SUCCESS:
      return "KERN_SUCCESS";
    case KERN_INVALID_ADDRESS:
      return "KERN_INVALID_ADDRESS";
    case KERN_PROTECTION_FAILURE:
      return "KERN_PROTECTION_FAILURE";
    case KERN_NO_SPACE:
      return "KERN_NO_SPACE";
    case KERN_INVALID_ARGUMENT:
      return "KERN_INVALID_ARGUMENT";
    case KERN_FAILURE:
      return "KERN_FAILURE";
    case KERN_RESOURCE_SHORTAGE:
      return "KERN_RESOURCE_SHORTAGE";
    case KERN_NAME_EXISTS:
      return "KERN_NAME_EXISTS";
    case KERN_INVALID_TASK:
      return "KERN_INVALID_TASK";
    default:
      return std::to_string(kr);
  }
}
#define EXPECT_KR(expected, call) EXPECT_EQ(Name(call), Name(expected))
#define ASSERT_KR(expected, call) ASSERT_EQ(Name(call), Name(expected))

// Memory of this process from mmap: page-aligned, as Mach's out-of-line
// data; unmapped at the end.
class ProcessBuffer {
 public:
  explicit ProcessBuffer(std::size_t size) : size_(RoundPage(size + 1)) {
    base_ = static_cast<char*>(mmap(nullptr, size_, PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (base_ == MAP_FAILED) std::abort();
  }
  ~ProcessBuffer() { munmap(base_, size_); }
  char* base() const { return base_; }

 private:
  char* base_;
  std::size_t size_;
};

// The patterns of the suite, over 8-byte words of the task's memory: a
// word that the pattern selects holds the word's own address in the
// range's reference frame (start_value + offset), the others are zero.
enum class Pattern {
  kAddressFilled,
  kCheckerboard,
  kReverseCheckerboard,
  kPageEnds,
  kPageInteriors
};

bool Selected(Pattern p, vm_address_t offset) {
  const vm_address_t word = offset / 8;
  const vm_address_t in_page = offset % kPage;
  switch (p) {
    case Pattern::kAddressFilled:
      return true;
    case Pattern::kCheckerboard:
      return word % 2 == 0;
    case Pattern::kReverseCheckerboard:
      return word % 2 == 1;
    case Pattern::kPageEnds:
      return in_page == 0 || in_page == kPage - 8;
    case Pattern::kPageInteriors:
      return in_page != 0 && in_page != kPage - 8;
  }
  return false;
}

// `size` bytes of pattern p for a range whose words are numbered from
// start_value.
std::string Fill(Pattern p, vm_size_t size, vm_address_t start_value) {
  std::string out(size, '\0');
  for (vm_address_t off = 0; off + 8 <= size; off += 8) {
    if (!Selected(p, off)) continue;
    const std::uint64_t v = start_value + off;
    std::memcpy(&out[off], &v, 8);
  }
  return out;
}

// Equal bytes; on a mismatch the first differing offset, not megabytes.
::testing::AssertionResult SameBytes(const std::string& actual,
                                     const std::string& expected) {
  if (actual == expected) return ::testing::AssertionSuccess();
  std::size_t at = 0;
  while (at < actual.size() && at < expected.size() &&
         actual[at] == expected[at]) {
    ++at;
  }
  return ::testing::AssertionFailure()
         << "sizes " << actual.size() << " and " << expected.size()
         << ", first difference at offset 0x" << std::hex << at;
}

// What taskfs allocates for vm_allocate(address, size): the address
// rounded down and the size rounded up, each on its own, as classic Mach
// (GNU Mach vm/vm_user.c) does. XNU covers every page the byte range
// touches (its aligned_size()), one page more for some unaligned requests.
vm_size_t TaskfsSpan(vm_size_t size) { return RoundPage(size); }
vm_size_t XnuSpan(vm_address_t address, vm_size_t size) {
  return RoundPage(address - TruncPage(address) + size);
}

class Conformance : public ::testing::Test {
 protected:
  explicit Conformance(const std::vector<std::string>& options = {"-o",
                                                                  "tasks=none"})
      : mount_(options) {}

  void SetUp() override {
    ASSERT_TRUE(mount_.ok()) << mount_.error();
    ASSERT_KR(KERN_SUCCESS,
              taskfs_task_create(mount_.path().c_str(), "conformance", &t_));
  }
  void TearDown() override { taskfs_task_close(t_); }

  // Sets *address to a free address with a page of room either side for
  // `size` bytes: found anywhere and released, to be asked for as fixed.
  void FindFreeFixedAddress(vm_size_t size, vm_address_t* address) {
    vm_address_t probe = 0;
    ASSERT_KR(KERN_SUCCESS,
              vm_allocate(t_, &probe, RoundPage(size + 2 * kPage), TRUE));
    ASSERT_KR(KERN_SUCCESS,
              vm_deallocate(t_, probe, RoundPage(size + 2 * kPage)));
    *address = probe + kPage;
  }

  // vm_read of whole pages: the bytes, or "" after a failed expectation.
  std::string Read(vm_address_t address, vm_size_t size) {
    vm_offset_t data = 0;
    mach_msg_type_number_t count = 0;
    const kern_return_t kr = vm_read(t_, address, size, &data, &count);
    EXPECT_KR(KERN_SUCCESS, kr)
        << "vm_read(0x" << std::hex << address << ", 0x" << size << ")";
    if (kr != KERN_SUCCESS) return "";
    EXPECT_EQ(count, size);
    EXPECT_TRUE(size == 0 || data % kPage == 0);
    std::string out(reinterpret_cast<const char*>(data), count);
    EXPECT_KR(KERN_SUCCESS, vm_deallocate(mach_task_self(), data, count));
    return out;
  }
  kern_return_t ReadCode(vm_address_t address, vm_size_t size) {
    vm_offset_t data = 0;
    mach_msg_type_number_t count = 0;
    const kern_return_t kr = vm_read(t_, address, size, &data, &count);
    if (kr == KERN_SUCCESS) vm_deallocate(mach_task_self(), data, count);
    return kr;
  }
  // vm_write of bytes (whole pages) from a page-aligned buffer.
  kern_return_t Write(vm_address_t address, const std::string& bytes) {
    ProcessBuffer b(bytes.size());
    std::memcpy(b.base(), bytes.data(), bytes.size());
    return vm_write(t_, address, reinterpret_cast<vm_offset_t>(b.base()),
                    static_cast<mach_msg_type_number_t>(bytes.size()));
  }
  // The smallest aligned range holding [address, address + size) reads as
  // zeros (test_zero_filled).
  void ExpectZeroFilled(vm_address_t address, vm_size_t size) {
    const vm_address_t start = TruncPage(address);
    const vm_size_t n = RoundPage(address - start + size);
    EXPECT_TRUE(SameBytes(Read(start, n), std::string(n, '\0')))
        << "zero-filled 0x" << std::hex << start << "+0x" << n;
  }

  Mount mount_;
  task_t t_ = TASK_NULL;
};

// The sizes of vm_allocation.c's vm_sizes[] and its addresses of edge cases.
const vm_size_t kSizes[] = {kDefaultSize, 0, kPage, 1, kPage - 1, kPage + 1};
const vm_address_t kEdgeAddresses[] = {
    0x0,       0x1,
    kPage - 1, kPage,
    kPage + 1, vm_address_t{UINT_MAX} - kPage + 1,
    UINT_MAX,  kMax - kPage + 1,
    kMax};

// Ranges whose end wraps past 2^64, of the vm_deallocate and vm_protect
// *_wrapped_around_ranges tests.
struct WrappedRange {
  vm_address_t address;
  vm_size_t size;
};
const WrappedRange kWrappedRanges[] = {{0x1, kMax},
                                       {kPage, kMax - kPage + 1},
                                       {kMax - kPage + 1, kPage},
                                       {kMax, 1}};

// The sources that wrap around the top of the address space in the vm_read
// and vm_copy *_wrapped_around_ranges tests, with taskfs's verdict: XNU's
// is KERN_INVALID_ADDRESS for all four; taskfs judges alignment first, so
// the two unaligned ones are KERN_INVALID_ARGUMENT.
struct WrappedSource {
  vm_address_t address;
  vm_size_t size;
  kern_return_t taskfs;
};
const WrappedSource kWrappedSources[] = {
    {kMax - UINT_MAX + 1, UINT_MAX, KERN_INVALID_ARGUMENT},
    {kMax - UINT_MAX + kPage, vm_size_t{UINT_MAX} - kPage + 1,
     KERN_INVALID_ADDRESS},
    {kMax - kPage + 1, kPage, KERN_INVALID_ADDRESS},
    {kMax, 1, KERN_INVALID_ARGUMENT}};

enum class Where { kAnywhere, kFixedAligned, kFixedUnaligned };
const char* WhereName(Where w) {
  return w == Where::kAnywhere       ? "anywhere"
         : w == Where::kFixedAligned ? "fixed_aligned"
                                     : "fixed_unaligned";
}

// The rows of the size x address kind matrices, and their names.
auto SizesAndPlaces() {
  return ::testing::Combine(
      ::testing::ValuesIn(kSizes),
      ::testing::Values(Where::kAnywhere, Where::kFixedAligned,
                        Where::kFixedUnaligned));
}
std::string SizeAndPlaceName(
    const ::testing::TestParamInfo<std::tuple<vm_size_t, Where>>& info) {
  return "size_" + std::to_string(std::get<0>(info.param)) + "_" +
         WhereName(std::get<1>(info.param));
}

// --- vm_allocate: the main, pattern and reallocation tests per size and
// address kind (allocate_main_tests, allocate_address_error_tests) ---------

class XnuVmAllocationMatrix
    : public Conformance,
      public ::testing::WithParamInterface<std::tuple<vm_size_t, Where>> {
 protected:
  // Allocates `size` bytes as the matrix row says and returns the address
  // the suite then uses: the allocated one, plus 1 for an unaligned fixed
  // request (the allocator truncates it).
  vm_address_t Allocate(vm_size_t size, Where where) {
    vm_address_t address = 0;
    if (where != Where::kAnywhere) {
      FindFreeFixedAddress(size, &address);
      if (where == Where::kFixedUnaligned) address += 1;
    }
    const vm_address_t requested = address;
    EXPECT_KR(KERN_SUCCESS,
              vm_allocate(t_, &address, size, where == Where::kAnywhere));
    if (size == 0) {
      // A no-op that leaves *address as given (XNU truncates it, GNU Mach
      // sets it to 0).
      EXPECT_EQ(address, where == Where::kAnywhere ? 0 : requested);
      return requested;
    }
    EXPECT_TRUE(Aligned(address)) << std::hex << address;
    if (where != Where::kAnywhere) {
      EXPECT_EQ(address, TruncPage(requested));  // truncated, not moved
      return requested;
    }
    return address;
  }
};

TEST_P(XnuVmAllocationMatrix, AllocateMainAndPatternTests) {
  const auto [size, where] = GetParam();
  const vm_address_t address = Allocate(size, where);
  // test_nonzero_address_iff_nonzero_size: XNU never hands out address 0
  // (its maps start above it); taskfs's address space starts at 0, and the
  // first fit of an empty task is 0 (docs/conformance.md).
  if (where == Where::kAnywhere && size != 0) {
    EXPECT_EQ(address, 0u);
  }
  if (size == 0) {
    EXPECT_EQ(ReadFile(mount_ / "conformance/maps"), "");
    return;
  }
  const vm_address_t start = TruncPage(address);
  const vm_size_t span = TaskfsSpan(size);
  ExpectZeroFilled(start, span);  // test_zero_filled
  // The page XNU would add for an unaligned request is not allocated.
  if (XnuSpan(address, size) > span) {
    vm_address_t beyond = start + span;
    EXPECT_KR(KERN_SUCCESS, vm_allocate(t_, &beyond, kPage, FALSE));
    EXPECT_KR(KERN_SUCCESS, vm_deallocate(t_, beyond, kPage));
  }
  // test_reallocate_pages: every page of the allocation is taken.
  for (vm_address_t p = start; p < start + span; p += kPage) {
    vm_address_t again = p;
    EXPECT_KR(KERN_NO_SPACE, vm_allocate(t_, &again, kPage, FALSE));
  }
  // The write-and-verify pattern tests, over the whole pages. XNU writes
  // through the pointer from `address` on; taskfs writes whole pages.
  for (Pattern p : {Pattern::kAddressFilled, Pattern::kCheckerboard,
                    Pattern::kReverseCheckerboard, Pattern::kPageEnds,
                    Pattern::kPageInteriors}) {
    const std::string bytes = Fill(p, span, start);
    ASSERT_KR(KERN_SUCCESS, Write(start, bytes));
    EXPECT_TRUE(SameBytes(Read(start, span), bytes));
  }
  // test_deallocate_twice, then the deallocated range is gone (XNU: a
  // SIGSEGV at its start, middle and end; here KERN_INVALID_ADDRESS).
  EXPECT_KR(KERN_SUCCESS, vm_deallocate(t_, address, size));
  EXPECT_KR(KERN_SUCCESS, vm_deallocate(t_, address, size));
  for (vm_address_t p :
       {start, start + TruncPage(span / 2), start + span - kPage}) {
    EXPECT_KR(KERN_INVALID_ADDRESS, ReadCode(p, kPage));
  }
  // test_write_pattern_deallocate_reallocate_zero_filled.
  vm_address_t again = start;
  ASSERT_KR(KERN_SUCCESS, vm_allocate(t_, &again, span, FALSE));
  ExpectZeroFilled(start, span);
}

INSTANTIATE_TEST_SUITE_P(ConformanceSizesAndAddresses, XnuVmAllocationMatrix,
                         SizesAndPlaces(), SizeAndPlaceName);

// --- vm_allocate edge cases (allocate_fixed_size_tests,
// allocate_invalid_large_size_test, allocate_address_error_tests) ---------

TEST_F(Conformance, XnuVmAllocationAllocateEdgeCases) {
  // test_allocate_zero_size: success.
  vm_address_t a = 0;
  EXPECT_KR(KERN_SUCCESS, vm_allocate(t_, &a, 0, TRUE));
  EXPECT_KR(KERN_SUCCESS, vm_deallocate(t_, a, 0));
  // test_allocate_invalid_large_size: the largest size that rounds without
  // overflow: no room.
  a = 0;
  EXPECT_KR(KERN_NO_SPACE, vm_allocate(t_, &a, kMax - kPage + 1, TRUE));
  // test_allocate_overflowing_size: XNU KERN_INVALID_ARGUMENT; taskfs finds
  // no hole of 2^64 - 1 bytes: KERN_NO_SPACE anywhere, and at a fixed
  // address the range overflows: KERN_INVALID_ADDRESS.
  a = 0;
  EXPECT_KR(KERN_NO_SPACE, vm_allocate(t_, &a, kMax, TRUE));
  a = 0;
  EXPECT_KR(KERN_INVALID_ADDRESS, vm_allocate(t_, &a, kMax, FALSE));
  // test_allocate_at_zero: XNU refuses a nonzero size at 0
  // (KERN_INVALID_ADDRESS); taskfs's address space begins at 0.
  for (vm_size_t size : kSizes) {
    a = 0;
    EXPECT_KR(KERN_SUCCESS, vm_allocate(t_, &a, size, FALSE)) << size;
    EXPECT_EQ(a, 0u);
    EXPECT_KR(KERN_SUCCESS, vm_deallocate(t_, 0, size));
  }
  // test_allocate_page_with_highest_address_hint: vm_allocate anywhere
  // ignores the hint and finds the lowest fit.
  a = kMax - kPage + 1;
  EXPECT_KR(KERN_SUCCESS, vm_allocate(t_, &a, kPage, TRUE));
  EXPECT_TRUE(Aligned(a));
  EXPECT_EQ(a, 0u);
  EXPECT_KR(KERN_SUCCESS, vm_deallocate(t_, a, kPage));
  // test_allocate_first_fit_pages: two pages anywhere ascend, and every page
  // from the first to the second is taken.
  vm_address_t first = 0, second = 0;
  ASSERT_KR(KERN_SUCCESS, vm_allocate(t_, &first, kPage, TRUE));
  ASSERT_KR(KERN_SUCCESS, vm_allocate(t_, &second, kPage, TRUE));
  EXPECT_GT(second, first);
  for (vm_address_t p = first; p <= second; p += kPage) {
    vm_address_t again = p;
    EXPECT_NE(vm_allocate(t_, &again, kPage, FALSE), KERN_SUCCESS);
  }
  // test_allocate_in_null_map: XNU MACH_SEND_INVALID_DEST (from MIG);
  // TASK_NULL is no open task here.
  a = 0;
  EXPECT_KR(KERN_INVALID_TASK, vm_allocate(TASK_NULL, &a, kPage, TRUE));
}

// --- vm_deallocate edge cases (deallocate_edge_case_tests) ------------------

TEST_F(Conformance, XnuVmAllocationDeallocateEdgeCases) {
  // test_deallocate_zero_size_ranges: always success.
  for (vm_address_t a : kEdgeAddresses) {
    EXPECT_KR(KERN_SUCCESS, vm_deallocate(t_, a, 0)) << std::hex << a;
  }
  // test_deallocate_rounded_zero_end_ranges: XNU succeeds when the end rounds
  // to 0; in taskfs such a range lies outside the address space (or wraps):
  // KERN_INVALID_ADDRESS (docs/reference.md §2's bounds rule).
  const struct {
    vm_address_t address;
    vm_size_t size;
  } rounded[] = {{0x0, kMax},
                 {0x0, kMax - kPage + 2},
                 {0x1, kMax - 1},
                 {0x1, kMax - kPage + 1},
                 {0x2, kMax - 2},
                 {0x2, kMax - kPage},
                 {kMax - kPage + 1, kPage - 1},
                 {kMax - kPage + 1, 1},
                 {kMax - 1, 1}};
  for (const auto& r : rounded) {
    EXPECT_KR(KERN_INVALID_ADDRESS, vm_deallocate(t_, r.address, r.size))
        << std::hex << r.address << "+" << r.size;
  }
  // test_deallocate_wrapped_around_ranges: XNU KERN_INVALID_ARGUMENT;
  // taskfs KERN_INVALID_ADDRESS (address + size overflows).
  for (const WrappedRange& r : kWrappedRanges) {
    EXPECT_KR(KERN_INVALID_ADDRESS, vm_deallocate(t_, r.address, r.size))
        << std::hex << r.address << "+" << r.size;
  }
  // test_deallocate_suicide: deallocating all of [0, 2^64 - page) kills an
  // XNU process; for a taskfs task the range runs past 2^47:
  // KERN_INVALID_ADDRESS, and the task lives.
  EXPECT_KR(KERN_INVALID_ADDRESS, vm_deallocate(t_, 0, kMax - kPage + 1));
  // test_deallocate_in_null_map.
  EXPECT_KR(KERN_INVALID_TASK, vm_deallocate(TASK_NULL, 0, kPage));
}

// --- vm_read per size and address kind (read_main_tests,
// read_pattern_tests, read_inaccessible_tests) -----------------------------

class XnuVmAllocationReadMatrix : public XnuVmAllocationMatrix {};

TEST_P(XnuVmAllocationReadMatrix, ReadMainPatternAndInaccessibleTests) {
  const auto [size, where] = GetParam();
  // set_up_vm_variables_and_allocate_extra_page: size + 1 bytes.
  const vm_address_t address = Allocate(size + 1, where);
  const bool readable_args = Aligned(address) && size % kPage == 0;
  if (!readable_args) {
    // XNU reads any byte range (test_read_address_offset: the buffer
    // keeps the source's page offset); taskfs's vm_read takes whole pages.
    EXPECT_KR(KERN_INVALID_ARGUMENT, ReadCode(address, size));
    return;
  }
  if (size == 0) {
    EXPECT_KR(KERN_SUCCESS, ReadCode(address, 0));
    return;
  }
  // The read patterns: written, read back, equal.
  for (Pattern p : {Pattern::kAddressFilled, Pattern::kCheckerboard,
                    Pattern::kReverseCheckerboard}) {
    const std::string bytes = Fill(p, size, address);
    ASSERT_KR(KERN_SUCCESS, Write(address, bytes));
    EXPECT_TRUE(SameBytes(Read(address, size), bytes));
  }
  // read_main_tests: the data survives deallocating the source and is
  // this process's own.
  vm_offset_t data = 0;
  mach_msg_type_number_t count = 0;
  ASSERT_KR(KERN_SUCCESS, vm_read(t_, address, size, &data, &count));
  EXPECT_KR(KERN_SUCCESS, vm_deallocate(t_, address, size + 1));
  EXPECT_EQ(std::string(reinterpret_cast<char*>(data), count),
            Fill(Pattern::kReverseCheckerboard, size, address));
  std::memset(reinterpret_cast<void*>(data), 0, count);
  EXPECT_KR(KERN_SUCCESS, vm_deallocate(mach_task_self(), data, count));
  // read_inaccessible_tests, each on a fresh allocation.
  vm_address_t again = address;
  ASSERT_KR(KERN_SUCCESS, vm_allocate(t_, &again, size + 1, FALSE));
  const vm_address_t mid = TruncPage(address + size / 2);
  // test_read_partially_unreadable_range: XNU gives KERN_INVALID_ADDRESS
  // below two pages (its kernel-buffer path); taskfs always
  // KERN_PROTECTION_FAILURE.
  ASSERT_KR(KERN_SUCCESS, vm_protect(t_, mid, kPage, FALSE, VM_PROT_WRITE));
  EXPECT_KR(KERN_PROTECTION_FAILURE, ReadCode(address, size));
  // test_read_partially_deallocated_range.
  ASSERT_KR(KERN_SUCCESS, vm_deallocate(t_, mid, kPage));
  EXPECT_KR(KERN_INVALID_ADDRESS, ReadCode(address, size));
  // test_read_null_map.
  vm_offset_t d;
  mach_msg_type_number_t c;
  EXPECT_KR(KERN_INVALID_TASK, vm_read(TASK_NULL, address, size, &d, &c));
}

INSTANTIATE_TEST_SUITE_P(ConformanceSizesAndAddresses,
                         XnuVmAllocationReadMatrix, SizesAndPlaces(),
                         SizeAndPlaceName);

// --- vm_read edge cases (read_edge_case_tests) ------------------------------

TEST_F(Conformance, XnuVmAllocationReadEdgeCases) {
  vm_offset_t data = 0;
  mach_msg_type_number_t count = 0;
  // The suite's read_edge_size() addresses start at page - 1.
  for (vm_address_t a : kEdgeAddresses) {
    if (a < kPage - 1) continue;
    // test_read_zero_size: XNU succeeds at every address; taskfs checks the
    // address's alignment first (docs/reference.md §2: argument checks, then a
    // zero-size operation succeeds).
    EXPECT_KR(Aligned(a) ? KERN_SUCCESS : KERN_INVALID_ARGUMENT,
              vm_read(t_, a, 0, &data, &count))
        << std::hex << a;
    // test_read_invalid_large_size: 4 GiB or more: KERN_INVALID_ARGUMENT.
    EXPECT_KR(KERN_INVALID_ARGUMENT,
              vm_read(t_, a, vm_size_t{UINT_MAX} + 1, &data, &count))
        << std::hex << a;
  }
  // test_read_wrapped_around_ranges: XNU KERN_INVALID_ADDRESS for all four;
  // taskfs judges alignment first, so the two unaligned ones are
  // KERN_INVALID_ARGUMENT.
  for (const WrappedSource& r : kWrappedSources) {
    EXPECT_KR(r.taskfs, vm_read(t_, r.address, r.size, &data, &count))
        << std::hex << r.address << "+" << r.size;
  }
}

// --- vm_write: destination size x address x buffer size x buffer offset
// (write_edge_case_tests, write_inaccessible_tests, write_main_tests,
// write_pattern_tests) -----------------------------------------------------

using WriteParam = std::tuple<vm_size_t, Where, vm_size_t, int>;
class XnuVmAllocationWrite : public Conformance,
                             public ::testing::WithParamInterface<WriteParam> {
 protected:
  vm_address_t AllocateDestination(vm_size_t size, Where where) {
    vm_address_t address = 0;
    if (where != Where::kAnywhere) {
      FindFreeFixedAddress(size, &address);
    }
    // The extra byte of set_up_vm_variables_and_allocate_extra_page.
    EXPECT_KR(KERN_SUCCESS,
              vm_allocate(t_, &address, size + 1, where == Where::kAnywhere));
    return where == Where::kFixedUnaligned ? address + 1 : address;
  }
};

TEST_P(XnuVmAllocationWrite, WriteEdgeInaccessibleMainAndPatternTests) {
  const auto [size, where, buffer_size, offset] = GetParam();
  const vm_address_t address = AllocateDestination(size, where);
  const vm_size_t allocated = TaskfsSpan(size + 1);
  ProcessBuffer buffer(buffer_size + offset);
  char* data = buffer.base() + offset;
  const auto write = [&](vm_size_t n) {
    return vm_write(t_, address, reinterpret_cast<vm_offset_t>(data),
                    static_cast<mach_msg_type_number_t>(n));
  };
  // What taskfs answers, in docs/reference.md §2's order: the data must be
  // page-aligned in this process (XNU copies any buffer in), the address and
  // size page-aligned for the task (XNU writes any byte range); then the range
  // must be allocated.
  const bool aligned_args = offset == 0 && Aligned(address);
  const kern_return_t expected =
      !aligned_args || buffer_size % kPage != 0 ? KERN_INVALID_ARGUMENT
      : buffer_size == 0 ||
              TruncPage(address) + buffer_size <= TruncPage(address) + allocated
          ? KERN_SUCCESS
          : KERN_INVALID_ADDRESS;

  // test_write_zero_size: success with aligned arguments.
  EXPECT_KR(aligned_args ? KERN_SUCCESS : KERN_INVALID_ARGUMENT, write(0));
  // test_write_null_map (unaligned data is refused before the task is
  // looked at).
  EXPECT_KR(offset == 0 ? KERN_INVALID_TASK : KERN_INVALID_ARGUMENT,
            vm_write(TASK_NULL, address, reinterpret_cast<vm_offset_t>(data),
                     static_cast<mach_msg_type_number_t>(buffer_size)));
  if (buffer_size == 0) return;

  // write_main_tests and write_pattern_tests: a pattern in the buffer lands
  // in the destination; the buffer is unchanged.
  for (Pattern p : {Pattern::kAddressFilled, Pattern::kCheckerboard,
                    Pattern::kReverseCheckerboard}) {
    const std::string bytes =
        Fill(p, buffer_size, reinterpret_cast<vm_address_t>(data));
    std::memcpy(data, bytes.data(), bytes.size());
    EXPECT_KR(expected, write(buffer_size));
    EXPECT_EQ(std::string(data, buffer_size), bytes);
    if (expected == KERN_SUCCESS) {
      EXPECT_TRUE(SameBytes(Read(address, buffer_size), bytes));
    }
  }
  if (expected != KERN_SUCCESS) return;
  // test_zero_filled_write: a zero buffer leaves zeros.
  std::memset(data, 0, buffer_size);
  EXPECT_KR(KERN_SUCCESS, write(buffer_size));
  ExpectZeroFilled(address, size + 1);

  // write_inaccessible_tests.
  // test_write_on_partially_unwritable_range: XNU KERN_INVALID_ADDRESS below
  // two pages (its kernel-buffer path); taskfs KERN_PROTECTION_FAILURE.
  ASSERT_KR(KERN_SUCCESS, vm_protect(t_, address, kPage, FALSE, VM_PROT_READ));
  std::memset(data, 'w', buffer_size);
  EXPECT_KR(KERN_PROTECTION_FAILURE, write(buffer_size));
  ASSERT_KR(KERN_SUCCESS,
            vm_protect(t_, address, kPage, FALSE, VM_PROT_DEFAULT));
  ExpectZeroFilled(address, size + 1);  // nothing written
  // test_write_on_partially_deallocated_range.
  ASSERT_KR(KERN_SUCCESS, vm_deallocate(t_, address, kPage));
  EXPECT_KR(KERN_INVALID_ADDRESS, write(buffer_size));
  vm_address_t again = address;
  ASSERT_KR(KERN_SUCCESS, vm_allocate(t_, &again, kPage, FALSE));
  // test_write_partially_unreadable_buffer: XNU MACH_SEND_INVALID_MEMORY;
  // here the kernel faults on the caller's page while copying it: EFAULT,
  // KERN_INVALID_ADDRESS. (PROT_NONE: on x86 PROT_WRITE alone stays
  // readable.) The requests before the fault are written
  // (docs/reference.md §5.1).
  const vm_size_t mid = TruncPage(buffer_size / 2);
  ASSERT_EQ(mprotect(data + mid, kPage, PROT_NONE), 0);
  EXPECT_KR(KERN_INVALID_ADDRESS, write(buffer_size));
  ASSERT_EQ(mprotect(data + mid, kPage, PROT_READ | PROT_WRITE), 0);
  // test_write_partially_deallocated_buffer: the same.
  ASSERT_EQ(munmap(data + mid, kPage), 0);
  EXPECT_KR(KERN_INVALID_ADDRESS, write(buffer_size));
  EXPECT_TRUE(SameBytes(Read(address, mid), std::string(mid, 'w')));
  ASSERT_NE(mmap(data + mid, kPage, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
            MAP_FAILED);
}

std::vector<WriteParam> WriteRows() {
  std::vector<WriteParam> rows;
  for (vm_size_t size : kSizes) {
    for (Where where :
         {Where::kAnywhere, Where::kFixedAligned, Where::kFixedUnaligned}) {
      for (vm_size_t buffer : kSizes) {
        for (int offset : {0, 1, 2})
          rows.emplace_back(size, where, buffer, offset);
      }
    }
  }
  return rows;
}

INSTANTIATE_TEST_SUITE_P(ConformanceSizesAddressesBuffersOffsets,
                         XnuVmAllocationWrite, ::testing::ValuesIn(WriteRows()),
                         [](const auto& info) {
                           return "size_" +
                                  std::to_string(std::get<0>(info.param)) +
                                  "_" + WhereName(std::get<1>(info.param)) +
                                  "_buffer_" +
                                  std::to_string(std::get<2>(info.param)) +
                                  "_offset_" +
                                  std::to_string(std::get<3>(info.param));
                         });

// --- vm_protect per size and address kind (readprotection_main_tests,
// writeprotection_main_tests, access_readprotected_memory_tests,
// write_writeprotected_memory_tests) ---------------------------------------

class XnuVmAllocationProtectMatrix : public XnuVmAllocationMatrix {};

TEST_P(XnuVmAllocationProtectMatrix, ProtectMainAndAccessTests) {
  const auto [size, where] = GetParam();
  const vm_address_t address = Allocate(size + 1, where);
  const vm_address_t start = TruncPage(address);
  const vm_size_t span = TaskfsSpan(size + 1);
  for (vm_prot_t prot : {VM_PROT_WRITE, VM_PROT_READ}) {
    ASSERT_KR(KERN_SUCCESS, vm_protect(t_, address, size, FALSE, prot));
    // test_verify_readprotection / writeprotection through vm_region.
    vm_address_t r = address;
    vm_size_t rsize = 0;
    vm_prot_t cur = 0, max = 0;
    vm_inherit_t inh = 0;
    boolean_t shared = 0;
    mach_port_t object = 0;
    vm_offset_t off = 0;
    ASSERT_KR(KERN_SUCCESS, vm_region(t_, &r, &rsize, &cur, &max, &inh, &shared,
                                      &object, &off));
    const vm_prot_t removed =
        prot == VM_PROT_WRITE ? VM_PROT_READ : VM_PROT_WRITE;
    if (size != 0) {
      EXPECT_EQ(cur & removed, 0) << "prot " << prot;
    } else {
      EXPECT_NE(cur & removed, 0) << "prot " << prot;  // size 0: unchanged
    }
    // The access tests at the range's start, middle and end page: XNU
    // takes SIGBUS on the pointer; here the call is refused.
    if (size != 0) {
      const vm_address_t last = TruncPage(address + size - 1);
      for (vm_address_t p : {start, TruncPage(address + size / 2), last}) {
        if (prot == VM_PROT_WRITE) {
          EXPECT_KR(KERN_PROTECTION_FAILURE, ReadCode(p, kPage));
        } else {
          EXPECT_KR(KERN_PROTECTION_FAILURE, Write(p, std::string(kPage, 'x')));
        }
      }
    }
    // test_zero_filled_readprotect: restored, still zero-filled.
    ASSERT_KR(KERN_SUCCESS,
              vm_protect(t_, start, span, FALSE, VM_PROT_DEFAULT));
    ExpectZeroFilled(start, span);
  }
}

INSTANTIATE_TEST_SUITE_P(ConformanceSizesAndAddresses,
                         XnuVmAllocationProtectMatrix, SizesAndPlaces(),
                         SizeAndPlaceName);

TEST_F(Conformance, XnuVmAllocationProtectEdgeCases) {
  // test_readprotect_zero_size / test_writeprotect_zero_size: success.
  for (vm_prot_t prot : {VM_PROT_READ, VM_PROT_WRITE}) {
    for (vm_address_t a : kEdgeAddresses) {
      EXPECT_KR(KERN_SUCCESS, vm_protect(t_, a, 0, FALSE, prot))
          << std::hex << a;
    }
    // test_*protect_wrapped_around_ranges: XNU KERN_INVALID_ARGUMENT;
    // taskfs KERN_INVALID_ADDRESS (address + size overflows).
    for (const WrappedRange& r : kWrappedRanges) {
      EXPECT_KR(KERN_INVALID_ADDRESS,
                vm_protect(t_, r.address, r.size, FALSE, prot))
          << std::hex << r.address << "+" << r.size;
    }
  }
}

// --- vm_copy per size, address kind and source size (copy_edge_case_tests,
// copy_inaccessible_tests, copy_main_tests, copy_pattern_tests) -----------

using CopyParam = std::tuple<vm_size_t, Where, vm_size_t>;

class XnuVmAllocationCopyMatrix
    : public Conformance,
      public ::testing::WithParamInterface<CopyParam> {};

TEST_P(XnuVmAllocationCopyMatrix, CopyEdgeInaccessibleMainAndPatternTests) {
  const auto [size, where, copy_size] = GetParam();
  // The source: size + 1 bytes as the address kind says; the destination:
  // copy_size bytes anywhere (the suite's buffer region).
  vm_address_t source = 0;
  if (where != Where::kAnywhere) {
    ASSERT_NO_FATAL_FAILURE(FindFreeFixedAddress(size, &source));
  }
  ASSERT_KR(KERN_SUCCESS,
            vm_allocate(t_, &source, size + 1, where == Where::kAnywhere));
  if (where == Where::kFixedUnaligned) source += 1;
  // Far above the source, so that a copy longer than the source runs into
  // a hole.
  vm_address_t dest = 0x40000000;
  ASSERT_KR(KERN_SUCCESS, vm_allocate(t_, &dest, copy_size + 1, FALSE));
  const vm_size_t source_pages = TaskfsSpan(size + 1);
  const bool aligned = Aligned(source) && copy_size % kPage == 0;
  const kern_return_t expected = !aligned ? KERN_INVALID_ARGUMENT
                                 : copy_size == 0 || copy_size <= source_pages
                                     ? KERN_SUCCESS
                                     : KERN_INVALID_ADDRESS;
  // test_copy_null_map.
  EXPECT_KR(KERN_INVALID_TASK, vm_copy(TASK_NULL, source, copy_size, dest));
  // The copy pattern tests: written in the source, copied, equal.
  for (Pattern p : {Pattern::kAddressFilled, Pattern::kCheckerboard,
                    Pattern::kReverseCheckerboard}) {
    if (expected != KERN_SUCCESS || copy_size == 0) break;
    const std::string bytes = Fill(p, copy_size, source);
    ASSERT_KR(KERN_SUCCESS, Write(source, bytes));
    ASSERT_KR(KERN_SUCCESS, vm_copy(t_, source, copy_size, dest));
    EXPECT_TRUE(SameBytes(Read(dest, copy_size), bytes));
  }
  EXPECT_KR(expected, vm_copy(t_, source, copy_size, dest));
  if (expected != KERN_SUCCESS || copy_size == 0) return;
  // copy_main_tests: the destination keeps the data after the source is
  // deallocated (copy_deallocate), and test_zero_filled_copy_dest.
  const std::string before = Read(source, copy_size);
  ASSERT_KR(KERN_SUCCESS, vm_deallocate(t_, source, size + 1));
  EXPECT_TRUE(SameBytes(Read(dest, copy_size), before));
  vm_address_t again = TruncPage(source);
  ASSERT_KR(KERN_SUCCESS, vm_allocate(t_, &again, size + 1, FALSE));
  ASSERT_KR(KERN_SUCCESS, vm_copy(t_, source, copy_size, dest));
  ExpectZeroFilled(dest, copy_size);

  // copy_inaccessible_tests. XNU answers KERN_INVALID_ADDRESS for ranges
  // below one or two pages (its kernel-buffer path); taskfs judges every
  // size alike.
  const vm_address_t src_mid = TruncPage(source + copy_size / 2);
  const vm_address_t dst_mid = TruncPage(dest + copy_size / 2);
  // test_copy_partially_unreadable_range / source_partially_unreadable.
  ASSERT_KR(KERN_SUCCESS, vm_protect(t_, src_mid, kPage, FALSE, VM_PROT_WRITE));
  EXPECT_KR(KERN_PROTECTION_FAILURE, vm_copy(t_, source, copy_size, dest));
  ASSERT_KR(KERN_SUCCESS,
            vm_protect(t_, src_mid, kPage, FALSE, VM_PROT_DEFAULT));
  // test_copy_dest_partially_unwriteable_region / on_partially_unwritable.
  ASSERT_KR(KERN_SUCCESS, vm_protect(t_, dst_mid, kPage, FALSE, VM_PROT_READ));
  EXPECT_KR(KERN_PROTECTION_FAILURE, vm_copy(t_, source, copy_size, dest));
  ASSERT_KR(KERN_SUCCESS,
            vm_protect(t_, dst_mid, kPage, FALSE, VM_PROT_DEFAULT));
  // test_copy_dest_partially_deallocated_region / on_partially_deallocated.
  ASSERT_KR(KERN_SUCCESS, vm_deallocate(t_, dst_mid, kPage));
  EXPECT_KR(KERN_INVALID_ADDRESS, vm_copy(t_, source, copy_size, dest));
  // test_copy_partially_deallocated_range / source_partially_deallocated.
  ASSERT_KR(KERN_SUCCESS, vm_deallocate(t_, src_mid, kPage));
  again = dst_mid;
  ASSERT_KR(KERN_SUCCESS, vm_allocate(t_, &again, kPage, FALSE));
  EXPECT_KR(KERN_INVALID_ADDRESS, vm_copy(t_, source, copy_size, dest));
}

std::vector<CopyParam> CopyRows() {
  std::vector<CopyParam> rows;
  for (vm_size_t size : kSizes) {
    for (Where where :
         {Where::kAnywhere, Where::kFixedAligned, Where::kFixedUnaligned}) {
      for (vm_size_t copy : kSizes) rows.emplace_back(size, where, copy);
    }
  }
  return rows;
}

INSTANTIATE_TEST_SUITE_P(ConformanceSizesAddressesCopySizes,
                         XnuVmAllocationCopyMatrix,
                         ::testing::ValuesIn(CopyRows()), [](const auto& info) {
                           return "size_" +
                                  std::to_string(std::get<0>(info.param)) +
                                  "_" + WhereName(std::get<1>(info.param)) +
                                  "_copy_" +
                                  std::to_string(std::get<2>(info.param));
                         });

TEST_F(Conformance, XnuVmAllocationCopyEdgeCases) {
  vm_address_t dest = 0;
  ASSERT_KR(KERN_SUCCESS, vm_allocate(t_, &dest, kPage, TRUE));
  for (vm_address_t a : kEdgeAddresses) {
    // test_copy_zero_size: XNU succeeds everywhere; taskfs judges the
    // source address's alignment first.
    EXPECT_KR(Aligned(a) ? KERN_SUCCESS : KERN_INVALID_ARGUMENT,
              vm_copy(t_, a, 0, dest))
        << std::hex << a;
    // test_copy_invalid_large_size: 4 GiB - 2 bytes: XNU
    // KERN_INVALID_ADDRESS; not a page multiple here: KERN_INVALID_ARGUMENT.
    EXPECT_KR(KERN_INVALID_ARGUMENT, vm_copy(t_, a, UINT_MAX - 1, dest))
        << std::hex << a;
  }
  // The same size rounded to pages is judged by the bounds: no such source.
  EXPECT_KR(KERN_INVALID_ADDRESS,
            vm_copy(t_, kPage, vm_size_t{UINT_MAX} - kPage + 1, dest));
  // test_copy_wrapped_around_ranges, as for vm_read.
  for (const WrappedSource& r : kWrappedSources) {
    EXPECT_KR(r.taskfs, vm_copy(t_, r.address, r.size, dest))
        << std::hex << r.address << "+" << r.size;
  }
}

// --- vm_copy and copy-on-write (copy_shared_mode_tests): a copy's source
// that is fresh, shared (a share region of a fork), copied from or copied
// to; after the copy, modify the source, the destination, or the other
// side of the source's earlier sharing or copying: only what was written
// changes. --------------------------------------------------------------

enum class Source { kFresh, kShared, kCopiedFrom, kCopiedTo };
enum class Modify { kSource, kDestination, kOther };

class XnuVmAllocationCopyShared
    : public Conformance,
      public ::testing::WithParamInterface<std::tuple<Source, Modify>> {};

std::string CopySharedName(
    const ::testing::TestParamInfo<std::tuple<Source, Modify>>& info) {
  static const char* const kSources[] = {"fresh", "shared", "copied_from",
                                         "copied_to"};
  static const char* const kModify[] = {"modify_source", "modify_destination",
                                        "modify_other"};
  return std::string(kSources[static_cast<int>(std::get<0>(info.param))]) +
         "_" + kModify[static_cast<int>(std::get<1>(info.param))];
}

TEST_P(XnuVmAllocationCopyShared, OnlyTheWrittenSideChanges) {
  const auto [kind, modify] = GetParam();
  constexpr vm_size_t kSize = 4 * kPage;
  constexpr vm_address_t kSrc = 0x100000, kDst = 0x200000, kOther = 0x300000;
  for (vm_address_t a : {kSrc, kDst, kOther}) {
    vm_address_t x = a;
    ASSERT_KR(KERN_SUCCESS, vm_allocate(t_, &x, kSize, FALSE));
  }
  const std::string original = Fill(Pattern::kAddressFilled, kSize, kSrc);
  ASSERT_KR(KERN_SUCCESS, Write(kSrc, original));
  task_t child = TASK_NULL;
  // Where the "other" side of the source lives, and how it is written.
  task_t other_task = t_;
  vm_address_t other = kOther;
  switch (kind) {
    case Source::kFresh:
      break;
    case Source::kShared:  // mach_vm_map'd shared in XNU; a fork here
      ASSERT_KR(KERN_SUCCESS, vm_inherit(t_, kSrc, kSize, VM_INHERIT_SHARE));
      ASSERT_KR(KERN_SUCCESS, task_create(t_, TRUE, &child));
      other_task = child;
      other = kSrc;
      break;
    case Source::kCopiedFrom:  // the source was copied to kOther before
      ASSERT_KR(KERN_SUCCESS, vm_copy(t_, kSrc, kSize, kOther));
      break;
    case Source::kCopiedTo:  // the source was copied from kOther before
      ASSERT_KR(KERN_SUCCESS, Write(kOther, original));
      ASSERT_KR(KERN_SUCCESS, vm_copy(t_, kOther, kSize, kSrc));
      break;
  }
  ASSERT_KR(KERN_SUCCESS, vm_copy(t_, kSrc, kSize, kDst));
  EXPECT_TRUE(SameBytes(Read(kDst, kSize), original));
  const std::string changed(kSize, 'M');
  std::string src = original, dst = original;
  std::string oth =
      kind == Source::kFresh ? std::string(kSize, '\0') : original;
  switch (modify) {
    case Modify::kSource:
      ASSERT_KR(KERN_SUCCESS, Write(kSrc, changed));
      src = changed;
      if (kind == Source::kShared) oth = changed;  // the same memory
      break;
    case Modify::kDestination:
      ASSERT_KR(KERN_SUCCESS, Write(kDst, changed));
      dst = changed;
      break;
    case Modify::kOther: {
      ProcessBuffer b(kSize);
      std::memcpy(b.base(), changed.data(), kSize);
      ASSERT_KR(KERN_SUCCESS,
                vm_write(other_task, other,
                         reinterpret_cast<vm_offset_t>(b.base()), kSize));
      oth = changed;
      if (kind == Source::kShared) src = changed;
      break;
    }
  }
  EXPECT_TRUE(SameBytes(Read(kSrc, kSize), src));
  EXPECT_TRUE(SameBytes(Read(kDst, kSize), dst));
  if (other_task == t_) {
    EXPECT_TRUE(SameBytes(Read(kOther, kSize), oth));
  }
  if (child != TASK_NULL) {
    EXPECT_KR(KERN_SUCCESS, task_terminate(child));
    EXPECT_KR(KERN_SUCCESS, taskfs_task_close(child));
  }
}

INSTANTIATE_TEST_SUITE_P(
    ConformanceSourcesAndModifications, XnuVmAllocationCopyShared,
    ::testing::Combine(::testing::Values(Source::kFresh, Source::kShared,
                                         Source::kCopiedFrom,
                                         Source::kCopiedTo),
                       ::testing::Values(Modify::kSource, Modify::kDestination,
                                         Modify::kOther)),
    CopySharedName);

// --- XNU tools/tests/xnu_quick_test/machvm_tests.c --------------------------

TEST_F(Conformance, XnuQuickTestMachVm) {
  const int sizes[] = {1, 3, 7, 13, 77, 1223};  // pages, ascending
  vm_address_t region[6] = {};
  for (int i = 0; i < 6; ++i) {
    ASSERT_KR(KERN_SUCCESS,
              vm_allocate(t_, &region[i], sizes[i] * kPage, TRUE));
  }
  // Deallocate one untouched range; scribble on another, then deallocate it.
  ASSERT_KR(KERN_SUCCESS, vm_deallocate(t_, region[4], sizes[4] * kPage));
  ASSERT_KR(KERN_SUCCESS, Write(region[3], std::string(3 * kPage, '\x4f')));
  ASSERT_KR(KERN_SUCCESS, vm_deallocate(t_, region[3], sizes[3] * kPage));
  // The largest: each page holds its index, then read-only.
  std::string big(sizes[5] * kPage, '\0');
  for (int i = 0; i < sizes[5]; ++i) {
    std::memset(&big[i * kPage], static_cast<unsigned char>(i), kPage);
  }
  ASSERT_KR(KERN_SUCCESS, Write(region[5], big));
  ASSERT_KR(KERN_SUCCESS,
            vm_protect(t_, region[5], sizes[5] * kPage, FALSE, VM_PROT_READ));
  // vm_read of its last five pages.
  EXPECT_EQ(Read(region[5] + (sizes[5] - 5) * kPage, 5 * kPage),
            big.substr((sizes[5] - 5) * kPage));
  // vm_read_list of two ranges from page 10 (taskfs has no vm_read_list:
  // two vm_reads), into the freed slots 3 and 4.
  const std::string list0 = Read(region[5] + 10 * kPage, sizes[3] * kPage);
  const std::string list1 =
      Read(region[5] + (10 + sizes[3]) * kPage, sizes[4] * kPage);
  EXPECT_EQ(list0, big.substr(10 * kPage, sizes[3] * kPage));
  EXPECT_EQ(list1, big.substr((10 + sizes[3]) * kPage, sizes[4] * kPage));
  // vm_read_overwrite then vm_copy "should be about the same": here a write
  // of what was read into region 0, then vm_copy from 0 to 1.
  ASSERT_KR(KERN_SUCCESS, Write(region[0], list0.substr(0, kPage)));
  ASSERT_KR(KERN_SUCCESS, vm_copy(t_, region[0], kPage, region[1]));
  EXPECT_TRUE(SameBytes(Read(region[1], kPage), list0.substr(0, kPage)));
  // vm_write of one page (the Mach-O header there) into region 2.
  std::string header(kPage, '\0');
  const std::uint32_t magic = 0xfeedfacf;  // MH_MAGIC_64
  std::memcpy(&header[0], &magic, 4);
  ASSERT_KR(KERN_SUCCESS, Write(region[2], header));
  std::uint32_t got = 0;
  std::memcpy(&got, Read(region[2], kPage).data(), 4);
  EXPECT_EQ(got, magic);
  // vm_region at page 7 of the read-only range: protection VM_PROT_READ.
  // XNU expects a 10-page sub-region (its vm_read_list split the map
  // entry); taskfs's regions are maximal runs of equal attributes, and a
  // read splits nothing: the whole range.
  vm_address_t address = region[5] + 7 * kPage;
  vm_size_t size = kPage;
  vm_prot_t prot = 0, max_prot = 0;
  vm_inherit_t inheritance = 0;
  boolean_t shared = TRUE;
  mach_port_t object = 1;
  vm_offset_t offset = 1;
  ASSERT_KR(KERN_SUCCESS, vm_region(t_, &address, &size, &prot, &max_prot,
                                    &inheritance, &shared, &object, &offset));
  EXPECT_EQ(address, region[5]);
  EXPECT_EQ(size, sizes[5] * kPage);
  EXPECT_EQ(prot, VM_PROT_READ);
  EXPECT_EQ(shared, FALSE);
  EXPECT_EQ(object, MACH_PORT_NULL);
  EXPECT_EQ(offset, 0u);
  for (int i : {0, 1, 2, 5}) {
    EXPECT_KR(KERN_SUCCESS, vm_deallocate(t_, region[i], sizes[i] * kPage));
  }
}

// --- GNU Mach tests/test-vm.c
// -------------------------------------------------

class ConformanceGnuMachTestVm : public Conformance {
 protected:
  ConformanceGnuMachTestVm()
      : Conformance({"-o", "tasks=none,memory_limit=8M"}) {}
};

TEST_F(ConformanceGnuMachTestVm, VmLimit) {
  // GNU Mach limits a task's virtual size (vm_set_size_limit) and refuses
  // an allocation past it with KERN_NO_SPACE. taskfs has no per-task
  // virtual limit: the mount's memory_limit caps memory actually held, so
  // allocating (zero-fill, free) succeeds and writing past the limit is
  // KERN_RESOURCE_SHORTAGE.
  vm_address_t small = 0;
  ASSERT_KR(KERN_SUCCESS, vm_allocate(t_, &small, 128 << 10, TRUE));
  ASSERT_KR(KERN_SUCCESS, vm_deallocate(t_, small, 128 << 10));
  vm_address_t big = 0;
  ASSERT_KR(KERN_SUCCESS, vm_allocate(t_, &big, vm_size_t{256} << 20, TRUE));
  EXPECT_KR(KERN_RESOURCE_SHORTAGE, Write(big, std::string(16 << 20, 'l')));
  EXPECT_KR(KERN_SUCCESS, vm_deallocate(t_, big, vm_size_t{256} << 20));
  // Dropping a range to VM_PROT_NONE (set_maximum) succeeds...
  vm_address_t mem = 0;
  ASSERT_KR(KERN_SUCCESS, vm_allocate(t_, &mem, 512 << 20, TRUE));
  EXPECT_KR(KERN_SUCCESS, vm_protect(t_, mem, 512 << 20, TRUE, VM_PROT_NONE));
  // ...and the maximum cannot be raised again: KERN_PROTECTION_FAILURE.
  EXPECT_KR(KERN_PROTECTION_FAILURE,
            vm_protect(t_, mem, 512 << 20, TRUE, VM_PROT_ALL));
  EXPECT_KR(KERN_PROTECTION_FAILURE,
            vm_protect(t_, mem, 512 << 20, FALSE, VM_PROT_READ));
  EXPECT_KR(KERN_SUCCESS, vm_deallocate(t_, mem, 512 << 20));
}

TEST_F(ConformanceGnuMachTestVm, ZeroSizeCallsSucceed) {
  // vm/vm_user.c: vm_allocate and vm_deallocate of size 0 succeed.
  vm_address_t a = 0;
  EXPECT_KR(KERN_SUCCESS, vm_allocate(t_, &a, 0, TRUE));
  EXPECT_KR(KERN_SUCCESS, vm_deallocate(t_, 0x1000, 0));
}

}  // namespace
}  // namespace taskfs::testing

// --- The XNU flavor (-o flavor=xnu): vm_allocation.c's read, write and copy
// matrices and edge cases, asserting XNU's results: any byte range, zero
// sizes anywhere, wrapped ranges KERN_INVALID_ADDRESS. The one XNU result
// not followed is its kernel-buffer path's KERN_INVALID_ADDRESS for small
// partly protected ranges (docs/conformance.md). ------------------------------

namespace taskfs::testing {
namespace {

class ConformanceXnu : public Conformance {
 protected:
  ConformanceXnu() : Conformance({"-o", "tasks=none,flavor=xnu"}) {}

  // vm_read of any byte range: the bytes, or "" after a failed expectation.
  std::string ReadBytes(vm_address_t address, vm_size_t size) {
    vm_offset_t data = 0;
    mach_msg_type_number_t count = 0;
    const kern_return_t kr = vm_read(t_, address, size, &data, &count);
    EXPECT_KR(KERN_SUCCESS, kr)
        << "vm_read(0x" << std::hex << address << ", 0x" << size << ")";
    if (kr != KERN_SUCCESS) return "";
    EXPECT_EQ(count, size);
    std::string out(reinterpret_cast<const char*>(data), count);
    if (count != 0) {
      EXPECT_KR(KERN_SUCCESS, vm_deallocate(mach_task_self(), data, count));
    }
    return out;
  }
  // vm_write of bytes from this process's memory at `offset` bytes past a
  // page boundary (the suite's buffer offsets 0, 1, 2).
  kern_return_t WriteAt(vm_address_t address, const std::string& bytes,
                        std::size_t offset) {
    ProcessBuffer b(bytes.size() + offset);
    std::memcpy(b.base() + offset, bytes.data(), bytes.size());
    return vm_write(t_, address,
                    reinterpret_cast<vm_offset_t>(b.base() + offset),
                    static_cast<mach_msg_type_number_t>(bytes.size()));
  }
};

using XnuRow = std::tuple<vm_size_t, Where>;

class ConformanceXnuMatrix : public ConformanceXnu,
                             public ::testing::WithParamInterface<XnuRow> {
 protected:
  // size + 1 bytes (set_up_vm_variables_and_allocate_extra_page) as the
  // row says; the address the suite uses (allocated + 1 when unaligned).
  vm_address_t Allocate(vm_size_t size, Where where) {
    vm_address_t address = 0;
    if (where != Where::kAnywhere) FindFreeFixedAddress(size + 1, &address);
    EXPECT_KR(KERN_SUCCESS,
              vm_allocate(t_, &address, size + 1, where == Where::kAnywhere));
    return where == Where::kFixedUnaligned ? address + 1 : address;
  }
};

TEST_P(ConformanceXnuMatrix, ReadWriteAndCopyOfEverySizeClass) {
  const auto [size, where] = GetParam();
  const vm_address_t address = Allocate(size, where);
  // read/write main and pattern tests: written (from buffers at offsets 0,
  // 1 and 2), read back, equal, whatever the alignment.
  for (std::size_t offset : {0, 1, 2}) {
    for (Pattern p : {Pattern::kAddressFilled, Pattern::kCheckerboard,
                      Pattern::kReverseCheckerboard}) {
      const std::string bytes = Fill(p, size, address + offset);
      ASSERT_KR(KERN_SUCCESS, WriteAt(address, bytes, offset));
      EXPECT_TRUE(SameBytes(ReadBytes(address, size), bytes));
    }
  }
  // The bytes around the range are untouched: the extra byte after it,
  // where the allocation holds it.
  const vm_address_t start =
      where == Where::kFixedUnaligned ? address - 1 : address;
  if (address + size < start + RoundPage(size + 1)) {
    EXPECT_EQ(ReadBytes(address + size, 1), std::string(1, '\0'));
  }
  // copy_main_tests into a destination at the same page offset and at
  // another one; the copy keeps the data after the source goes.
  const std::string bytes = Fill(Pattern::kAddressFilled, size, address);
  ASSERT_KR(KERN_SUCCESS, WriteAt(address, bytes, 0));
  for (vm_address_t dest_offset : {vm_address_t{0}, vm_address_t{3}}) {
    vm_address_t dest = 0x40000000;
    ASSERT_KR(KERN_SUCCESS, vm_allocate(t_, &dest, size + 4, FALSE));
    dest += dest_offset + (address % kPage);
    ASSERT_KR(KERN_SUCCESS, vm_copy(t_, address, size, dest));
    EXPECT_TRUE(SameBytes(ReadBytes(dest, size), bytes));
    ASSERT_KR(KERN_SUCCESS, vm_deallocate(t_, 0x40000000, size + kPage + 4));
  }
  if (size == 0) return;
  // read/write/copy inaccessible tests: the page in the middle read- or
  // write-protected, then deallocated. XNU's small ranges answer
  // KERN_INVALID_ADDRESS on its kernel-buffer path; taskfs follows the
  // lowest offending page at every size.
  const vm_address_t mid = TruncPage(address + size / 2);
  vm_address_t dest = 0x40000000;
  ASSERT_KR(KERN_SUCCESS, vm_allocate(t_, &dest, size + kPage, FALSE));
  ASSERT_KR(KERN_SUCCESS, vm_protect(t_, mid, kPage, FALSE, VM_PROT_WRITE));
  EXPECT_KR(KERN_PROTECTION_FAILURE, ReadCode(address, size));
  EXPECT_KR(KERN_PROTECTION_FAILURE, vm_copy(t_, address, size, dest));
  ASSERT_KR(KERN_SUCCESS, vm_protect(t_, mid, kPage, FALSE, VM_PROT_READ));
  EXPECT_KR(KERN_PROTECTION_FAILURE, WriteAt(address, bytes, 1));
  EXPECT_KR(KERN_PROTECTION_FAILURE, vm_copy(t_, dest, size, address));
  EXPECT_TRUE(SameBytes(ReadBytes(address, size), bytes));  // unchanged
  ASSERT_KR(KERN_SUCCESS, vm_deallocate(t_, mid, kPage));
  EXPECT_KR(KERN_INVALID_ADDRESS, ReadCode(address, size));
  EXPECT_KR(KERN_INVALID_ADDRESS, WriteAt(address, bytes, 2));
  EXPECT_KR(KERN_INVALID_ADDRESS, vm_copy(t_, address, size, dest));
  EXPECT_KR(KERN_INVALID_ADDRESS, vm_copy(t_, dest, size, address));
}

INSTANTIATE_TEST_SUITE_P(ConformanceXnuSizesAndAddresses, ConformanceXnuMatrix,
                         SizesAndPlaces(), SizeAndPlaceName);

TEST_F(ConformanceXnu, ReadWriteAndCopyEdgeCases) {
  vm_offset_t data = 0;
  mach_msg_type_number_t count = 0;
  vm_address_t dest = 0;
  ASSERT_KR(KERN_SUCCESS, vm_allocate(t_, &dest, kPage, TRUE));
  for (vm_address_t a : kEdgeAddresses) {
    // test_read_zero_size, test_write_zero_size, test_copy_zero_size: XNU
    // succeeds at every address.
    EXPECT_KR(KERN_SUCCESS, vm_read(t_, a, 0, &data, &count)) << std::hex << a;
    EXPECT_KR(KERN_SUCCESS, WriteAt(a, "", 1)) << std::hex << a;
    EXPECT_KR(KERN_SUCCESS, vm_copy(t_, a, 0, dest)) << std::hex << a;
    // test_read_invalid_large_size.
    EXPECT_KR(KERN_INVALID_ARGUMENT,
              vm_read(t_, a, vm_size_t{UINT_MAX} + 1, &data, &count))
        << std::hex << a;
    // test_copy_invalid_large_size: no source that large.
    EXPECT_KR(KERN_INVALID_ADDRESS, vm_copy(t_, a, UINT_MAX - 1, dest))
        << std::hex << a;
  }
  // test_read_wrapped_around_ranges, test_copy_wrapped_around_ranges: all
  // four KERN_INVALID_ADDRESS, as in XNU.
  for (const WrappedSource& r : kWrappedSources) {
    EXPECT_KR(KERN_INVALID_ADDRESS,
              vm_read(t_, r.address, r.size, &data, &count))
        << std::hex << r.address << "+" << r.size;
    EXPECT_KR(KERN_INVALID_ADDRESS, vm_copy(t_, r.address, r.size, dest))
        << std::hex << r.address << "+" << r.size;
  }
}

}  // namespace
}  // namespace taskfs::testing
