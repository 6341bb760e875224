// saved_state (saved_state.h): a save restored is the same tasks, regions,
// bytes and sharing; a damaged, truncated or foreign save is refused with
// the reason; a save at the memory limit still works.
#include "vmcore/saved_state.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "vmcore/vm_system.h"
#include "vmcore/vm_user.h"

namespace taskfs::vm {
namespace {

constexpr std::uint64_t kPage = 4096;

class StringSink : public StateSink {
 public:
  bool Write(const void* data, std::size_t size) override {
    if (fail_after_ != 0 && bytes.size() + size > fail_after_) return false;
    bytes.append(static_cast<const char*>(data), size);
    return true;
  }
  std::string bytes;
  std::size_t fail_after_ = 0;
};

class StringSource : public StateSource {
 public:
  explicit StringSource(std::string bytes) : bytes_(std::move(bytes)) {}
  std::ptrdiff_t Read(void* data, std::size_t size) override {
    // Short reads, as a pipe or a file's end gives them.
    const std::size_t n = std::min({size, bytes_.size() - at_, kChunk});
    std::memcpy(data, bytes_.data() + at_, n);
    at_ += n;
    return static_cast<std::ptrdiff_t>(n);
  }

 private:
  static constexpr std::size_t kChunk = 1000;
  std::string bytes_;
  std::size_t at_ = 0;
};

std::unique_ptr<VmSystem> MakeSystem(std::uint64_t limit = 0) {
  VmConfig config;
  config.page_size = kPage;
  config.address_bits = 32;
  config.max_tasks = 16;
  config.memory_limit = limit;
  return std::make_unique<VmSystem>(config);
}

std::shared_ptr<Task> Made(KernResult<std::shared_ptr<Task>> r) {
  EXPECT_EQ(r.code(), KERN_SUCCESS);
  return r.ok() ? std::move(r).value() : nullptr;
}

void Alloc(Task& task, vm_address_t address, vm_size_t size) {
  ASSERT_EQ(vm_allocate(task, &address, size, false), KERN_SUCCESS);
}

void Write(Task& task, vm_address_t address, char byte, vm_size_t size) {
  std::vector<char> data(size, byte);
  for (std::size_t i = 0; i < data.size(); i += 7)
    data[i] ^= static_cast<char>(i);
  ASSERT_EQ(vm_write(task, address, data.data(), size), KERN_SUCCESS);
}

std::string Save(VmSystem& system,
                 std::map<std::string, std::string> extra = {}) {
  std::vector<SavedTask> tasks;
  for (const auto& task : system.Tasks())
    tasks.push_back({task, extra[task->name()]});
  StringSink sink;
  EXPECT_EQ(SaveState(system, tasks, sink), "");
  return sink.bytes;
}

struct Restored {
  std::unique_ptr<VmSystem> system;
  std::vector<std::string> names;
  std::map<std::string, std::string> extra;
  std::string error;
};

Restored Restore(const std::string& bytes) {
  Restored r;
  r.system = MakeSystem();
  StringSource source(bytes);
  r.error = RestoreState(
      *r.system, source,
      [&](const std::shared_ptr<Task>& task, std::string_view extra) {
        r.names.push_back(task->name());
        r.extra[task->name()] = std::string(extra);
      });
  return r;
}

// Everything a task shows: its regions, then every allocated page's
// state and bytes (unreadable ones made readable for a moment: vm_protect
// within the maximum, or read through the page query only).
struct Picture {
  std::vector<RegionInfo> regions;
  std::vector<PageState> states;
  std::string bytes;
};

Picture Look(Task& task) {
  Picture p;
  auto regions = vm_region_list(task, 0, std::uint64_t{1} << 32);
  EXPECT_TRUE(regions.ok());
  p.regions = regions.value();
  for (const RegionInfo& r : p.regions) {
    std::vector<PageState> states(r.size / kPage);
    EXPECT_EQ(vm_page_query(task, r.start, r.size, states), KERN_SUCCESS);
    p.states.insert(p.states.end(), states.begin(), states.end());
    if ((r.protection & VM_PROT_READ) != 0) {
      std::string buf(r.size, '\0');
      EXPECT_EQ(vm_read(task, r.start, std::as_writable_bytes(std::span(buf))),
                KERN_SUCCESS);
      p.bytes += buf;
    }
  }
  return p;
}

// Identities renumbered in order of first appearance across tasks, so two
// systems' sharing can be compared.
std::vector<std::uint64_t> Sharing(const std::vector<Picture>& pictures) {
  std::map<std::uint64_t, std::uint64_t> number;
  std::vector<std::uint64_t> out;
  for (const Picture& p : pictures) {
    for (const PageState& s : p.states) {
      if (s.identity == 0) {
        out.push_back(0);
        continue;
      }
      auto [it, made] = number.emplace(s.identity, number.size() + 1);
      out.push_back(it->second);
    }
  }
  return out;
}

// a: a share region, a copy region, an unreadable page, a none region;
// b: a's fork; c: a's remap of part of the copy region; d: empty.
std::unique_ptr<VmSystem> Sample() {
  auto system = MakeSystem();
  auto a = Made(task_create(*system, "a"));
  Alloc(*a, 0x10000, 8 * kPage);  // share
  Write(*a, 0x10000, 's', 5 * kPage);
  EXPECT_EQ(vm_inherit(*a, 0x10000, 8 * kPage, VM_INHERIT_SHARE), KERN_SUCCESS);
  Alloc(*a, 0x40000, 600 * kPage);  // copy, across page-table leaves
  Write(*a, 0x40000, 'c', 600 * kPage);
  Alloc(*a, 0x400000, 2 * kPage);  // unreadable
  Write(*a, 0x400000, 'u', 2 * kPage);
  EXPECT_EQ(vm_protect(*a, 0x400000, kPage, false, VM_PROT_NONE), KERN_SUCCESS);
  EXPECT_EQ(vm_protect(*a, 0x401000, kPage, true, VM_PROT_WRITE), KERN_SUCCESS);
  Alloc(*a, 0x500000, kPage);  // none
  Write(*a, 0x500000, 'n', kPage);
  EXPECT_EQ(vm_inherit(*a, 0x500000, kPage, VM_INHERIT_NONE), KERN_SUCCESS);
  auto b = Made(task_fork(*system, *a, "b"));
  Write(*b, 0x41000, 'B', kPage);  // one page of the copy b's own
  auto c = Made(task_create(*system, "c"));
  vm_address_t at = 0x20000;
  vm_prot_t cur = 0, max = 0;
  EXPECT_EQ(vm_remap(*c, &at, 4 * kPage, false, *a, 0x42000, false, &cur, &max,
                     VM_INHERIT_COPY),
            KERN_SUCCESS);
  Made(task_create(*system, "d"));
  return system;
}

std::vector<Picture> LookAll(VmSystem& system) {
  std::vector<Picture> out;
  for (const auto& task : system.Tasks()) out.push_back(Look(*task));
  return out;
}

TEST(SavedStateTest, RoundTripKeepsRegionsBytesAndSharing) {
  auto system = Sample();
  const std::string bytes = Save(*system, {{"a", "owner a"}, {"c", "x"}});
  Restored r = Restore(bytes);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.names, (std::vector<std::string>{"a", "b", "c", "d"}));
  EXPECT_EQ(r.extra["a"], "owner a");
  EXPECT_EQ(r.extra["b"], "");
  EXPECT_EQ(r.extra["c"], "x");

