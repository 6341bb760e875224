// Fuzz target: sequences of Mach calls on the VM core, each run next to the
// reference model of the differential test (tests/vmcore/reference_model.h).
// Any difference in a result code, an address returned, a byte read, a region
// list, a statistic or the system's live pages is a crash: the target prints
// the calls so far and the difference, then aborts.
//
// Input: two bytes choosing the configuration, then calls. A small address
// space (2^24) and a small memory limit keep the limits, the top edge and
// wrap-around within a mutation's reach.
//
//   config byte: bits 0-1 the pages: 4, 16 or 64 KiB in a 2^24 space, or
//                4 KiB in a 2^31 space (kBigSpace), where a range can cross
//                or cover the 262,144 pages of the page table's second radix
//                level (512-page chunks, 512-way nodes);
//                bits 2-7 n: no memory limit for n = 63, else a limit of
//                n + 1 half pages, so limits that are not a whole number of
//                pages occur too.
//   flavor byte: bit 0 the XNU flavor (byte ranges for vm_read, vm_write
//                and vm_copy, XNU's codes; vmcore/vm_user.h), else the
//                classic one; the other bits are ignored.
//   each call:   an opcode byte (modulo the number of calls), then its
//                operands, each decoded by one of the Next* functions below
//                (most of them decoders of tests/vmcore/random_ops.h).
//
// Every call of the model's is covered: vm_allocate (fixed and anywhere),
// vm_deallocate, vm_protect, vm_inherit, vm_read (into a buffer and pinned),
// vm_write, vm_fill, vm_copy, vm_map_copy, vm_region, vm_region_list,
// vm_find_data, vm_find_hole, task_statistics, task_create, task_fork and
// task_terminate. Four more calls make copy- and fork-heavy sequences in a
// few bytes: a chain (or ring) of up to 64 nested vm_copys, one of
// vm_map_copys from task to task, one of up to 16 nested forks, and a copy
// between ranges placed and sized in chunks or radix nodes (see
// CopyChain, MapCopyChain, ForkChain and AlignedCopy).
//
// What an input may cost is bounded: every call is charged the pages the
// model walks for it (its size, a task's or all tasks' allocated pages), and
// an input ends when it has spent kMaxWork. Calls that would make the model
// hold the bytes of more than 2^24 (a read, a pin, a write or a fill of a
// range of the big space) are skipped.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_input.h"
#include "tests/vmcore/random_ops.h"
#include "tests/vmcore/reference_model.h"
#include "tests/vmcore/take_result.h"
#include "vmcore/kern_return.h"
#include "vmcore/pinned_pages.h"
#include "vmcore/task.h"
#include "vmcore/vm_system.h"
#include "vmcore/vm_types.h"
#include "vmcore/vm_user.h"

namespace taskfs::fuzz {
namespace {

using vm::KernReturn;
using vm::PinnedPages;
using vm::RegionInfo;
using vm::Task;
using vm::TaskStatistics;
using vm::vm_address_t;
using vm::vm_inherit_t;
using vm::vm_prot_t;
using vm::vm_size_t;
using vm::random_ops::kChunkPages;
using vm::random_ops::kLevelPages;
using vm::random_ops::kMaxBufferPages;
using vm::random_ops::kPinSlots;
using vm::reference::Bytes;
using vm::reference::Hex;
using vm::reference::InheritName;
using vm::reference::Model;
using vm::reference::ProtName;
using vm::reference::RegionsText;
using vm::reference::StatsText;

constexpr unsigned kAddressBits = 24;
constexpr unsigned kBigAddressBits = 31;
// Reads, pins, writes and fills of more bytes than this are not made: the
// model would hold them all (the small spaces have no more).
constexpr std::uint64_t kMaxDataBytes = std::uint64_t{1} << kAddressBits;
// Pages of model work an input may spend (see Spend).
constexpr std::uint64_t kMaxWork = std::uint64_t{1} << 20;
constexpr std::uint64_t kMaxTasks = 4;
// Calls per input, so that a long input cannot run for long.
constexpr std::size_t kMaxCalls = 300;
// Calls between whole-state checks.
constexpr std::size_t kCheckEvery = 16;
// Contents are compared in the low kWindowPages pages, where nearly all
// addresses land, and at the top edge.
constexpr std::uint64_t kWindowPages = 64;
constexpr std::size_t kShownCalls = 40;

using vm::random_ops::VmOp;

// The opcodes past the calls of VmOp: chains of calls.
enum Chain : std::uint8_t {
  kCopyChain = vm::random_ops::kVmOpCount,
  kMapCopyChain,
  kForkChain,
  kAlignedCopy,
  kCallCount,
};

class Harness {
 public:
  explicit Harness(const vm::VmConfig& config)
      : config_(config),
        limit_(std::uint64_t{1} << config.address_bits),
        system_(std::make_unique<vm::VmSystem>(config)),
        model_(std::make_unique<Model>(config, kPinSlots)) {}

  // Pins go first: they hold pages of the system's allocator.
  ~Harness() {
    for (PinnedPages& pin : pins_) pin.Release();
    tasks_.clear();
    model_.reset();
    system_.reset();
  }

  void Run(FuzzInput& in) {
    Create("t0");
    for (std::size_t call = 1; call <= kMaxCalls && !in.empty() && !spent_;
         ++call) {
      Step(in);
      if (call % kCheckEvery == 0) CheckEverything();
    }
    CheckEverything();
  }

 private:
  std::uint64_t page() const { return config_.page_size; }
  std::uint64_t total_pages() const { return limit_ / page(); }

  // --- what an input may cost ---

