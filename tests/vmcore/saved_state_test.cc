// saved_state (saved_state.h): a save restored is the same tasks, regions,
// bytes and sharing; a damaged, truncated or foreign save is refused with
// the reason; a save at the memory limit still works.
#include "vmcore/saved_state.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

#include "vmcore/address_map.h"
#include "vmcore/page_table.h"
#include "vmcore/vm_statistics.h"
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

std::unique_ptr<VmSystem> MakeSystem(std::uint64_t limit = 0,
                                     unsigned bits = 32) {
  VmConfig config;
  config.page_size = kPage;
  config.address_bits = bits;
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

// Task a of system, with pages pages at address allocated and written with
// byte (as Write writes it).
std::shared_ptr<Task> FilledTask(VmSystem& system, vm_address_t address,
                                 std::size_t pages, char byte) {
  auto a = Made(task_create(system, "a"));
  Alloc(*a, address, pages * kPage);
  Write(*a, address, byte, pages * kPage);
  return a;
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

Restored Restore(const std::string& bytes, unsigned bits = 32) {
  Restored r;
  r.system = MakeSystem(0, bits);
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
  auto regions = vm_region_list(task, 0, task.geometry().limit);
  EXPECT_TRUE(regions.ok());
  p.regions = regions.value();
  for (const RegionInfo& r : p.regions) {
    std::vector<PageState> states(r.size / task.geometry().page_size());
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
  auto a = FilledTask(*system, 0x100000, 256, 'p');
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
  for (char foreign : {0, 3}) {
    std::string version = good;
    version[8] = foreign;
    EXPECT_EQ(Restore(version).error,
              fmt::format("format version {}; this taskfs reads versions 1 "
                          "to 2",
                          int{foreign}));
  }
  std::string magic = good;
  magic[0] = 'X';
  EXPECT_EQ(Restore(magic).error, "not a taskfs save (no TASKFSST magic)");
  std::string longer = good;
  longer.append(20, '\0');
  EXPECT_EQ(Restore(longer).error, "damaged record at byte " +
                                       std::to_string(good.size()) +
                                       ": type 0, size 0");
}

// Forks of a sparse task share page-table subtrees, not only pages: a
// restore shares them again, so it holds what the tasks held (within 1 %),
// not a table per task. (3,000 pages 2 MiB apart, each in a leaf of its
// own, and 12 forks: about 24 MiB in use; a table per fork would need
// about 170 MiB.)
TEST(SavedStateTest, SharedPageTableNodesStayShared) {
  auto system = MakeSystem(0, 40);
  auto a = Made(task_create(*system, "a"));
  constexpr vm_address_t kBase = 0x10000000;
  constexpr vm_size_t kStride = 2 << 20;
  constexpr int kPages = 3000;
  Alloc(*a, kBase, kPages * kStride);
  for (int i = 0; i < kPages; ++i) Write(*a, kBase + i * kStride, 's', kPage);
  for (int i = 0; i < 12; ++i) {
    auto fork = Made(task_fork(*system, *a, fmt::format("f{}", i)));
    // Each fork makes a few pages its own: the leaves above them are
    // cloned, the rest stays shared.
    for (int k = 0; k < 3; ++k) {
      Write(*fork, kBase + (i * 200 + k) * kStride, 'f', kPage);
    }
  }
  system->freer().Drain();
  const std::uint64_t used = system->budget().used();
  const std::string bytes = Save(*system);
  Restored r = Restore(bytes, 40);
  ASSERT_EQ(r.error, "");
  r.system->freer().Drain();
  const std::uint64_t now = r.system->budget().used();
  EXPECT_LE(now, used + used / 100) << used << " " << now;
  EXPECT_GE(now + used / 100, used) << used << " " << now;
  // Exactly, but for the page allocator's own bytes (its warm pages and
  // slab records follow the order pages came and went).
  EXPECT_EQ(now - r.system->pages().own_bytes(),
            used - system->pages().own_bytes());
  // Each written page's state (its mappings counted along the shared
  // nodes), its identity renumbered, and its first byte; pages only: a
  // region is 6 GiB.
  auto states = [&](VmSystem& in) {
    std::vector<Picture> pictures;
    std::string firsts;
    for (const auto& task : in.Tasks()) {
      Picture& p = pictures.emplace_back();
      p.states.resize(kPages);
      for (int i = 0; i < kPages; ++i) {
        const vm_address_t at = kBase + i * kStride;
        EXPECT_EQ(vm_page_query(*task, at, kPage, std::span(&p.states[i], 1)),
                  KERN_SUCCESS);
        std::byte got[kPage];
        EXPECT_EQ(vm_read(*task, at, got), KERN_SUCCESS);
        firsts += static_cast<char>(got[1]);
      }
    }
    std::vector<std::uint64_t> out = Sharing(pictures);
    for (const Picture& p : pictures) {
      for (const PageState& state : p.states) {
        out.push_back(state.flags);
        out.push_back(state.mappings);
      }
    }
    return std::make_pair(out, firsts);
  };
  EXPECT_TRUE(states(*r.system) == states(*system));  // (too long to print)
  // Still copy-on-write: a write to a restored fork is its own.
  auto f0 = r.system->FindTask("f0");
  auto f1 = r.system->FindTask("f1");
  Write(*f0, kBase + 1000 * kStride, 'x', kPage);
  std::byte got[kPage];
  ASSERT_EQ(vm_read(*f1, kBase + 1000 * kStride, got), KERN_SUCCESS);
  EXPECT_EQ(static_cast<char>(got[1]), 's');
}

// A save of version 1 (no node records) still restores; node records in a
// save that says version 1 are refused.
TEST(SavedStateTest, VersionOneSavesRestore) {
  auto system = MakeSystem();
  auto a = FilledTask(*system, 0x10000, 600, 'v');
  std::string one = Save(*system);
  ASSERT_EQ(one[8], 2);
  one[8] = 1;
  Restored r = Restore(one);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(LookAll(*r.system)[0].bytes, LookAll(*system)[0].bytes);

  Made(task_fork(*system, *a, "b"));
  std::string forked = Save(*system);
  ASSERT_NE(forked.find(std::string("\x08\0\0\0\x14\0\0\0", 8)),
            std::string::npos);  // a node record
  forked[8] = 1;
  EXPECT_NE(Restore(forked).error.find("damaged record at byte"),
            std::string::npos);
}

// Seeded: any flipped byte or cut is refused, and nothing crashes or leaks.
TEST(SavedStateTest, RandomDamageIsAlwaysRefused) {
  auto system = MakeSystem();
  auto a = FilledTask(*system, 0x10000, 4, 'r');
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

// Every live task of before has its twin in after, by name: the same
// regions, bytes, page states, sharing and statistics.
std::map<std::uint32_t, std::uint64_t> RecordCounts(const std::string& bytes);

void ExpectSame(VmSystem& before, VmSystem& after, const std::string& what) {
  std::vector<Picture> b, a;
  std::vector<std::shared_ptr<Task>> tb, ta;
  for (const auto& task : before.Tasks()) {
    if (task->terminated()) continue;
    auto twin = after.FindTask(task->name());
    ASSERT_NE(twin, nullptr) << what << " " << task->name();
    tb.push_back(task);
    ta.push_back(twin);
    b.push_back(Look(*task));
    a.push_back(Look(*twin));
  }
  ASSERT_EQ(after.Tasks().size(), tb.size()) << what;
  for (std::size_t i = 0; i < b.size(); ++i) {
    EXPECT_EQ(b[i].regions, a[i].regions) << what << " " << tb[i]->name();
    EXPECT_EQ(b[i].bytes, a[i].bytes) << what << " " << tb[i]->name();
    ASSERT_EQ(b[i].states.size(), a[i].states.size()) << what;
    for (std::size_t k = 0; k < b[i].states.size(); ++k) {
      EXPECT_EQ(b[i].states[k].flags, a[i].states[k].flags)
          << what << " " << tb[i]->name() << " page " << k;
      EXPECT_EQ(b[i].states[k].mappings, a[i].states[k].mappings)
          << what << " " << tb[i]->name() << " page " << k;
    }
    auto s0 = task_statistics(*tb[i]).value();
    auto s1 = task_statistics(*ta[i]).value();
    EXPECT_EQ(s0.regions, s1.regions) << what;
    EXPECT_EQ(s0.virtual_bytes, s1.virtual_bytes) << what;
    EXPECT_EQ(s0.resident_bytes, s1.resident_bytes) << what;
    EXPECT_EQ(s0.shared_bytes, s1.shared_bytes) << what;
  }
  EXPECT_EQ(Sharing(b), Sharing(a)) << what;
}

// A `copy` remap keeps its source's object offset and an allocate then
// extends that region: its object range ends past what the address space
// spans, and the save of it restores.
TEST(SavedStateTest, RegionGrownPastTheSpaceInItsObjectRestores) {
  auto system = MakeSystem(0, 24);
  auto x = Made(task_create(*system, "x"));
  Alloc(*x, 0, 2 * kPage);
  ASSERT_EQ(vm_deallocate(*x, 0, kPage), KERN_SUCCESS);
  Alloc(*x, 0x2000, 0xffe000);
  ASSERT_EQ(vm_deallocate(*x, 0x1000, 0xffe000), KERN_SUCCESS);
  Write(*x, 0xfff000, 'h', kPage);
  vm_address_t at = 0;
  ASSERT_EQ(vm_remap(*x, &at, kPage, false, *x, 0xfff000, true, nullptr,
                     nullptr, VM_INHERIT_COPY),
            KERN_SUCCESS);
  Alloc(*x, 0x1000, 0xffe000);
  Write(*x, 0x800000, 'e', 3 * kPage);
  Restored r = Restore(Save(*system), 24);
  ASSERT_EQ(r.error, "");
  ExpectSame(*system, *r.system, "review sequence");
}

// The guard that every state the core can reach restores: seeded random
// sequences of calls in a small space, each followed by a round trip.
TEST(SavedStateTest, RandomCallSequencesRoundTrip) {
  constexpr unsigned kBits = 24;
  constexpr std::uint64_t kPages = (std::uint64_t{1} << kBits) / kPage;
  std::uint64_t node_records = 0;  // in every save: shared leaves named
  for (unsigned seed = 1; seed <= 100; ++seed) {
    std::mt19937_64 rng(seed);
    auto pick = [&](std::uint64_t n) { return rng() % n; };
    auto system = MakeSystem(0, kBits);
    std::vector<std::shared_ptr<Task>> tasks{Made(task_create(*system, "t0"))};
    int made = 1;
    // Low, high or anywhere; a size of a few pages, more, or up to the end
    // of the space: so that regions are split high in their objects, copied
    // low, and extended (address_map.h: kObjectIndexLimit).
    auto address = [&] {
      const std::uint64_t k = pick(3);
      return (k == 0   ? pick(32)
              : k == 1 ? kPages - 1 - pick(32)
                       : pick(kPages)) *
             kPage;
    };
    auto size = [&](vm_address_t from) {
      const std::uint64_t k = pick(4);
      return k < 2    ? (1 + pick(8)) * kPage
             : k == 2 ? (1 + pick(64)) * kPage
                      : kPages * kPage - from;
    };
    for (int step = 0; step < 200; ++step) {
      Task& t = *tasks[pick(tasks.size())];
      vm_address_t a = address();
      const vm_size_t n = size(a);
      switch (pick(11)) {
        case 0:
        case 1: {
          // Half the time right after a region: it may grow in place.
          auto regions = vm_region_list(t, 0, kPages * kPage).value();
          if (!regions.empty() && pick(2) == 0) {
            const RegionInfo& r = regions[pick(regions.size())];
            a = r.start + r.size;
          }
          (void)vm_allocate(t, &a, pick(2) == 0 ? n : kPages * kPage - a,
                            false);
          break;
        }
        case 2: {
          // Half the time the low part of a region: the rest is then high
          // in its object.
          auto regions = vm_region_list(t, 0, kPages * kPage).value();
          if (!regions.empty() && pick(2) == 0) {
            const RegionInfo& r = regions[pick(regions.size())];
            (void)vm_deallocate(t, r.start,
                                (1 + pick(r.size / kPage)) * kPage - kPage);
            break;
          }
          (void)vm_deallocate(t, a, n);
          break;
        }
        case 3:
          (void)vm_protect(t, a, n, pick(2) == 0,
                           static_cast<vm_prot_t>(pick(8)));
          break;
        case 4:
          (void)vm_inherit(t, a, n, static_cast<vm_inherit_t>(pick(3)));
          break;
        case 5: {
          const std::string data((1 + pick(4)) * kPage,
                                 static_cast<char>('a' + pick(26)));
          (void)vm_write(t, a, data.data(), data.size());
          break;
        }
        case 6:
          (void)vm_copy(t, a, n, address());
          break;
        case 7:
        case 8: {
          Task& src = *tasks[pick(tasks.size())];
          vm_address_t to = address();
          (void)vm_remap(t, &to, n, pick(4) == 0, src, a, pick(2) == 0, nullptr,
                         nullptr, static_cast<vm_inherit_t>(pick(3)));
          break;
        }
        case 9:
          if (tasks.size() < 6) {
            const std::string name = fmt::format("t{}", made++);
            auto child = task_fork(*system, t, name);
            if (child.ok()) tasks.push_back(std::move(child).value());
          }
          break;
        case 10:
          if (tasks.size() > 1) {
            const std::size_t i = pick(tasks.size());
            ASSERT_EQ(task_terminate(*system, *tasks[i]), KERN_SUCCESS);
            tasks.erase(tasks.begin() + static_cast<std::ptrdiff_t>(i));
          }
          break;
      }
    }
    const std::string saved = Save(*system);
    auto counts = RecordCounts(saved);
    node_records += counts[8] + counts[9];
    Restored r = Restore(saved, kBits);
    ASSERT_EQ(r.error, "") << "seed " << seed;
    ExpectSame(*system, *r.system, "seed " + std::to_string(seed));
    if (HasFailure()) return;
  }
  // Some sequences leave leaves shared whole: these seeds' saves hold 12
  // node records and 18 references.
  EXPECT_GE(node_records, 30u);
}

// Crafted saves, each CRC-valid.
std::string Record(std::uint32_t type, const std::string& payload) {
  std::string head(8, '\0');
  for (int i = 0; i < 4; ++i) {
    head[i] = static_cast<char>(type >> (8 * i));
    head[4 + i] = static_cast<char>(payload.size() >> (8 * i));
  }
  std::string out = head + payload;
  const std::uint32_t crc = Crc32c(0, out.data(), out.size());
  for (int i = 0; i < 4; ++i) out += static_cast<char>(crc >> (8 * i));
  return out;
}
std::string U32(std::uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}
std::string U64(std::uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}
std::string Start() {
  return std::string("TASKFSST") + U32(kStateVersion) +
         Record(1, U32(kPage) + U32(32)) + Record(2, U32(1) + "t" + U32(0));
}
std::string Object(std::uint64_t id) { return Record(3, U64(id)); }
std::string PageRecord(std::uint64_t index, std::uint64_t id) {
  return Record(
      4, U64(index) + U64(id) + std::string(1, '\0') + std::string(kPage, 'p'));
}
std::string EntryRecord(std::uint64_t start, std::uint64_t end,
                        std::uint32_t prot, std::uint32_t max,
                        std::uint64_t object, std::uint64_t offset) {
  return Record(6, U64(start) + U64(end) + U32(prot) + U32(max) + U32(1) +
                       U64(object) + U64(offset));
}
std::string NodeRecord(bool first, std::uint64_t index, std::uint32_t level,
                       std::uint64_t id) {
  return Record(first ? 8 : 9, U64(index) + U32(level) + U64(id));
}
std::string End(std::uint64_t objects, std::uint64_t pages) {
  return Record(7, U64(1) + U64(objects) + U64(pages));
}

TEST(SavedStateTest, RefusesSavesThatBreakInvariants) {
  const std::size_t first = Start().size();  // the first object's record
  const std::size_t entry = first + Object(0).size();
  // The well-formed one: two regions of one object, a page in each.
  const std::string good =
      Start() + Object(0) + PageRecord(0, 0) + PageRecord(9, 1) +
      EntryRecord(0x10000, 0x12000, 3, 7, 0, 0) +
      EntryRecord(0x20000, 0x22000, 1, 5, 0, 8) + End(1, 2);
  ASSERT_EQ(Restore(good).error, "");

  EXPECT_EQ(Restore(Start() + Object(0) +
                    EntryRecord(0x10000, 0x11000, 7, 1, 0, 0) + End(1, 0))
                .error,
            "a region whose protection exceeds its maximum at byte " +
                std::to_string(entry));
  EXPECT_EQ(Restore(Start() + Object(0) +
                    EntryRecord(0x10010, 0x11ff0, 3, 7, 0, 0) + End(1, 0))
                .error,
            "a region out of range at byte " + std::to_string(entry));
  EXPECT_EQ(Restore(Start() + Object(0) +
                    EntryRecord(0x10000, 0x11ff0, 3, 7, 0, 0) + End(1, 0))
                .error,
            "a region out of range at byte " + std::to_string(entry));
  // Past the bound of an object's ranges (address_map.h).
  EXPECT_EQ(
      Restore(Start() + Object(0) +
              EntryRecord(0x10000, 0x12000, 3, 7, 0, kObjectIndexLimit - 1) +
              End(1, 0))
          .error,
      "a region offset out of range at byte " + std::to_string(entry));
  // High in its object, within the bound: what the core can reach.
  EXPECT_EQ(
      Restore(Start() + Object(0) + PageRecord(1 << 30, 0) +
              EntryRecord(0x10000, 0x12000, 3, 7, 0, (1 << 30) - 1) + End(1, 1))
          .error,
      "");
  // A page at an index between, before and after the regions' ranges.
  for (std::uint64_t index : {2, 7, 10, 1000000}) {
    EXPECT_EQ(
        Restore(Start() + Object(0) + PageRecord(0, 0) + PageRecord(index, 1) +
                EntryRecord(0x10000, 0x12000, 3, 7, 0, 0) +
                EntryRecord(0x20000, 0x22000, 3, 7, 0, 8) + End(1, 2))
            .error,
        "a page at index " + std::to_string(index) +
            " that no region covers, in the object at byte " +
            std::to_string(first));
  }
  EXPECT_EQ(Restore(Start() + Object(0) + PageRecord(3, 0) +
                    EntryRecord(0x10000, 0x12000, 3, 7, 0, 4) + End(1, 1))
                .error,
            "a page at index 3 that no region covers, in the object at byte " +
                std::to_string(first));
  // An object no region references, after one that is referenced.
  const std::string second =
      Start() + Object(0) + EntryRecord(0x10000, 0x12000, 3, 7, 0, 0);
  EXPECT_EQ(Restore(second + Object(1) + PageRecord(0, 0) + End(2, 1)).error,
            "an object no region references at byte " +
                std::to_string(second.size()));
}

// A node record names a node met before, at its level, over an empty
// span of the current object's table, aligned and within the object's
// bound; anything else is refused where it is.
TEST(SavedStateTest, RefusesNodeRecordsOutOfPlace) {
  const std::string object = Start() + Object(0);
  const std::string shared = object + NodeRecord(true, 0, 0, 0) +
                             PageRecord(0, 0) + NodeRecord(false, 512, 0, 0);
  const std::string good =
      shared + EntryRecord(0x10000, 0x10000 + 1024 * kPage, 3, 7, 0, 0) +
      End(1, 1);
  Restored r = Restore(good);
  ASSERT_EQ(r.error, "");
  std::byte got[kPage];
  ASSERT_EQ(vm_read(*r.system->FindTask("t"), 0x10000 + 512 * kPage, got),
            KERN_SUCCESS);
  EXPECT_EQ(static_cast<char>(got[0]), 'p');

  auto refused = [](const std::string& before, const std::string& record,
                    const std::string& why) {
    EXPECT_EQ(Restore(before + record + End(1, 0)).error,
              why + " at byte " + std::to_string(before.size()));
  };
  refused(Start(), NodeRecord(true, 0, 0, 0), "a node before any object");
  refused(object, NodeRecord(true, 0, 6, 0), "a node level out of range");
  refused(object, NodeRecord(true, 5, 0, 0), "a node index out of range");
  refused(object, NodeRecord(true, kObjectIndexLimit, 0, 0),
          "a node index out of range");
  refused(object, NodeRecord(true, 0, 0, 1), "a node out of order");
  refused(object, NodeRecord(false, 0, 0, 0), "a reference to an unknown node");
  refused(object + NodeRecord(true, 0, 0, 0), NodeRecord(false, 1 << 18, 1, 0),
          "a node reference of another level");
  refused(shared + PageRecord(1024, 1), NodeRecord(false, 1024, 0, 0),
          "a node over pages already saved");
  // A save shares only nodes whose span the object's regions cover whole:
  // a node record's span, and a node reference's.
  const std::string first = object + NodeRecord(true, 0, 0, 0);
  EXPECT_EQ(Restore(first + PageRecord(0, 0) +
                    EntryRecord(0x10000, 0x10000 + 511 * kPage, 3, 7, 0, 0) +
                    End(1, 1))
                .error,
            "a node its object's regions do not cover whole at byte " +
                std::to_string(object.size()));
  EXPECT_EQ(Restore(shared +
                    EntryRecord(0x10000, 0x10000 + 1023 * kPage, 3, 7, 0, 0) +
                    End(1, 1))
                .error,
            "a node its object's regions do not cover whole at byte " +
                std::to_string((first + PageRecord(0, 0)).size()));
}

TEST(SavedStateTest, ASaveUsesOnlyTheWalkMarksItNumbered) {
  auto system = Sample();
  const std::uint64_t before = LastWalkMark();
  for (int i = 0; i < 200; ++i) Save(*system);
  // Each save of Sample() numbers fewer than 2000 pages and objects.
  EXPECT_LT(LastWalkMark() - before, 200u * 2000u);
  EXPECT_GT(LastWalkMark(), before);
}

// How many records of each type a save holds.
std::map<std::uint32_t, std::uint64_t> RecordCounts(const std::string& bytes) {
  std::map<std::uint32_t, std::uint64_t> counts;
  auto get32 = [&](std::size_t at) {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i)
      v |= std::uint32_t{static_cast<unsigned char>(bytes[at + i])} << (8 * i);
    return v;
  };
  for (std::size_t at = 12; at + 8 <= bytes.size();) {
    ++counts[get32(at)];
    at += 8 + get32(at + 4) + 4;
  }
  return counts;
}

std::unique_ptr<VmSystem> MakeSized(std::uint64_t page_size, unsigned bits) {
  VmConfig config;
  config.page_size = page_size;
  config.address_bits = bits;
  config.max_tasks = 16;
  return std::make_unique<VmSystem>(config);
}

// A task's resident pages only (regions may span GiB): each one's offset
// in the task, state and bytes.
struct Sparse {
  std::vector<RegionInfo> regions;
  std::vector<vm_address_t> at;
  std::vector<PageState> states;
  std::string bytes;
};

Sparse LookSparse(Task& task) {
  Sparse p;
  const std::uint64_t page = task.geometry().page_size();
  p.regions = vm_region_list(task, 0, task.geometry().limit).value();
  for (const RegionInfo& r : p.regions) {
    constexpr std::uint64_t kChunk = 8192;
    std::vector<PageState> states(kChunk);
    for (std::uint64_t done = 0; done < r.size / page; done += kChunk) {
      const std::uint64_t n = std::min(kChunk, r.size / page - done);
      const vm_address_t from = r.start + done * page;
      EXPECT_EQ(
          vm_page_query(task, from, n * page, std::span(states.data(), n)),
          KERN_SUCCESS);
      for (std::uint64_t k = 0; k < n; ++k) {
        if ((states[k].flags & PageState::kResident) == 0) continue;
        p.at.push_back(from + k * page);
        p.states.push_back(states[k]);
        if ((r.protection & VM_PROT_READ) == 0) continue;
        std::string buf(page, '\0');
        EXPECT_EQ(vm_read(task, from + k * page,
                          std::as_writable_bytes(std::span(buf))),
                  KERN_SUCCESS);
        p.bytes += buf;
      }
    }
  }
  return p;
}

// Every task of after is its twin in before, page for page (flags and
// mappings), byte for byte and sharing for sharing, with the same figures.
void ExpectTwins(VmSystem& before, VmSystem& after, const std::string& what,
                 bool mappings = true) {
  std::vector<Picture> b, a;
  ASSERT_EQ(before.Tasks().size(), after.Tasks().size()) << what;
  for (const auto& task : before.Tasks()) {
    auto twin = after.FindTask(task->name());
    ASSERT_NE(twin, nullptr) << what << " " << task->name();
    const Sparse sb = LookSparse(*task), sa = LookSparse(*twin);
    EXPECT_EQ(sb.regions, sa.regions) << what << " " << task->name();
    EXPECT_EQ(sb.at, sa.at) << what << " " << task->name();
    EXPECT_TRUE(sb.bytes == sa.bytes) << what << " " << task->name();
    ASSERT_EQ(sb.states.size(), sa.states.size()) << what;
    for (std::size_t k = 0; k < sb.states.size(); ++k) {
      EXPECT_EQ(sb.states[k].flags, sa.states[k].flags)
          << what << " " << task->name() << " at " << sb.at[k];
      if (!mappings) continue;
      EXPECT_EQ(sb.states[k].mappings, sa.states[k].mappings)
          << what << " " << task->name() << " at " << sb.at[k];
    }
    b.push_back({{}, sb.states, {}});
    a.push_back({{}, sa.states, {}});
    auto s0 = task_statistics(*task).value();
    auto s1 = task_statistics(*twin).value();
    EXPECT_EQ(s0.resident_bytes, s1.resident_bytes) << what << task->name();
    EXPECT_EQ(s0.shared_bytes, s1.shared_bytes) << what << task->name();
    EXPECT_EQ(s0.metadata_bytes, s1.metadata_bytes) << what << task->name();
  }
  EXPECT_EQ(Sharing(b), Sharing(a)) << what;
}

// Tasks that share page-table nodes at every level and in every way the
// calls make them: forks of forks, a copy inside one object at the same
// index modulo a leaf's span (a leaf held twice by one table), copy and
// share remaps, a region high in its object, a fork that deallocates the
// middle of a shared leaf's span, 1 GiB-class spans shared whole (level 1)
// with a leaf below cloned.
std::unique_ptr<VmSystem> Shapes(std::uint64_t page) {
  auto system = MakeSized(page, 44);
  constexpr std::uint64_t kLeaf = 512, kL1 = 512 * 512;
  auto w = [&](Task& t, vm_address_t at, char c) {
    const std::string data(page, c);
    ASSERT_EQ(vm_write(t, at, data.data(), page), KERN_SUCCESS);
  };
  auto a = Made(task_create(*system, "a"));
  const vm_address_t base = 4 * kL1 * page;  // aligned to a level-1 span
  // Two level-1 spans and a bit, written sparsely.
  Alloc(*a, base, (2 * kL1 + 3 * kLeaf) * page);
  for (std::uint64_t i = 0; i < 2 * kL1 + 3 * kLeaf; i += 4099)
    w(*a, base + i * page, static_cast<char>('A' + i % 23));
  for (std::uint64_t i = 0; i < 3 * kLeaf; i += 7)
    w(*a, base + i * page, static_cast<char>('a' + i % 19));
  // A copy in the same object, three leaves up: the leaf at 0 is held
  // twice by a's table.
  EXPECT_EQ(vm_copy(*a, base, kLeaf * page, base + 3 * kLeaf * page),
            KERN_SUCCESS);
  // A region high in its object: its low part deallocated.
  const vm_address_t high = base + 8 * kL1 * page;
  Alloc(*a, high, 4 * kLeaf * page);
  for (std::uint64_t i = 0; i < 4 * kLeaf; i += 5) w(*a, high + i * page, 'h');
  EXPECT_EQ(vm_deallocate(*a, high, 300 * page), KERN_SUCCESS);
  auto b = Made(task_fork(*system, *a, "b"));
  w(*b, base + 10 * page, 'b');                 // a leaf of b's own
  w(*b, base + (kL1 + 5 * kLeaf) * page, 'B');  // a level-1 node cloned
  auto c = Made(task_fork(*system, *b, "c"));   // a fork of a fork
  w(*c, base + (2 * kL1 + 11) * page, 'c');
  auto d = Made(task_fork(*system, *c, "d"));
  // The middle of a shared leaf's span, in one fork only.
  EXPECT_EQ(vm_deallocate(*d, base + (kLeaf + 100) * page, 50 * page),
            KERN_SUCCESS);
  auto e = Made(task_create(*system, "e"));
  vm_address_t to = base;
  EXPECT_EQ(vm_remap(*e, &to, 2 * kLeaf * page, false, *b, base, true, nullptr,
                     nullptr, VM_INHERIT_COPY),
            KERN_SUCCESS);
  to = high + kLeaf * page;
  EXPECT_EQ(vm_remap(*e, &to, kLeaf * page, false, *a, high + kLeaf * page,
                     false, nullptr, nullptr, VM_INHERIT_SHARE),
            KERN_SUCCESS);
  to = base + 16 * kL1 * page;
  EXPECT_EQ(vm_remap(*e, &to, kL1 * page, false, *a, base + kL1 * page, true,
                     nullptr, nullptr, VM_INHERIT_COPY),
            KERN_SUCCESS);
  system->freer().Drain();
  return system;
}

// Each restore of Shapes is its twin, holds what it held, and stays
// copy-on-write at every level: the same writes to both keep them twins.
TEST(SavedStateTest, NodeSharingShapesRoundTrip) {
  for (std::uint64_t page : {4096u, 16384u, 65536u}) {
    const std::string what = fmt::format("page size {}", page);
    auto system = Shapes(page);
    const std::uint64_t used =
        system->budget().used() - system->pages().own_bytes();
    // The save's node marks leave the statistics walk's figures as they
    // were, a second save's too.
    std::vector<TaskStatistics> figures;
    for (const auto& task : system->Tasks())
      figures.push_back(task_statistics(*task).value());
    const std::string bytes = Save(*system);
    EXPECT_EQ(Save(*system), bytes) << what;
    for (std::size_t i = 0; i < figures.size(); ++i) {
      const TaskStatistics now = task_statistics(*system->Tasks()[i]).value();
      EXPECT_EQ(now.resident_bytes, figures[i].resident_bytes) << what << i;
      EXPECT_EQ(now.shared_bytes, figures[i].shared_bytes) << what << i;
      EXPECT_EQ(now.metadata_bytes, figures[i].metadata_bytes) << what << i;
    }
    const auto counts = RecordCounts(bytes);
    EXPECT_GT(counts.count(8) ? counts.at(8) : 0, 3u) << what;
    EXPECT_GT(counts.count(9) ? counts.at(9) : 0, 3u) << what;
    auto restored = MakeSized(page, 44);
    StringSource source(bytes);
    ASSERT_EQ(
        RestoreState(*restored, source,
                     [](const std::shared_ptr<Task>&, std::string_view) {}),
        "")
        << what;
    restored->freer().Drain();
    ExpectTwins(*system, *restored, what);
    // The same live pages and metadata (the allocator's warm pages and
    // slab records aside: they follow the order pages came and went).
    EXPECT_EQ(restored->budget().used() - restored->pages().own_bytes(), used)
        << what;
    // Writes through every holder of each shared node: at a leaf shared
    // inside one object, under level-1 nodes, in the share remap.
    constexpr std::uint64_t kLeaf = 512, kL1 = 512 * 512;
    const vm_address_t base = 4 * kL1 * page;
    const std::vector<std::uint64_t> spots{
        0,          7, 3 * kLeaf + 7, kLeaf + 7, kL1 + 4099, 2 * kL1 + 4099 * 2,
        kLeaf + 160};
    char c = '0';
    for (const std::string name : {"a", "b", "c", "d", "e"}) {
      for (std::uint64_t spot : spots) {
        for (VmSystem* s : {system.get(), restored.get()}) {
          const std::string data(page, c);
          (void)vm_write(*s->FindTask(name), base + spot * page, data.data(),
                         page);
          const vm_address_t high = base + 8 * kL1 * page + kLeaf * page;
          (void)vm_write(*s->FindTask(name), high + spot % kLeaf * page,
                         data.data(), page);
        }
        ++c;
      }
    }
    ExpectTwins(*system, *restored, what + " after writes");
    if (HasFailure()) return;
  }
}

// A crafted save restored into a fresh system: its outcome, and whether
// every byte it charged is given back once its tasks are gone (done by
// check, while they live).
std::string RestoreThenDrop(const std::string& bytes,
                            const std::function<void(VmSystem&)>& check = {}) {
  auto system = MakeSystem(64 << 20);
  const std::uint64_t idle =
      system->budget().used() - system->pages().own_bytes();
  StringSource source(bytes);
  const std::string error = RestoreState(
      *system, source, [](const std::shared_ptr<Task>&, std::string_view) {});
  if (check && error.empty()) check(*system);
  for (const auto& task : system->Tasks())
    EXPECT_EQ(task_terminate(*system, *task), KERN_SUCCESS);
  system->freer().Drain();
  EXPECT_EQ(system->budget().used() - system->pages().own_bytes(), idle)
      << error;
  return error;
}

// Node records in odd shapes, each CRC-valid: whatever they name, a
// restore either refuses them or makes tasks that keep copy-on-write, and
// never crashes, hangs or keeps a charge.
TEST(SavedStateTest, CraftedNodeRecordsKeepTheCoreWhole) {
  const std::string object = Start() + Object(0);
  const std::uint64_t kL1 = 512 * 512;
  auto entry = [](std::uint64_t object_id, std::uint64_t start,
                  std::uint64_t pages, std::uint64_t offset) {
    return EntryRecord(start, start + pages * kPage, 3, 7, object_id, offset);
  };
  auto byte_at = [](VmSystem& system, vm_address_t at) {
    std::byte got[kPage];
    EXPECT_EQ(vm_read(*system.FindTask("t"), at, got), KERN_SUCCESS);
    return static_cast<char>(got[0]);
  };
  // A reference to a node of the current object at its own place, over
  // nothing: a copy onto itself.
  EXPECT_EQ(RestoreThenDrop(object + NodeRecord(true, 0, 0, 0) +
                            NodeRecord(false, 0, 0, 0) +
                            entry(0, 0x100000, 512, 0) + End(1, 0)),
            "");
  // The same, over the pages it holds: refused.
  EXPECT_EQ(
      RestoreThenDrop(object + NodeRecord(true, 0, 0, 0) + PageRecord(3, 0) +
                      NodeRecord(false, 0, 0, 0) + entry(0, 0x100000, 512, 0) +
                      End(1, 1)),
      "a node over pages already saved at byte " +
          std::to_string(object.size() + NodeRecord(true, 0, 0, 0).size() +
                         PageRecord(3, 0).size()));
  // A node of the highest level: no region can cover its span.
  EXPECT_EQ(
      RestoreThenDrop(object + NodeRecord(true, 0, 5, 0) + PageRecord(1, 0) +
                      entry(0, 0x100000, 4, 0) + End(1, 1)),
      "a node its object's regions do not cover whole at byte " +
          std::to_string(object.size()));
  // A level-1 node over one page, named in a second object at another
  // place: the second table reaches it through a node of its own.
  const std::string high = object + NodeRecord(true, 0, 1, 0) +
                           PageRecord(1, 0) + entry(0, 0, kL1, 0) + Object(1) +
                           NodeRecord(false, kL1, 1, 0) +
                           entry(1, 0x40000000, 2 * kL1, 0);
  EXPECT_EQ(RestoreThenDrop(high + End(2, 1),
                            [&](VmSystem& system) {
                              const vm_address_t at =
                                  0x40000000 + (kL1 + 1) * kPage;
                              EXPECT_EQ(byte_at(system, at), 'p');
                              // Copy-on-write: the write is the second's.
                              Write(*system.FindTask("t"), at, 'z', kPage);
                              EXPECT_EQ(byte_at(system, kPage), 'p');
                            }),
            "");
  // A reference, then a page of its own in the span it shares: the page
  // is the second object's only.
  const std::string shared_then_page =
      object + NodeRecord(true, 0, 0, 0) + PageRecord(1, 0) +
      entry(0, 0x100000, 512, 0) + Object(1) + NodeRecord(false, 0, 0, 0) +
      PageRecord(2, 1) + entry(1, 0x400000, 512, 0) + End(2, 2);
  EXPECT_EQ(RestoreThenDrop(shared_then_page,
                            [&](VmSystem& system) {
                              EXPECT_EQ(byte_at(system, 0x401000), 'p');
                              EXPECT_EQ(byte_at(system, 0x402000), 'p');
                              EXPECT_EQ(byte_at(system, 0x102000), '\0');
                              std::vector<PageState> states(1);
                              EXPECT_EQ(vm_page_query(*system.FindTask("t"),
                                                      0x102000, kPage, states),
                                        KERN_SUCCESS);
                              EXPECT_EQ(states[0].flags, PageState::kAllocated);
                            }),
            "");
  // A leaf named inside a level-1 span that the object already shares.
  const std::string nested = object + NodeRecord(true, 0, 1, 0) +
                             NodeRecord(true, 512, 0, 1) + PageRecord(512, 0) +
                             NodeRecord(false, kL1, 1, 0) +
                             NodeRecord(false, kL1 + 1024, 0, 1) +
                             entry(0, 0x10000000, 2 * kL1, 0) + End(1, 1);
  EXPECT_EQ(RestoreThenDrop(
                nested,
                [&](VmSystem& system) {
                  const vm_address_t at = 0x10000000;
                  EXPECT_EQ(byte_at(system, at + 512 * kPage), 'p');
                  EXPECT_EQ(byte_at(system, at + (kL1 + 512) * kPage), 'p');
                  EXPECT_EQ(byte_at(system, at + (kL1 + 1024) * kPage), 'p');
                  EXPECT_EQ(byte_at(system, at + 1024 * kPage), '\0');
                }),
            "");
  // A reference that leaves pages where no region reaches: refused at the
  // end, its charges given back.
  EXPECT_EQ(
      RestoreThenDrop(object + NodeRecord(true, 0, 0, 0) + PageRecord(100, 0) +
                      entry(0, 0x100000, 512, 0) + Object(1) +
                      NodeRecord(false, 0, 0, 0) + entry(1, 0x400000, 50, 0) +
                      End(2, 1)),
      "a page at index 100 that no region covers, in the object at byte " +
          std::to_string(object.size() + NodeRecord(true, 0, 0, 0).size() +
                         PageRecord(100, 0).size() +
                         entry(0, 0x100000, 512, 0).size()));
  // Many references to one node: each costs a reference, not a copy.
  std::string many = object + NodeRecord(true, 0, 0, 0) + PageRecord(0, 0);
  for (std::uint64_t i = 1; i < 1000; ++i)
    many += NodeRecord(false, i * 512, 0, 0);
  many += entry(0, 0, 1000 * 512, 0) + End(1, 1);
  EXPECT_EQ(RestoreThenDrop(
                many,
                [&](VmSystem& system) {
                  EXPECT_EQ(byte_at(system, 999 * 512 * kPage), 'p');
                  EXPECT_LT(system.budget().used() - system.pages().own_bytes(),
                            1u << 20);
                }),
            "");
  // Refusals midway give back what they charged.
  EXPECT_EQ(
      RestoreThenDrop(high + NodeRecord(false, 0, 5, 1) + End(2, 1)),
      "a reference to an unknown node at byte " + std::to_string(high.size()));
}

// A table that holds a shared leaf its object's regions reach only in
// part (what an Uncover leaves when even the reserve refuses the clone it
// needs), saved before or after the holders that reach it whole: its
// pages are saved one by one, the others share the leaf, and the restore
// is the same tasks, bytes and pages, at the cost of one leaf of its own.
TEST(SavedStateTest, SharedLeafReachedInPartFirstRestores) {
  auto system = MakeSystem();
  constexpr vm_address_t kAt = 0x10000000;
  auto a = Made(task_create(*system, "a"));
  Alloc(*a, kAt, 1024 * kPage);
  for (int i = 0; i < 1024; i += 3) Write(*a, kAt + i * kPage, 'a', kPage);
  auto b = Made(task_fork(*system, *a, "b"));
  auto c = Made(task_fork(*system, *a, "c"));
  ASSERT_EQ(vm_deallocate(*b, kAt + 100 * kPage, 100 * kPage), KERN_SUCCESS);
  {
    // b's object holds a's leaf again, over its hole.
    const MapEntry& low = b->map().entries().begin()->second;
    const MapEntry& source = a->map().entries().begin()->second;
    ASSERT_EQ(low.offset % 512, 0u);
    std::shared_lock source_lock(source.object->mu());  // the lower id
    std::unique_lock lock(low.object->mu());
    MemoryAccount scratch(system->budget());
    PageTable::Undo undo(scratch, system->freer());
    low.object->pages().Assign(low.offset, low.offset + 512,
                               source.object->pages(), source.offset, undo);
    undo.Commit();
  }
  system->freer().Drain();
  const std::uint64_t used =
      system->budget().used() - system->pages().own_bytes();
  for (const std::vector<std::shared_ptr<Task>>& order :
       {std::vector<std::shared_ptr<Task>>{b, a, c},
        std::vector<std::shared_ptr<Task>>{a, b, c}}) {
    std::vector<SavedTask> tasks;
    for (const auto& task : order) tasks.push_back({task, ""});
    StringSink sink;
    ASSERT_EQ(SaveState(*system, tasks, sink), "");
    const std::string what = "first " + order[0]->name();
    EXPECT_EQ(RecordCounts(sink.bytes)[8], 2u) << what;
    EXPECT_EQ(RecordCounts(sink.bytes)[9], 3u) << what;
    auto restored = MakeSystem();
    StringSource source(sink.bytes);
    ASSERT_EQ(
        RestoreState(*restored, source,
                     [](const std::shared_ptr<Task>&, std::string_view) {}),
        "");
    // The mappings counted differ: b's table no longer holds the pages
    // of its hole (a's count one fewer there), nor a's leaf (b's pages
    // count one fewer holder).
    ExpectTwins(*system, *restored, what, /*mappings=*/false);
    restored->freer().Drain();
    EXPECT_EQ(restored->budget().used() - restored->pages().own_bytes(),
              used + PageTable::kNodeCharge)
        << what;
  }
}

// Seeded random mixes of objects, pages, node records and references at a
// few levels and places, with regions over them, each CRC-valid: every
// one is refused or restored, and gives back all it charged.
TEST(SavedStateTest, RandomNodeRecordMixesGiveBackTheirCharges) {
  int restored = 0;
  for (unsigned seed = 1; seed <= 300; ++seed) {
    std::mt19937_64 rng(seed);
    auto pick = [&](std::uint64_t n) { return rng() % n; };
    std::string bytes = Start();
    std::uint64_t objects = 0, pages = 0, nodes = 0;
    std::vector<unsigned> levels;  // of each node record
    const int records = 2 + static_cast<int>(pick(24));
    for (int i = 0; i < records; ++i) {
      const unsigned level = pick(4) == 0 ? static_cast<unsigned>(pick(3)) : 0;
      const std::uint64_t span = std::uint64_t{512} << (9 * level);
      const std::uint64_t index = pick(level == 0 ? 8 : 2) * span;
      switch (pick(objects == 0 ? 1 : 5)) {
        case 0:
          bytes += Object(objects++);
          break;
        case 1:
          bytes += PageRecord(pick(4) * 512 + pick(3), pages++);
          break;
        case 3:
          if (nodes != 0) {
            // Mostly a node met before, at its level.
            const std::uint64_t id = pick(16) == 0 ? nodes : pick(nodes);
            const unsigned at = pick(8) != 0 ? levels[id % nodes] : level;
            bytes += NodeRecord(
                false, pick(at == 0 ? 8 : 2) * (std::uint64_t{512} << (9 * at)),
                at, id);
            break;
          }
          [[fallthrough]];
        case 2:
          bytes += NodeRecord(true, index, level, nodes++);
          levels.push_back(level);
          break;
        case 4: {
          const vm_address_t at = 0x100000 + pick(4) * 0x1000000;
          bytes += EntryRecord(at, at + (1 + pick(4)) * 512 * kPage, 3, 7,
                               pick(objects), 0);
          break;
        }
      }
    }
    for (std::uint64_t o = 0; o < objects; ++o) {
      bytes += EntryRecord(0x40000000 + o * 0x4000000,
                           0x40000000 + o * 0x4000000 + 0x2000000, 3, 7, o, 0);
    }
    bytes += End(objects, pages);
    if (RestoreThenDrop(bytes).empty()) ++restored;
    if (HasFailure()) {
      ADD_FAILURE() << "seed " << seed;
      return;
    }
  }
  EXPECT_GE(restored, 90);  // 100 of these seeds
}

}  // namespace
}  // namespace taskfs::vm
