// The copy-on-write write path and the reads below the facade.
#include "vmcore/vm_fault.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "tests/vmcore/engine_test_util.h"
#include "vmcore/pinned_pages.h"

namespace taskfs::vm {
namespace {

// The engine tests' helpers (engine_test_util.h).
using namespace engine_test;  // NOLINT(build/namespaces)

TEST(VmFaultTest, UnwrittenPagesReadAsZerosAndCostNothing) {
  auto system = MakeSystem();
  auto task = MakeTask(*system, "t");
  AddressMap& map = task->map();
  map.AllocateRange(R(map, 0, 4 * kPage));
  EXPECT_EQ(Pages(*system, map, 0, 4), "0000");
  PinnedPages pinned;
  const PageRange range = R(map, 0, 4 * kPage);
  ReadPinned(*system, Entries(map, range), range, &pinned);
  EXPECT_EQ(pinned.size(), 4 * kPage);
  EXPECT_EQ(pinned.iov().size(), 4u);  // the zero page, four times
  EXPECT_EQ(system->pages().live_pages(), 0u);
}

TEST(VmFaultTest, WriteTakesOneFreshPagePerUnwrittenPage) {
  auto system = MakeSystem();
  auto task = MakeTask(*system, "t");
  AddressMap& map = task->map();
  map.AllocateRange(R(map, 0, 4 * kPage));
  ASSERT_EQ(Fill(*system, map, kPage, 2 * kPage, 'a'), KERN_SUCCESS);
  EXPECT_EQ(system->pages().live_pages(), 2u);
  ASSERT_EQ(Fill(*system, map, kPage, 2 * kPage, 'b'), KERN_SUCCESS);
  EXPECT_EQ(system->pages().live_pages(), 2u);  // written in place
  EXPECT_EQ(Pages(*system, map, 0, 4), "0bb0");
}

TEST(VmFaultTest, PartialWriteKeepsTheRestOfThePage) {
  auto system = MakeSystem();
  auto task = MakeTask(*system, "t");
  AddressMap& map = task->map();
  map.AllocateRange(R(map, 0, 2 * kPage));
  ASSERT_EQ(Fill(*system, map, 0, 2 * kPage, 'a'), KERN_SUCCESS);
  const char text[] = "xyz";
  ASSERT_EQ(WriteBytes(*system, map, R(map, 0, 2 * kPage), kPage - 1, 3,
                       WriteSource::Bytes(text)),
            KERN_SUCCESS);
  std::vector<std::byte> bytes(2 * kPage);
  const PageRange range = R(map, 0, 2 * kPage);
  ReadInto(*system, Entries(map, range), range, bytes);
  EXPECT_EQ(static_cast<char>(bytes[kPage - 2]), 'a');
  EXPECT_EQ(static_cast<char>(bytes[kPage - 1]), 'x');
  EXPECT_EQ(static_cast<char>(bytes[kPage]), 'y');
  EXPECT_EQ(static_cast<char>(bytes[kPage + 1]), 'z');
  EXPECT_EQ(static_cast<char>(bytes[kPage + 2]), 'a');
}

// A streamed write (at least kStreamBytes) gives the same bytes as a cached
// one.
TEST(VmFaultTest, StreamedWriteStoresTheSameBytes) {
  auto system = MakeSystem();
  auto task = MakeTask(*system, "t");
  AddressMap& map = task->map();
  const vm_size_t size = WriteSource::kStreamBytes;
  map.AllocateRange(R(map, 0, size));
  std::vector<unsigned char> data(size);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = i * 7 + 1;
  ASSERT_EQ(WriteBytes(*system, map, R(map, 0, size), 0, size,
                       WriteSource::StreamedBytes(data.data())),
            KERN_SUCCESS);
  std::vector<std::byte> back(size);
  const PageRange range = R(map, 0, size);
  ReadInto(*system, Entries(map, range), range, back);
  EXPECT_EQ(std::memcmp(back.data(), data.data(), size), 0);
}

// A pinned page is copied, never written in place: the pinned view keeps
// the old bytes.
TEST(VmFaultTest, PinnedPageIsCopiedOnWrite) {
  auto system = MakeSystem();
  auto task = MakeTask(*system, "t");
  AddressMap& map = task->map();
  map.AllocateRange(R(map, 0, kPage));
  ASSERT_EQ(Fill(*system, map, 0, kPage, 'a'), KERN_SUCCESS);
  PinnedPages pinned;
  const PageRange range = R(map, 0, kPage);
  ReadPinned(*system, Entries(map, range), range, &pinned);
  ASSERT_EQ(Fill(*system, map, 0, kPage, 'b'), KERN_SUCCESS);
  EXPECT_EQ(system->pages().live_pages(), 2u);
  char view[kPage];
  pinned.CopyTo(view);
  EXPECT_EQ(view[0], 'a');
  EXPECT_EQ(Pages(*system, map, 0, 1), "b");
  pinned.Release();
  EXPECT_EQ(system->pages().live_pages(), 1u);
}

TEST(VmFaultTest, RefusedWriteChangesNothing) {
  auto system = MakeSystem(/*limit_pages=*/2);
  auto task = MakeTask(*system, "t");
  AddressMap& map = task->map();
  map.AllocateRange(R(map, 0, 3 * kPage));
  ASSERT_EQ(Fill(*system, map, 0, kPage, 'a'), KERN_SUCCESS);
  EXPECT_EQ(Fill(*system, map, 0, 3 * kPage, 'b'), KERN_RESOURCE_SHORTAGE);
  EXPECT_EQ(Pages(*system, map, 0, 3), "a00");
  EXPECT_EQ(system->pages().live_pages(), 1u);
}

// A system whose memory limit is 64 pages and whose pin reserve is
// pin_reserve, with one task "t" whose first 64 pages are allocated and
// written with 'a' one at a time until the limit refused one: *written.
struct AtTheLimit {
  explicit AtTheLimit(std::uint64_t pin_reserve) {
    VmConfig config;
    config.page_size = kPage;
    config.address_bits = 32;
    config.memory_limit = 64 * kPage;
    config.pin_reserve = pin_reserve;
    system = std::make_unique<VmSystem>(config);
    task = MakeTask(*system, "t");
    task->map().AllocateRange(R(task->map(), 0, 64 * kPage));
    while (written < 64 && Fill(*system, task->map(), written * kPage, kPage,
                                'a') == KERN_SUCCESS) {
      ++written;
    }
  }