  // Charges `pages` pages of model work; false (and the input ends) once
  // the input has spent kMaxWork. Calls of the input spend before they run;
  // the whole-state checks only charge, and always run.
  bool Spend(std::uint64_t pages) {
    Charge(pages);
    return !spent_;
  }
  void Charge(std::uint64_t pages) {
    work_ += 1 + pages;
    if (work_ > kMaxWork) spent_ = true;
  }
  // A call's size in pages, as far as the model can walk it.
  std::uint64_t PagesOf(vm_size_t size) const {
    return std::min(size / page(), total_pages());
  }
  // The allocated pages of task t (0 when terminated), from the core, whose
  // map answers without a walk of every page.
  std::uint64_t AllocatedPages(std::size_t t) {
    TaskStatistics stats;
    if (vm::Take(vm::task_statistics(*tasks_[t]), &stats) != vm::KERN_SUCCESS) {
      return 0;
    }
    return stats.virtual_bytes / page();
  }
  std::uint64_t AllAllocatedPages() {
    std::uint64_t pages = 0;
    for (std::size_t t = 0; t < tasks_.size(); ++t) pages += AllocatedPages(t);
    return pages;
  }
  // A read, pin, write or fill of size bytes would make the model hold
  // more bytes than it may (only ranges of the big space can): skipped.
  bool TooMuchData(vm_size_t size) const {
    return size > kMaxDataBytes && size <= limit_;
  }

  // --- operands ---

  std::size_t NextTask(FuzzInput& in) { return in.Byte() % tasks_.size(); }

  vm::random_ops::OperandSpace space() const { return {page(), limit_}; }

  vm_address_t NextAddress(FuzzInput& in, std::size_t t) {
    return vm::random_ops::AddressFromBytes(
        in, space(), [&](std::uint8_t k) { return AllocatedPage(t, k); });
  }

  vm_size_t NextSize(FuzzInput& in) {
    return vm::random_ops::SizeFromBytes(in, space());
  }

  // The k-th allocated page of task t (modulo their number), or page k.
  std::uint64_t AllocatedPage(std::size_t t, std::uint8_t k) {
    if (!Spend(AllocatedPages(t))) return k;
    std::uint64_t total = 0;
    const auto runs = model_->Runs(t, vm::VM_PROT_NONE);
    for (const auto& [first, end] : runs) total += end - first;
    if (total == 0) return k;
    std::uint64_t index = k % total;
    for (const auto& [first, end] : runs) {
      if (index < end - first) return first + index;
      index -= end - first;
    }
    return k;
  }

  static vm_prot_t NextProt(FuzzInput& in) {
    return vm::random_ops::ProtFromByte(in.Byte());
  }

  static vm_inherit_t NextInheritance(FuzzInput& in) {
    return vm::random_ops::InheritanceFromByte(in.Byte());
  }

  // Bytes for a write: a pattern from a seed byte, different on every page.
  static Bytes PatternBytes(std::uint64_t size, std::uint8_t seed) {
    Bytes bytes(size);
    std::uint64_t x = 0x9e3779b97f4a7c15ull * (seed + 1);
    for (std::uint64_t i = 0; i < size; i += 8) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      std::memcpy(bytes.data() + i, &x, std::min<std::uint64_t>(8, size - i));
    }
    return bytes;
  }

  // A buffer for writes too large to make up: zeros, as large as the whole
  // address space, so that a write the model says must fail cannot read past
  // it if the core lets it through.
  const std::uint8_t* BigZeros() {
    static const Bytes zeros(std::uint64_t{1} << kAddressBits, 0);
    return zeros.data();
  }

  std::string TaskName(std::size_t t) const {
    return model_->name(t) + (model_->alive(t) ? "" : "(terminated)");
  }

  // --- calls ---

  void Step(FuzzInput& in) {
    const std::uint8_t opcode = in.Byte() % kCallCount;
    if (opcode < vm::random_ops::kVmOpCount) {
      return Call(static_cast<VmOp>(opcode), in);
    }
    switch (static_cast<Chain>(opcode)) {
      case kCopyChain:
        return CopyChain(in);
      case kMapCopyChain:
        return MapCopyChain(in);
      case kForkChain:
        return ForkChain(in);
      case kAlignedCopy:
        return AlignedCopy(in);
      case kCallCount:
        break;
    }
  }

  void Call(VmOp op, FuzzInput& in) {
    switch (op) {
      case VmOp::kAllocateFixed:
        return Allocate(in, false);
      case VmOp::kAllocateAnywhere:
        return Allocate(in, true);
      case VmOp::kDeallocate:
        return Deallocate(in);
      case VmOp::kProtect:
        return Protect(in);
      case VmOp::kInherit:
        return Inherit(in);
      case VmOp::kRead:
        return Read(in);
      case VmOp::kWrite:
        return Write(in);
      case VmOp::kFill:
        return Fill(in);
      case VmOp::kCopy:
        return Copy(in);
      case VmOp::kMapCopy:
        return MapCopy(in);
      case VmOp::kRegion:
        return Region(in);
      case VmOp::kFindData:
        return Find(in, false);
      case VmOp::kFindHole:
        return Find(in, true);
      case VmOp::kStatistics: {
        const std::size_t t = NextTask(in);
        if (Spend(AllAllocatedPages())) CheckTask(t);
        return;
      }
      case VmOp::kPin:
        return Pin(in);
      case VmOp::kCheckPin:
        return CheckPin(in);
      case VmOp::kFork:
        return Fork(in);
      case VmOp::kCreate:
        return Create(vm::random_ops::TaskNameFromByte(in.Byte()));
      case VmOp::kTerminate:
        return Terminate(in);
    }
  }

