// The copy-on-write write path and the reads below the facade.
#include "vmcore/vm_fault.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "tests/vmcore/engine_test_util.h"
#include "vmcore/pinned_pages.h"

namespace taskfs::vm {
namespace {

using engine_test::Entries;
using engine_test::Fill;
using engine_test::kPage;
using engine_test::MakeSystem;
using engine_test::MakeTask;
using engine_test::Pages;
using engine_test::R;

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
  EXPECT_EQ(system->pages().pin_waiters(), 0u);  // no pin in the way
}

// At the limit, a write held up only by a pin waits for it, counted in
// pin_waiters() meanwhile, and then writes the page in place.
TEST(VmFaultTest, WriteAtTheLimitWaitsForAPinAndIsCountedMeanwhile) {
  VmConfig config;
  config.page_size = kPage;
  config.address_bits = 32;
  config.page_limit = kPage;
  config.pin_wait = std::chrono::seconds(10);
  VmSystem system(config);
  auto task = MakeTask(system, "t");
  AddressMap& map = task->map();
  map.AllocateRange(R(map, 0, kPage));
  ASSERT_EQ(Fill(system, map, 0, kPage, 'a'), KERN_SUCCESS);
  PinnedPages pinned;
  const PageRange range = R(map, 0, kPage);
  ReadPinned(system, Entries(map, range), range, &pinned);
  std::atomic<KernReturn> result{KERN_FAILURE};
  std::thread writer([&] {
    std::shared_lock lock(task->mu());
    result = Fill(system, map, 0, kPage, 'b');
  });
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (system.pages().pin_waiters() == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_EQ(system.pages().pin_waiters(), 1u);
  pinned.Release();
  writer.join();
  EXPECT_EQ(result.load(), KERN_SUCCESS);
  EXPECT_EQ(system.pages().pin_waiters(), 0u);
  EXPECT_EQ(system.pages().live_pages(), 1u);
  EXPECT_EQ(Pages(system, map, 0, 1), "b");
}

}  // namespace
}  // namespace taskfs::vm