  // What a write at the limit must leave as it was, or give back.
  struct Figures {
    std::uint64_t used, pin_reserve_used, live_pages, own_bytes;
    bool operator==(const Figures&) const = default;
  };
  Figures Now() const {
    return {system->budget().used(), system->budget().pin_reserve_used(),
            system->pages().live_pages(), system->pages().own_bytes()};
  }

  std::unique_ptr<VmSystem> system;
  std::shared_ptr<Task> task;
  std::uint64_t written = 0;
};

void PrintTo(const AtTheLimit::Figures& f, std::ostream* os) {
  *os << "used " << f.used << ", pin reserve used " << f.pin_reserve_used
      << ", live pages " << f.live_pages << ", own bytes " << f.own_bytes;
}

// At the limit, a rewrite of a page that only a reader's pin keeps from
// being written in place copies it from the pin reserve: no refusal, no
// wait. When the pin goes, so does the old page, and every figure is back
// to what it was before the read.
TEST(VmFaultTest, PinnedCopyAtTheLimitDrawsOnThePinReserve) {
  AtTheLimit s(2 * kPage);
  AddressMap& map = s.task->map();
  ASSERT_GT(s.written, 32u);
  ASSERT_LT(s.written, 64u);
  const AtTheLimit::Figures before = s.Now();
  // The limit is reached: a new page is refused, and so is a rewrite of an
  // unpinned page together with a new one.
  EXPECT_EQ(Fill(*s.system, map, s.written * kPage, kPage, 'x'),
            KERN_RESOURCE_SHORTAGE);
  EXPECT_EQ(Fill(*s.system, map, (s.written - 1) * kPage, 2 * kPage, 'x'),
            KERN_RESOURCE_SHORTAGE);

  PinnedPages pinned;
  const PageRange first = R(map, 0, kPage);
  ReadPinned(*s.system, Entries(map, first), first, &pinned);
  ASSERT_EQ(Fill(*s.system, map, 0, kPage, 'b'), KERN_SUCCESS);
  AtTheLimit::Figures during = before;
  during.pin_reserve_used = kPage;  // the copy, past the limit
  during.live_pages = before.live_pages + 1;
  EXPECT_EQ(s.Now(), during);
  EXPECT_EQ(Pages(*s.system, map, 0, 2), "ba");
  char view[kPage];
  pinned.CopyTo(view);
  EXPECT_EQ(view[0], 'a');  // the reader's snapshot

  // The copy is written in place from now on: it is the task's alone.
  ASSERT_EQ(Fill(*s.system, map, 0, kPage, 'c'), KERN_SUCCESS);
  EXPECT_EQ(s.Now(), during);

  pinned.Release();  // the old page goes: the reserve is repaid
  EXPECT_EQ(s.Now(), before);
  EXPECT_EQ(Pages(*s.system, map, 0, 2), "ca");
  EXPECT_EQ(Fill(*s.system, map, s.written * kPage, kPage, 'x'),
            KERN_RESOURCE_SHORTAGE);
  EXPECT_EQ(s.Now(), before);
}

// Copies beyond the reserve are refused, all or nothing: not one byte, page
// or charged byte changes, and the readers' views stay as they were.
TEST(VmFaultTest, PinnedCopiesBeyondThePinReserveAreRefused) {
  AtTheLimit s(kPage);
  AddressMap& map = s.task->map();
  // The reserve holds a page and a slab's records: one more page than it
  // holds, all pinned.
  const std::uint64_t too_many = s.system->budget().pin_reserve() / kPage + 1;
  ASSERT_GT(s.written, too_many);
  const AtTheLimit::Figures before = s.Now();
  PinnedPages pinned;
  const PageRange range = R(map, 0, too_many * kPage);
  ReadPinned(*s.system, Entries(map, range), range, &pinned);

  EXPECT_EQ(Fill(*s.system, map, 0, too_many * kPage, 'b'),
            KERN_RESOURCE_SHORTAGE);
  EXPECT_EQ(s.Now(), before);
  EXPECT_EQ(Pages(*s.system, map, 0, too_many), std::string(too_many, 'a'));

  // One fewer fits.
  ASSERT_EQ(Fill(*s.system, map, 0, (too_many - 1) * kPage, 'b'), KERN_SUCCESS);
  EXPECT_EQ(s.system->budget().pin_reserve_used(), (too_many - 1) * kPage);
  EXPECT_EQ(s.system->budget().used(), before.used);
  std::vector<char> view(too_many * kPage);
  pinned.CopyTo(view.data());
  EXPECT_EQ(view, std::vector<char>(too_many * kPage, 'a'));
  pinned.Release();
  EXPECT_EQ(s.Now(), before);
}

// Without a reserve, the copy is refused at once: the write does not wait
// for the pin.
TEST(VmFaultTest, PinnedCopyWithoutAPinReserveIsRefused) {
  AtTheLimit s(0);
  AddressMap& map = s.task->map();
  const AtTheLimit::Figures before = s.Now();
  PinnedPages pinned;
  const PageRange first = R(map, 0, kPage);
  ReadPinned(*s.system, Entries(map, first), first, &pinned);
  EXPECT_EQ(Fill(*s.system, map, 0, kPage, 'b'), KERN_RESOURCE_SHORTAGE);
  EXPECT_EQ(s.Now(), before);
  pinned.Release();
  EXPECT_EQ(Fill(*s.system, map, 0, kPage, 'b'), KERN_SUCCESS);  // in place
  EXPECT_EQ(s.Now(), before);
}

}  // namespace
}  // namespace taskfs::vm