  void Allocate(FuzzInput& in, bool anywhere) {
    const std::size_t t = NextTask(in);
    const vm_address_t address = NextAddress(in, t);
    const vm_size_t size = NextSize(in);
    if (!Spend(PagesOf(size))) return;
    Begin("vm_allocate(" + TaskName(t) + ", " + Hex(address) + ", " +
          Hex(size) + (anywhere ? ", anywhere)" : ", fixed)"));
    vm_address_t core_address = address;
    vm_address_t model_address = address;
    const KernReturn core =
        vm::vm_allocate(*tasks_[t], &core_address, size, anywhere);
    const KernReturn model =
        model_->Allocate(t, &model_address, size, anywhere);
    if (SameCode(core, model) && core == vm::KERN_SUCCESS &&
        core_address != model_address) {
      Diverge("address: core " + Hex(core_address) + ", model " +
              Hex(model_address));
    }
    CompareRegions(t);
  }

  void Deallocate(FuzzInput& in) {
    const std::size_t t = NextTask(in);
    const vm_address_t address = NextAddress(in, t);
    const vm_size_t size = NextSize(in);
    if (!Spend(PagesOf(size))) return;
    Begin("vm_deallocate(" + TaskName(t) + ", " + Hex(address) + ", " +
          Hex(size) + ")");
    SameCode(vm::vm_deallocate(*tasks_[t], address, size),
             model_->Deallocate(t, address, size));
    CompareRegions(t);
  }

  void Protect(FuzzInput& in) {
    const std::size_t t = NextTask(in);
    const vm_address_t address = NextAddress(in, t);
    const vm_size_t size = NextSize(in);
    const bool set_maximum = (in.Byte() & 1) != 0;
    const vm_prot_t prot = NextProt(in);
    if (!Spend(PagesOf(size))) return;
    Begin("vm_protect(" + TaskName(t) + ", " + Hex(address) + ", " + Hex(size) +
          (set_maximum ? ", max " : ", ") + ProtName(prot) + ")");
    SameCode(vm::vm_protect(*tasks_[t], address, size, set_maximum, prot),
             model_->Protect(t, address, size, set_maximum, prot));
    CompareRegions(t);
  }

  void Inherit(FuzzInput& in) {
    const std::size_t t = NextTask(in);
    const vm_address_t address = NextAddress(in, t);
    const vm_size_t size = NextSize(in);
    const vm_inherit_t inheritance = NextInheritance(in);
    if (!Spend(PagesOf(size))) return;
    Begin("vm_inherit(" + TaskName(t) + ", " + Hex(address) + ", " + Hex(size) +
          ", " + InheritName(inheritance) + ")");
    SameCode(vm::vm_inherit(*tasks_[t], address, size, inheritance),
             model_->Inherit(t, address, size, inheritance));
    CompareRegions(t);
  }

  void Read(FuzzInput& in) {
    const std::size_t t = NextTask(in);
    const vm_address_t address = NextAddress(in, t);
    const vm_size_t size = NextSize(in);
    if (TooMuchData(size) || !Spend(PagesOf(size))) return;
    ReadAndCompare(t, address, size);
  }

  void ReadAndCompare(std::size_t t, vm_address_t address, vm_size_t size) {
    const bool buffered = size <= kMaxBufferPages * page();
    Begin("vm_read(" + TaskName(t) + ", " + Hex(address) + ", " + Hex(size) +
          ")" + (buffered ? "" : " (pinned variant)"));
    Bytes core_bytes;
    KernReturn core;
    if (buffered) {
      // Poisoned, so bytes the core fails to fill cannot pass for zeros.
      core_bytes.assign(size, 0xa5);
      core = vm::vm_read(
          *tasks_[t], address,
          std::as_writable_bytes(std::span(core_bytes.data(), size)));
    } else {
      PinnedPages pinned;
      core = vm::vm_read_pinned(*tasks_[t], address, size, &pinned);
      core_bytes.resize(pinned.size());
      pinned.CopyTo(core_bytes.data());
    }
    Bytes model_bytes;
    const KernReturn model = model_->Read(t, address, size, &model_bytes);
    if (SameCode(core, model) && core == vm::KERN_SUCCESS) {
      CompareBytes(core_bytes, model_bytes);
    }
  }

  void Write(FuzzInput& in) {
    const std::size_t t = NextTask(in);
    const vm_address_t address = NextAddress(in, t);
    const vm_size_t size = NextSize(in);
    const std::uint8_t seed = in.Byte();
    if (TooMuchData(size) || !Spend(PagesOf(size))) return;
    Bytes pattern;
    const std::uint8_t* data;
    if (size <= kMaxBufferPages * page()) {
      pattern = PatternBytes(size, seed);
      data = pattern.data();
    } else {
      data = BigZeros();
    }
    Begin("vm_write(" + TaskName(t) + ", " + Hex(address) + ", " + Hex(size) +
          ", pattern " + Hex(seed) + ")");
    SameCode(vm::vm_write(*tasks_[t], address, data, size),
             model_->Write(t, address, data, size));
  }

  void Fill(FuzzInput& in) {
    const std::size_t t = NextTask(in);
    const vm_address_t address = NextAddress(in, t);
    const vm_size_t size = NextSize(in);
    const std::uint8_t byte = in.Byte();
    if (TooMuchData(size) || !Spend(PagesOf(size))) return;
    Begin("vm_fill(" + TaskName(t) + ", " + Hex(address) + ", " + Hex(size) +
          ", " + Hex(byte) + ")");
    SameCode(vm::vm_fill(*tasks_[t], address, size, byte),
             model_->Fill(t, address, size, byte));
  }

