// Fuzz target: restoring a save (vmcore/saved_state.h; docs/reference.md
// §10.3) from records of any content. A restore either refuses the save
// with a reason or makes tasks that save again to a save that restores to
// the same bytes; it never crashes, leaks or goes past its memory limit.
//
// The records' CRCs would stop nearly every mutation at the first record,
// so the input holds records without them and the target frames each one:
//
//   byte 0:       bit 0 the format version (1 or 2); bit 1 set: the target
//                 appends an end record counting the task, object and page
//                 records, so that inputs need not get the counts right.
//   each record:  a type byte, a length byte, then that many payload bytes;
//                 a page record's payload is followed by a page of bytes of
//                 its own (the record's number), so that it stays small.
//
// The stream always starts with the magic, the version and a header of
// 4 KiB pages and 32 address bits, which the mount below has.
//
// Checked: a restore that succeeds saves (S1) and restores again, and that
// saves to S1 exactly; once a restored system's tasks end (a refused
// restore's too), no page is live and its budget holds what it held before.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tests/fuzz/fuzz_input.h"
#include "vmcore/saved_state.h"
#include "vmcore/vm_system.h"
#include "vmcore/vm_user.h"

namespace taskfs::fuzz {
namespace {

constexpr std::uint32_t kPage = 4096;
constexpr std::uint32_t kBits = 32;
constexpr std::uint64_t kLimit = 64 << 20;

[[noreturn]] void Fail(std::string_view what) {
  std::fprintf(stderr, "\n%.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

void Put32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>(v >> (8 * i));
}
void Put64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out += static_cast<char>(v >> (8 * i));
}

void Record(std::string& out, std::uint32_t type, const std::string& payload) {
  std::string record;
  Put32(record, type);
  Put32(record, static_cast<std::uint32_t>(payload.size()));
  record += payload;
  const std::uint32_t crc = vm::Crc32c(0, record.data(), record.size());
  Put32(record, crc);
  out += record;
}

// The save the input spells.
std::string Frame(FuzzInput& in) {
  const std::uint8_t flags = in.Byte();
  std::string out(vm::kStateMagic, sizeof vm::kStateMagic);
  Put32(out, 1 + (flags & 1));
  std::string header;
  Put32(header, kPage);
  Put32(header, kBits);
  Record(out, 1, header);
  std::uint64_t tasks = 0, objects = 0, pages = 0, records = 0;
  while (!in.empty()) {
    const std::uint8_t type = in.Byte();
    std::string payload(in.Take(in.Byte()));
    if (type == 4) {
      payload.append(kPage, static_cast<char>(records));
      ++pages;
    }
    tasks += type == 2;
    objects += type == 3;
    Record(out, type, payload);
    ++records;
  }
  if ((flags & 2) != 0) {
    std::string end;
    Put64(end, tasks);
    Put64(end, objects);
    Put64(end, pages);
    Record(out, 7, end);
  }
  return out;
}

class StringSource : public vm::StateSource {
 public:
  explicit StringSource(std::string_view bytes) : bytes_(bytes) {}
  std::ptrdiff_t Read(void* data, std::size_t size) override {
    const std::size_t n = std::min(size, bytes_.size() - at_);
    std::memcpy(data, bytes_.data() + at_, n);
    at_ += n;
    return static_cast<std::ptrdiff_t>(n);
  }

 private:
  std::string_view bytes_;
  std::size_t at_ = 0;
};

class StringSink : public vm::StateSink {
 public:
  bool Write(const void* data, std::size_t size) override {
    bytes.append(static_cast<const char*>(data), size);
    return true;
  }
  std::string bytes;
};

// A system restored into, its tasks in the order made, and what its budget
// held beyond pages before the restore.
struct Restored {
  std::unique_ptr<vm::VmSystem> system;
  std::vector<vm::SavedTask> tasks;
  std::uint64_t start_held = 0;
  std::string error;
};

// What the budget holds beyond the live pages and the allocator's own
// memory.
std::uint64_t Held(vm::VmSystem& system) {
  const vm::MemoryBudget& budget = system.budget();
  return budget.used() + budget.reserve_used() - system.pages().own_bytes() -
         system.pages().live_pages() * kPage;
}

Restored Restore(std::string_view bytes) {
  Restored r;
  vm::VmConfig config;
  config.page_size = kPage;
  config.address_bits = kBits;
  config.max_tasks = 16;
  config.memory_limit = kLimit;
  r.system = std::make_unique<vm::VmSystem>(config);
  r.start_held = Held(*r.system);
  StringSource source(bytes);
  r.error = vm::RestoreState(
      *r.system, source,
      [&](const std::shared_ptr<vm::Task>& task, std::string_view extra) {
        r.tasks.push_back({task, std::string(extra)});
      });
  return r;
}

std::string Save(Restored& r) {
  StringSink sink;
  const std::string error = vm::SaveState(*r.system, r.tasks, sink);
  if (!error.empty()) Fail("a restored system did not save: " + error);
  return sink.bytes;
}

// Ends every task of the system (a failed restore's too): then no page may
// be live and the budget must hold what it held before the restore.
void Discard(Restored& r) {
  for (const auto& task : r.system->Tasks()) {
    if (vm::task_terminate(*r.system, *task) != vm::KERN_SUCCESS) {
      Fail("task_terminate refused");
    }
  }
  r.tasks.clear();
  r.system->freer().Drain();
  if (r.system->pages().live_pages() != 0 || Held(*r.system) != r.start_held) {
    Fail("every task ended: live pages " +
         std::to_string(r.system->pages().live_pages()) + ", held " +
         std::to_string(Held(*r.system)) + ", want 0 and " +
         std::to_string(r.start_held));
  }
}

}  // namespace
}  // namespace taskfs::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  using namespace taskfs::fuzz;
  FuzzInput in(data, size);
  Restored r = Restore(Frame(in));
  if (!r.error.empty()) {
    Discard(r);
    return 0;
  }
  const std::string first = Save(r);
  Discard(r);
  Restored again = Restore(first);
  if (!again.error.empty()) {
    Fail("a save of a restore did not restore: " + again.error);
  }
  if (Save(again) != first) {
    Fail("a save of a restore restored and saved differently");
  }
  Discard(again);
  return 0;
}
