// Helpers for the tests of the engine below the facade (vm_fault, vm_copy,
// vm_fork, vm_statistics, locks): a system with tasks, ranges, and reading or
// writing a map's pages without the facade's checks.
#ifndef TASKFS_TESTS_VMCORE_ENGINE_TEST_UTIL_H_
#define TASKFS_TESTS_VMCORE_ENGINE_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <cstddef>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "vmcore/address_map.h"
#include "vmcore/page_range.h"
#include "vmcore/task.h"
#include "vmcore/vm_fault.h"
#include "vmcore/vm_system.h"

namespace taskfs::vm::engine_test {

inline constexpr std::uint64_t kPage = 4096;

inline std::unique_ptr<VmSystem> MakeSystem(std::uint64_t limit_pages = 0) {
  VmConfig config;
  config.page_size = kPage;
  config.address_bits = 32;
  config.page_limit = limit_pages * kPage;
  config.max_tasks = 8;
  return std::make_unique<VmSystem>(config);
}

inline std::shared_ptr<Task> MakeTask(VmSystem& system, const char* name) {
  KernResult<std::shared_ptr<Task>> task = system.AddTask(name);
  EXPECT_EQ(task.code(), KERN_SUCCESS);
  return task.ok() ? task.value() : nullptr;
}

inline PageRange R(const AddressMap& map, vm_address_t start, vm_size_t size) {
  KernResult<PageRange> r = PageRange::Exact(map.geometry(), start, size);
  EXPECT_EQ(r.code(), KERN_SUCCESS);
  return r.ok() ? r.value() : PageRange();
}

// The entries of an allocated range, as the facade's check collects them.
inline std::vector<const MapEntry*> Entries(const AddressMap& map,
                                            const PageRange& range) {
  std::vector<const MapEntry*> entries;
  EXPECT_EQ(map.CheckRange(range,
                           [&](const MapEntry& e) {
                             entries.push_back(&e);
                             return KERN_SUCCESS;
                           }),
            KERN_SUCCESS);
  return entries;
}

// The first byte of each page of an allocated range, '0' for a zero byte:
// "ab0" for three pages.
inline std::string Pages(VmSystem& system, const AddressMap& map,
                         vm_address_t start, std::uint64_t pages) {
  const PageRange range = R(map, start, pages * kPage);
  std::vector<std::byte> bytes(range.size());
  ReadInto(system, Entries(map, range), range, bytes);
  std::string out;
  for (std::uint64_t p = 0; p < pages; ++p) {
    const char c = static_cast<char>(bytes[p * kPage]);
    out += c == 0 ? '0' : c;
  }
  return out;
}

// Fills whole pages of an allocated range with byte.
inline KernReturn Fill(VmSystem& system, const AddressMap& map,
                       vm_address_t start, vm_size_t size, char byte) {
  return WriteBytes(system, map, R(map, start, size), start, size,
                    WriteSource::Fill(static_cast<unsigned char>(byte)));
}

}  // namespace taskfs::vm::engine_test

#endif  // TASKFS_TESTS_VMCORE_ENGINE_TEST_UTIL_H_