  void Copy(FuzzInput& in) {
    const std::size_t t = NextTask(in);
    const vm_address_t source = NextAddress(in, t);
    const vm_size_t size = NextSize(in);
    const vm_address_t dest = NextAddress(in, t);
    if (!Spend(PagesOf(size))) return;
    Begin("vm_copy(" + TaskName(t) + ", " + Hex(source) + ", " + Hex(size) +
          ", " + Hex(dest) + ")");
    SameCode(vm::vm_copy(*tasks_[t], source, size, dest),
             model_->Copy(t, source, size, dest));
  }

  void MapCopy(FuzzInput& in) {
    const std::size_t dst = NextTask(in);
    const vm_address_t dest = NextAddress(in, dst);
    const std::size_t src = NextTask(in);
    const vm_address_t source = NextAddress(in, src);
    const vm_size_t size = NextSize(in);
    const std::uint8_t flags = in.Byte();
    const bool dst_alloc = (flags & 1) != 0;
    const bool src_destroy = (flags & 2) != 0;
    if (!Spend(PagesOf(size))) return;
    Begin("vm_map_copy(dst " + TaskName(dst) + " at " + Hex(dest) + ", src " +
          TaskName(src) + " at " + Hex(source) + ", " + Hex(size) +
          (dst_alloc ? ", dst_alloc" : "") +
          (src_destroy ? ", src_destroy" : "") + ")");
    SameCode(
        vm::vm_map_copy(*tasks_[dst], dest, *tasks_[src], source, size,
                        dst_alloc, src_destroy),
        model_->MapCopy(dst, dest, src, source, size, dst_alloc, src_destroy));
    CompareRegions(dst);
    CompareRegions(src);
  }

  void Region(FuzzInput& in) {
    const std::size_t t = NextTask(in);
    const vm_address_t address = NextAddress(in, t);
    if (!Spend(AllocatedPages(t))) return;
    Begin("vm_region(" + TaskName(t) + ", " + Hex(address) + ")");
    vm_address_t core_address = address;
    vm_address_t model_address = address;
    RegionInfo core_info;
    RegionInfo model_info;
    const KernReturn core =
        vm::vm_region(*tasks_[t], &core_address, &core_info);
    const KernReturn model = model_->Region(t, &model_address, &model_info);
    if (SameCode(core, model) && core == vm::KERN_SUCCESS &&
        (core_address != model_address || !(core_info == model_info))) {
      Diverge("core " + Hex(core_address) + " " + RegionsText({core_info}) +
              ", model " + Hex(model_address) + " " +
              RegionsText({model_info}));
    }
  }

  void Find(FuzzInput& in, bool hole) {
    const std::size_t t = NextTask(in);
    const vm_address_t from = NextAddress(in, t);
    if (!Spend(0)) return;
    Begin(std::string(hole ? "vm_find_hole(" : "vm_find_data(") + TaskName(t) +
          ", " + Hex(from) + ")");
    vm_address_t core_found = 0;
    vm_address_t model_found = 0;
    const KernReturn core =
        hole ? vm::Take(vm::vm_find_hole(*tasks_[t], from), &core_found)
             : vm::Take(vm::vm_find_data(*tasks_[t], from), &core_found);
    const KernReturn model = hole ? model_->FindHole(t, from, &model_found)
                                  : model_->FindData(t, from, &model_found);
    if (SameCode(core, model) && core == vm::KERN_SUCCESS &&
        core_found != model_found) {
      Diverge("found: core " + Hex(core_found) + ", model " + Hex(model_found));
    }
  }

  void Pin(FuzzInput& in) {
    const std::size_t pin = in.Byte() % kPinSlots;
    const std::size_t t = NextTask(in);
    const vm_address_t address = NextAddress(in, t);
    const vm_size_t size = NextSize(in);
    if (TooMuchData(size) || !Spend(PagesOf(size))) return;
    Begin("vm_read(" + TaskName(t) + ", " + Hex(address) + ", " + Hex(size) +
          ") pinned into slot " + std::to_string(pin));
    if (SameCode(vm::vm_read_pinned(*tasks_[t], address, size, &pins_[pin]),
                 model_->ReadPinned(t, address, size, pin))) {
      ComparePin(pin);
    }
  }

  // Checks that a pinned read still shows the bytes of its moment, then
  // perhaps lets it go.
  void CheckPin(FuzzInput& in) {
    const std::uint8_t b = in.Byte();
    const std::size_t pin = b % kPinSlots;
    const bool release = (b & 0x80) != 0;
    if (!Spend(0)) return;
    Begin("check pin slot " + std::to_string(pin) +
          (release ? ", then release it" : ""));
    ComparePin(pin);
    if (release) {
      pins_[pin].Release();
      model_->Unpin(pin);
    }
  }

  void ComparePin(std::size_t pin) {
    Bytes core(pins_[pin].size());
    pins_[pin].CopyTo(core.data());
    CompareBytes(core, model_->PinnedBytes(pin));
  }

  void Fork(FuzzInput& in) {
    const std::size_t parent = NextTask(in);
    const std::string name = vm::random_ops::TaskNameFromByte(in.Byte());
    if (!Spend(AllocatedPages(parent))) return;
    Begin("task_fork(" + TaskName(parent) + ", \"" + name + "\")");
    std::shared_ptr<Task> child;
    const KernReturn core =
        vm::Take(vm::task_fork(*system_, *tasks_[parent], name), &child);
    if (SameCode(core, model_->Fork(parent, name)) &&
        core == vm::KERN_SUCCESS) {
      tasks_.push_back(std::move(child));
      CompareRegions(tasks_.size() - 1);
    }
  }