  const std::vector<Picture> before = LookAll(*system);
  const std::vector<Picture> after = LookAll(*r.system);
  ASSERT_EQ(before.size(), after.size());
  for (std::size_t i = 0; i < before.size(); ++i) {
    EXPECT_EQ(before[i].regions, after[i].regions) << i;
    EXPECT_EQ(before[i].bytes, after[i].bytes) << i;
    ASSERT_EQ(before[i].states.size(), after[i].states.size());
    for (std::size_t k = 0; k < before[i].states.size(); ++k) {
      EXPECT_EQ(before[i].states[k].flags, after[i].states[k].flags) << i;
    }
  }
  EXPECT_EQ(Sharing(before), Sharing(after));
  // The same memory in use: every distinct page once.
  for (std::size_t i = 0; i < 4; ++i) {
    auto s0 = task_statistics(*system->Tasks()[i]);
    auto s1 = task_statistics(*r.system->Tasks()[i]);
    EXPECT_EQ(s0.value().resident_bytes, s1.value().resident_bytes) << i;
    EXPECT_EQ(s0.value().shared_bytes, s1.value().shared_bytes) << i;
  }
}

TEST(SavedStateTest, ShareRegionStaysOneMemoryAndCopiesStayApart) {
  auto system = Sample();
  Restored r = Restore(Save(*system));
  ASSERT_EQ(r.error, "");
  auto a = r.system->FindTask("a");
  auto b = r.system->FindTask("b");
  const std::string x(kPage, 'X');
  ASSERT_EQ(vm_write(*a, 0x10000, x.data(), kPage),
            KERN_SUCCESS);  // share: both see it
  std::byte got[kPage];
  ASSERT_EQ(vm_read(*b, 0x10000, got), KERN_SUCCESS);
  EXPECT_EQ(static_cast<char>(got[0]), 'X');
  ASSERT_EQ(vm_write(*a, 0x40000, x.data(), kPage),
            KERN_SUCCESS);  // copy: b keeps its
  ASSERT_EQ(vm_read(*b, 0x40000, got), KERN_SUCCESS);
  EXPECT_EQ(static_cast<char>(got[0]), 'c');
  // The unreadable page kept its bytes.
  ASSERT_EQ(vm_protect(*a, 0x400000, kPage, false, VM_PROT_READ), KERN_SUCCESS);
  ASSERT_EQ(vm_read(*a, 0x400000, got), KERN_SUCCESS);
  EXPECT_EQ(static_cast<char>(got[1]), 'u');
}

TEST(SavedStateTest, EachDistinctPageIsWrittenOnce) {
  auto system = MakeSystem();
  auto a = Made(task_create(*system, "a"));
  Alloc(*a, 0x100000, 256 * kPage);
  Write(*a, 0x100000, 'p', 256 * kPage);
  const std::size_t one = Save(*system).size();
  for (int i = 0; i < 5; ++i) {
    const std::string name = {'f', static_cast<char>('0' + i)};
    Made(task_fork(*system, *a, name));
  }
  const std::size_t six = Save(*system).size();
  EXPECT_GE(one, 256 * kPage);
  // Five more tasks cost their references, not their pages.
  EXPECT_LT(six, one + 5 * 256 * 64);
}

TEST(SavedStateTest, RefusesDamagedTruncatedAndForeignSaves) {
  auto system = Sample();
  const std::string good = Save(*system);
  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x20;
  EXPECT_NE(Restore(flipped).error.find("checksum mismatch"), std::string::npos)
      << Restore(flipped).error;
  for (std::size_t cut : {std::size_t{0}, std::size_t{5}, std::size_t{10},
                          std::size_t{30}, good.size() / 3, good.size() - 1}) {
    const std::string error = Restore(good.substr(0, cut)).error;
    EXPECT_FALSE(error.empty()) << cut;
    if (cut >= 12) {
      EXPECT_NE(error.find("truncated at byte"), std::string::npos) << error;
    }
  }
  std::string version = good;
  version[8] = 2;
  EXPECT_EQ(Restore(version).error,
            "format version 2; this taskfs reads version 1");
  std::string magic = good;
  magic[0] = 'X';
  EXPECT_EQ(Restore(magic).error, "not a taskfs save (no TASKFSST magic)");
  std::string longer = good;
  longer.append(20, '\0');
  EXPECT_EQ(Restore(longer).error, "damaged record at byte " +
                                       std::to_string(good.size()) +
                                       ": type 0, size 0");
}

// Seeded: any flipped byte or cut is refused, and nothing crashes or leaks.
TEST(SavedStateTest, RandomDamageIsAlwaysRefused) {
  auto system = MakeSystem();
  auto a = Made(task_create(*system, "a"));
  Alloc(*a, 0x10000, 4 * kPage);
  Write(*a, 0x10000, 'r', 4 * kPage);
  EXPECT_EQ(vm_inherit(*a, 0x10000, kPage, VM_INHERIT_SHARE), KERN_SUCCESS);
  Made(task_fork(*system, *a, "b"));
  const std::string good = Save(*system, {{"a", "attributes"}});
  ASSERT_EQ(Restore(good).error, "");
  const unsigned seed = 20261207;
  std::srand(seed);
  for (int round = 0; round < 300; ++round) {
    std::string bad = good;
    if (round % 3 == 0) {
      bad.resize(static_cast<std::size_t>(std::rand()) % good.size());
    } else {
      const std::size_t at =
          static_cast<std::size_t>(std::rand()) % good.size();
      bad[at] = static_cast<char>(bad[at] ^ (1 + std::rand() % 255));
    }
    EXPECT_NE(Restore(bad).error, "") << "seed " << seed << " round " << round;
  }
}

TEST(SavedStateTest, RefusesAnotherGeometry) {
  VmConfig config;
  config.page_size = 8192;
  config.address_bits = 32;
  VmSystem other(config);
  auto t = Made(task_create(other, "t"));
  std::vector<SavedTask> tasks{{t, ""}};
  StringSink sink;
  ASSERT_EQ(SaveState(other, tasks, sink), "");
  EXPECT_NE(Restore(sink.bytes).error.find("page size 8192"),
            std::string::npos);
}

TEST(SavedStateTest, StopsWhenTheSinkRefuses) {
  auto system = Sample();
  std::vector<SavedTask> tasks;
  for (const auto& task : system->Tasks()) tasks.push_back({task, ""});
  StringSink sink;
  sink.fail_after_ = 100000;
  EXPECT_EQ(SaveState(*system, tasks, sink), "write failed");
  // The tasks are as they were and can be saved again.
  EXPECT_EQ(Restore(Save(*system)).error, "");
}

TEST(SavedStateTest, SavesAtTheMemoryLimit) {
  auto system = MakeSystem(8 << 20);
  auto a = Made(task_create(*system, "a"));
  vm_address_t at = 0x100000;
  // Fill up to the limit.
  std::uint64_t pages = 0;
  std::string x(kPage, 'm');
  while (vm_allocate(*a, &at, kPage, false) == KERN_SUCCESS) {
    x[0] = static_cast<char>(pages);
    if (vm_write(*a, at, x.data(), kPage) != KERN_SUCCESS) break;
    at += kPage;
    ++pages;
  }
  ASSERT_GT(pages, 100u);
  Restored r = Restore(Save(*system));
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(Look(*system->FindTask("a")).bytes,
            Look(*r.system->FindTask("a")).bytes);
}

TEST(SavedStateTest, RestoreRefusedByTheMemoryLimit) {
  auto system = Sample();
  const std::string bytes = Save(*system);
  auto small = MakeSystem(1 << 20);
  StringSource source(bytes);
  const std::string error = RestoreState(
      *small, source, [](const std::shared_ptr<Task>&, std::string_view) {});
  EXPECT_NE(error.find("memory_limit=1048576 is too small"), std::string::npos)
      << error;
}

TEST(SavedStateTest, Crc32cKnownValue) {
  // The check value of CRC-32C.
  EXPECT_EQ(Crc32c(0, "123456789", 9), 0xe3069283u);
  EXPECT_EQ(Crc32c(Crc32c(0, "1234", 4), "56789", 5), 0xe3069283u);
}

}  // namespace
}  // namespace taskfs::vm