  void Create(const std::string& name) {
    if (!Spend(0)) return;
    Begin("task_create(\"" + name + "\")");
    std::shared_ptr<Task> task;
    const KernReturn core = vm::Take(vm::task_create(*system_, name), &task);
    if (SameCode(core, model_->Create(name)) && core == vm::KERN_SUCCESS) {
      tasks_.push_back(std::move(task));
    }
  }

  void Terminate(FuzzInput& in) {
    const std::size_t t = NextTask(in);
    if (!Spend(AllocatedPages(t))) return;
    Begin("task_terminate(" + TaskName(t) + ")");
    SameCode(vm::task_terminate(*system_, *tasks_[t]), model_->Terminate(t));
  }

  // --- copy- and fork-heavy calls ---

  // The distance between the places of a chain, in pages, maybe negative:
  // a selector byte, n in the low five bits, the kind in the top three.
  std::int64_t NextStride(FuzzInput& in, vm_size_t size) {
    const std::uint8_t s = in.Byte();
    const std::int64_t n = s & 31;
    const auto chunk = static_cast<std::int64_t>(kChunkPages);
    switch (s >> 5) {
      case 0:
        return n;  // overlapping, when less than the size
      case 1:
        return static_cast<std::int64_t>(PagesOf(size)) + n;  // next to it
      case 2:
        return (n + 1) * chunk;  // both sides aligned alike
      case 3:
        return chunk - n;  // a chunk on, cut otherwise
      case 4:
        return chunk + n;
      case 5:
        return -(n + 1);  // backwards, overlapping
      case 6:
        return (n + 1) * 64;
      default:
        return static_cast<std::int64_t>(kLevelPages) + n - 16;
    }
  }

  // A page placed by the page table's levels: bit 7 the unit (a chunk of
  // 512 pages, or a level-2 node of 262,144), bits 4-6 k, bits 0-3 d: page
  // k units + d - 8 (but at least page 0), so on, before or after a
  // boundary.
  static std::uint64_t NextAlignedPage(FuzzInput& in) {
    const std::uint8_t b = in.Byte();
    const std::uint64_t unit = (b & 0x80) != 0 ? kLevelPages : kChunkPages;
    const std::uint64_t at = ((b >> 4) & 7) * unit + (b & 15);
    return at < 8 ? 0 : at - 8;
  }
  // A size in pages the same way: 1 unit for 0x18 or 0x98; at least a page.
  static std::uint64_t NextAlignedPages(FuzzInput& in) {
    return std::max<std::uint64_t>(1, NextAlignedPage(in));
  }

  void WritePage(std::size_t t, vm_address_t address, std::uint8_t seed) {
    if (!Spend(1)) return;
    const Bytes pattern = PatternBytes(page(), seed);
    Begin("vm_write(" + TaskName(t) + ", " + Hex(address) + ", " + Hex(page()) +
          ", pattern " + Hex(seed) + ")");
    SameCode(vm::vm_write(*tasks_[t], address, pattern.data(), page()),
             model_->Write(t, address, pattern.data(), page()));
  }

  void AllocateFixed(std::size_t t, vm_address_t address, vm_size_t size) {
    Begin("vm_allocate(" + TaskName(t) + ", " + Hex(address) + ", " +
          Hex(size) + ", fixed)");
    vm_address_t core_address = address;
    vm_address_t model_address = address;
    SameCode(vm::vm_allocate(*tasks_[t], &core_address, size, false),
             model_->Allocate(t, &model_address, size, false));
    CompareRegions(t);
  }

  void DeallocateRange(std::size_t t, vm_address_t address, vm_size_t size) {
    Begin("vm_deallocate(" + TaskName(t) + ", " + Hex(address) + ", " +
          Hex(size) + ")");
    SameCode(vm::vm_deallocate(*tasks_[t], address, size),
             model_->Deallocate(t, address, size));
    CompareRegions(t);
  }

  // The first pages of [address, address + size) either side of its chunk
  // and level-2 node boundaries, and its first and last pages: where a
  // page table that shares nodes between copies splits them.
  std::vector<vm_address_t> BoundaryPages(vm_address_t address,
                                          vm_size_t size) const {
    const std::uint64_t pages = size / page();
    if (pages == 0 || pages > total_pages() || address % page() != 0) return {};
    const std::uint64_t first = address / page();
    std::vector<vm_address_t> at = {first * page(),
                                    (first + pages - 1) * page()};
    for (const std::uint64_t unit : {kChunkPages, kLevelPages}) {
      std::uint64_t b = (first / unit + 1) * unit;
      for (int k = 0; k < 2 && b < first + pages; ++k, b += unit) {
        at.push_back((b - 1) * page());
        at.push_back(b * page());
      }
    }
    return at;
  }

  // Compares the pages of BoundaryPages.
  void CompareAround(std::size_t t, vm_address_t address, vm_size_t size) {
    for (const vm_address_t at : BoundaryPages(address, size)) {
      ReadAndCompare(t, at, page());
    }
  }

  // vm_copy along a chain in task t: copy k (from 0) copies the range at
  // place k to place k + 1, place j lying j strides from address, so each
  // copy copies the one before it; with a ring of r places, place j is
  // place j mod r. Every `every` copies a page of the copy's source and the
  // same page of its destination are written.
  //   operands: task, address, size, stride (NextStride); a count byte,
  //   bits 0-5 the copies less one, bits 6-7 r - 1 for a ring of r places
  //   (0: no ring); a write byte, bits 0-2 every (0: no writes), bits 3-7
  //   the page of the range written (modulo its pages).
  void CopyChain(FuzzInput& in) {
    const std::size_t t = NextTask(in);
    const vm_address_t address = NextAddress(in, t);
    const vm_size_t size = NextSize(in);
    const std::int64_t stride = NextStride(in, size);
    const std::uint8_t c = in.Byte();
    const std::uint8_t w = in.Byte();
    const int copies = (c & 63) + 1;
    const int ring = (c >> 6) == 0 ? 0 : (c >> 6) + 1;
    const int every = w & 7;
    const vm_address_t offset =
        (w >> 3) % std::max<std::uint64_t>(1, size / page()) * page();
    auto place = [&](int j) {
      const std::int64_t k = ring == 0 ? j : j % ring;
      return address + static_cast<vm_address_t>(k * stride) * page();
    };
    for (int k = 0; k < copies; ++k) {
      if (!Spend(PagesOf(size))) return;
      const vm_address_t from = place(k);
      const vm_address_t to = place(k + 1);
      Begin("vm_copy(" + TaskName(t) + ", " + Hex(from) + ", " + Hex(size) +
            ", " + Hex(to) + "), copy " + std::to_string(k + 1) + " of " +
            std::to_string(copies) + " along a chain");
      SameCode(vm::vm_copy(*tasks_[t], from, size, to),
               model_->Copy(t, from, size, to));
      if (every != 0 && (k + 1) % every == 0) {
        WritePage(t, from + offset, static_cast<std::uint8_t>(k));
        WritePage(t, to + offset, static_cast<std::uint8_t>(k + 128));
      }
    }
    CompareAround(t, place(0), size);
    CompareAround(t, place(copies), size);
  }

  // vm_map_copy from task to task: hop k copies the range at address from
  // task t + k to task t + k + 1 (modulo the tasks, terminated ones
  // included), so each hop copies the one before it.
  //   operands: task, address, size; a count byte, bits 0-5 the hops less
  //   one, bit 6 dst_alloc (each destination range freed first), bit 7
  //   src_destroy; a write byte, bit 0 a page of each hop's source and the
  //   same page of its destination written after it, bits 1-7 which page
  //   of the range (modulo its pages).
  void MapCopyChain(FuzzInput& in) {
    const std::size_t first = NextTask(in);
    const vm_address_t address = NextAddress(in, first);
    const vm_size_t size = NextSize(in);
    const std::uint8_t c = in.Byte();
    const std::uint8_t w = in.Byte();
    const int hops = (c & 63) + 1;
    const bool dst_alloc = (c & 0x40) != 0;
    const bool src_destroy = (c & 0x80) != 0;
    const vm_address_t offset =
        (w >> 1) % std::max<std::uint64_t>(1, size / page()) * page();
    std::size_t src = first;
    for (int k = 0; k < hops; ++k) {
      if (!Spend(2 * PagesOf(size))) return;
      const std::size_t dst = (first + k + 1) % tasks_.size();
      if (dst_alloc) DeallocateRange(dst, address, size);
      Begin("vm_map_copy(dst " + TaskName(dst) + ", src " + TaskName(src) +
            " at " + Hex(address) + ", " + Hex(size) +
            (dst_alloc ? ", dst_alloc" : "") +
            (src_destroy ? ", src_destroy" : "") + "), hop " +
            std::to_string(k + 1) + " of " + std::to_string(hops));
      SameCode(vm::vm_map_copy(*tasks_[dst], address, *tasks_[src], address,
                               size, dst_alloc, src_destroy),
               model_->MapCopy(dst, address, src, address, size, dst_alloc,
                               src_destroy));
      CompareRegions(dst);
      CompareRegions(src);
      if ((w & 1) != 0) {
        WritePage(src, address + offset, static_cast<std::uint8_t>(k));
        WritePage(dst, address + offset, static_cast<std::uint8_t>(k + 128));
      }
      src = dst;
    }
    CompareAround(first, address, size);
    CompareAround(src, address, size);
  }

  // task_fork along a chain: each fork forks the child of the one before.
  //   operands: task; a count byte, bits 0-3 the forks less one, bit 4 each
  //   parent terminated once forked (so that a chain goes on within the
  //   limit of tasks), bit 5 a page written in the parent and in the child
  //   after each fork; a name byte (the first child's, as TaskNameFromByte;
  //   each next child's one more); the address of the page written.
  void ForkChain(FuzzInput& in) {
    std::size_t parent = NextTask(in);
    const std::uint8_t c = in.Byte();
    const std::uint8_t name = in.Byte();
    const vm_address_t address = NextAddress(in, parent);
    const int forks = (c & 15) + 1;
    for (int k = 0; k < forks; ++k) {
      if (!Spend(2 * AllocatedPages(parent))) return;
      const std::string child_name =
          vm::random_ops::TaskNameFromByte(static_cast<std::uint8_t>(name + k));
      Begin("task_fork(" + TaskName(parent) + ", \"" + child_name +
            "\"), fork " + std::to_string(k + 1) + " of " +
            std::to_string(forks) + " along a chain");
      std::shared_ptr<Task> child;
      const KernReturn core = vm::Take(
          vm::task_fork(*system_, *tasks_[parent], child_name), &child);
      SameCode(core, model_->Fork(parent, child_name));
      if (core != vm::KERN_SUCCESS) continue;
      tasks_.push_back(std::move(child));
      const std::size_t t = tasks_.size() - 1;
      CompareRegions(t);
      if ((c & 0x20) != 0) {
        WritePage(parent, address, static_cast<std::uint8_t>(k));
        WritePage(t, address, static_cast<std::uint8_t>(k + 128));
        ReadAndCompare(parent, address, page());
      }
      if ((c & 0x10) != 0) {
        Begin("task_terminate(" + TaskName(parent) + ") after its fork");
        SameCode(vm::task_terminate(*system_, *tasks_[parent]),
                 model_->Terminate(parent));
      }
      parent = t;
    }
    ReadAndCompare(parent, address, page());
  }

  // A copy between ranges placed and sized by chunks and radix nodes, with
  // what makes such a copy matter around it.
  //   operands: task; source page, destination page (NextAlignedPage) and
  //   size (NextAlignedPages); a flags byte: bit 0 the source range
  //   allocated first, bit 1 the destination range; bit 2 the source's
  //   BoundaryPages written before the copy; bit 3 the first page of the
  //   destination and a boundary page of the source written after it; bit
  //   4 the source in the next task (vm_map_copy) rather than in the same
  //   (vm_copy), and with it bit 5 dst_alloc (the destination freed first)
  //   and bit 6 src_destroy; bit 7 both ranges freed at the end.
  void AlignedCopy(FuzzInput& in) {
    const std::size_t t = NextTask(in);
    const vm_address_t source = NextAlignedPage(in) * page();
    const vm_address_t dest = NextAlignedPage(in) * page();
    const vm_size_t size = NextAlignedPages(in) * page();
    const std::uint8_t flags = in.Byte();
    const bool across = (flags & 0x10) != 0;
    const bool dst_alloc = across && (flags & 0x20) != 0;
    const bool src_destroy = across && (flags & 0x40) != 0;
    const std::size_t src = across ? (t + 1) % tasks_.size() : t;
    if (!Spend(3 * PagesOf(size))) return;
    if ((flags & 1) != 0) AllocateFixed(src, source, size);
    if ((flags & 2) != 0) AllocateFixed(t, dest, size);
    const std::vector<vm_address_t> boundaries = BoundaryPages(source, size);
    if ((flags & 4) != 0) {
      for (std::size_t i = 0; i < boundaries.size(); ++i) {
        WritePage(src, boundaries[i], static_cast<std::uint8_t>(i));
      }
    }
    if (across) {
      if (dst_alloc) DeallocateRange(t, dest, size);
      Begin("vm_map_copy(dst " + TaskName(t) + " at " + Hex(dest) + ", src " +
            TaskName(src) + " at " + Hex(source) + ", " + Hex(size) +
            (dst_alloc ? ", dst_alloc" : "") +
            (src_destroy ? ", src_destroy" : "") + "), aligned");
      SameCode(
          vm::vm_map_copy(*tasks_[t], dest, *tasks_[src], source, size,
                          dst_alloc, src_destroy),
          model_->MapCopy(t, dest, src, source, size, dst_alloc, src_destroy));
      CompareRegions(src);
    } else {
      Begin("vm_copy(" + TaskName(t) + ", " + Hex(source) + ", " + Hex(size) +
            ", " + Hex(dest) + "), aligned");
      SameCode(vm::vm_copy(*tasks_[t], source, size, dest),
               model_->Copy(t, source, size, dest));
    }
    CompareRegions(t);
    if ((flags & 8) != 0) {
      WritePage(t, dest, 0x55);
      if (!boundaries.empty()) {
        WritePage(src, boundaries[boundaries.size() / 2], 0xaa);
      }
    }
    CompareAround(src, source, size);
    CompareAround(t, dest, size);
    if ((flags & 0x80) != 0) {
      DeallocateRange(src, source, size);
      DeallocateRange(t, dest, size);
    }
  }

  // --- whole-state checks ---

  void CompareRegions(std::size_t t) {
    std::vector<RegionInfo> core_regions;
    std::vector<RegionInfo> model_regions;
    const KernReturn core =
        vm::Take(vm::vm_region_list(*tasks_[t]), &core_regions);
    const KernReturn model = model_->RegionList(t, &model_regions);
    if (core != model || core_regions != model_regions) {
      Diverge("afterwards vm_region_list(" + TaskName(t) + ") gives\n  core " +
              std::string(vm::KernReturnName(core)) + " " +
              RegionsText(core_regions) + "\n  model " +
              std::string(vm::KernReturnName(model)) + " " +
              RegionsText(model_regions));
    }
  }

  // vm_region_list and task_statistics of task t.
  void CheckTask(std::size_t t) {
    Begin("vm_region_list(" + TaskName(t) + ")");
    CompareRegions(t);
    Begin("task_statistics(" + TaskName(t) + ")");
    TaskStatistics core_stats;
    TaskStatistics model_stats;
    const KernReturn core =
        vm::Take(vm::task_statistics(*tasks_[t]), &core_stats);
    const KernReturn model = model_->Statistics(t, &model_stats);
    if (SameCode(core, model) && core == vm::KERN_SUCCESS &&
        !vm::reference::SameStats(core_stats, model_stats)) {
      Diverge("core " + StatsText(core_stats) + ", model " +
              StatsText(model_stats));
    }
  }

  // Every task's regions and statistics, the system's live pages, the
  // readable bytes of every task in the window, at the top edge and (in the
  // big space) around the second radix level's boundary, and every pin.
  void CheckEverything() {
    Charge(2 * AllAllocatedPages());
    std::uint64_t model_live = 0;
    const auto model_stats = model_->AllStatistics(&model_live);
    for (std::size_t t = 0; t < tasks_.size(); ++t) {
      Begin("vm_region_list(" + TaskName(t) + ")");
      CompareRegions(t);
      Begin("task_statistics(" + TaskName(t) + ")");
      TaskStatistics core_stats;
      const KernReturn core =
          vm::Take(vm::task_statistics(*tasks_[t]), &core_stats);
      if (SameCode(core, model_stats[t].first) && core == vm::KERN_SUCCESS &&
          !vm::reference::SameStats(core_stats, model_stats[t].second)) {
        Diverge("core " + StatsText(core_stats) + ", model " +
                StatsText(model_stats[t].second));
      }
    }
    Begin("live pages of the system");
    const std::uint64_t core_live = system_->pages().live_pages();
    if (core_live != model_live) {
      Diverge("core " + std::to_string(core_live) + ", model " +
              std::to_string(model_live));
    }
    std::vector<std::pair<std::uint64_t, std::uint64_t>> windows = {
        {0, kWindowPages}};
    if (total_pages() > kLevelPages) {
      windows.emplace_back(kLevelPages - kWindowPages / 2,
                           kLevelPages + kWindowPages / 2);
    }
    windows.emplace_back(total_pages() - std::min(kWindowPages, total_pages()),
                         total_pages());
    for (std::size_t t = 0; t < tasks_.size(); ++t) {
      for (const auto& [first, end] : model_->Runs(t, vm::VM_PROT_READ)) {
        for (const auto& [window_first, window_end] : windows) {
          const std::uint64_t lo = std::max(first, window_first);
          const std::uint64_t hi = std::min(end, window_end);
          for (std::uint64_t p = lo; p < hi; p += kMaxBufferPages) {
            const std::uint64_t count = std::min(kMaxBufferPages, hi - p);
            ReadAndCompare(t, p * page(), count * page());
          }
        }
      }
    }
    for (std::size_t pin = 0; pin < kPinSlots; ++pin) {
      Begin("final check of pin slot " + std::to_string(pin));
      ComparePin(pin);
    }
  }

  // --- comparison and reporting ---

  void Begin(const std::string& call) {
    calls_.push_back(call);
    if (calls_.size() > kShownCalls) calls_.erase(calls_.begin());
    ++call_number_;
  }

  bool SameCode(KernReturn core, KernReturn model) {
    if (core == model) {
      calls_.back() += " -> " + std::string(vm::KernReturnName(core));
      return true;
    }
    Diverge("result: core " + std::string(vm::KernReturnName(core)) +
            ", model " + std::string(vm::KernReturnName(model)));
    return false;
  }

  void CompareBytes(const Bytes& core, const Bytes& model) {
    if (core.size() != model.size()) {
      Diverge("bytes read: core " + Hex(core.size()) + ", model " +
              Hex(model.size()));
    }
    if (core.empty() ||
        std::memcmp(core.data(), model.data(), core.size()) == 0) {
      return;
    }
    const auto [c, m] = std::mismatch(core.begin(), core.end(), model.begin());
    const auto offset = static_cast<std::uint64_t>(c - core.begin());
    Diverge("byte at offset " + Hex(offset) + " (page " +
            std::to_string(offset / page()) + " of the range): core " +
            Hex(*c) + ", model " + Hex(*m));
  }

  [[noreturn]] void Diverge(const std::string& detail) {
    std::fprintf(stderr,
                 "\ncore and model diverge at call #%zu\n  call: %s\n  %s\n"
                 "  config: page_size=%llu address_bits=%u page_limit=%llu "
                 "max_tasks=%llu flavor=%s\n  calls up to it, oldest first:\n",
                 call_number_, calls_.back().c_str(), detail.c_str(),
                 static_cast<unsigned long long>(config_.page_size),
                 config_.address_bits,
                 static_cast<unsigned long long>(config_.page_limit),
                 static_cast<unsigned long long>(config_.max_tasks),
                 vm::FlavorName(config_.flavor));
    for (const std::string& call : calls_) {
      std::fprintf(stderr, "    %s\n", call.c_str());
    }
    std::abort();
  }

  const vm::VmConfig config_;
  const std::uint64_t limit_;  // 2^address_bits
  std::unique_ptr<vm::VmSystem> system_;
  std::unique_ptr<Model> model_;
  std::vector<std::shared_ptr<Task>> tasks_;  // numbered as the model's
  std::array<PinnedPages, kPinSlots> pins_;
  std::vector<std::string> calls_;  // the last kShownCalls, with results
  std::size_t call_number_ = 0;
  std::uint64_t work_ = 0;  // pages of model work spent (Spend)
  bool spent_ = false;      // the input has spent kMaxWork
};

}  // namespace
}  // namespace taskfs::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  taskfs::fuzz::FuzzInput in(data, size);
  const std::uint8_t config_byte = in.Byte();
  const std::uint8_t flavor_byte = in.Byte();
  taskfs::vm::VmConfig config;
  constexpr std::uint64_t kPageSizes[] = {4096, 16384, 65536, 4096};
  config.page_size = kPageSizes[config_byte & 3];
  config.address_bits = (config_byte & 3) == 3 ? taskfs::fuzz::kBigAddressBits
                                               : taskfs::fuzz::kAddressBits;
  const std::uint64_t n = config_byte >> 2;
  config.page_limit = n == 63 ? 0 : (n + 1) * (config.page_size / 2);
  config.max_tasks = taskfs::fuzz::kMaxTasks;
  config.flavor = (flavor_byte & 1) != 0 ? taskfs::vm::Flavor::kXnu
                                         : taskfs::vm::Flavor::kClassic;
  taskfs::fuzz::Harness harness(config);
  harness.Run(in);
  return 0;
}
