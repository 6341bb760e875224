// The reference model of the Mach facade (vmcore/vm_user.h), shared by the
// differential test and the vm_ops fuzz target.
//
// A deliberately simple model: one std::map entry per allocated page holding
// that page's attributes and bytes, and each call of docs/reference.md §1, §2
// and §6 written as a walk over pages in ascending order. It knows nothing of
// the core's map entries, objects, clipping, merging or page tables, so where
// the core and the model agree on every result code, every byte read, every
// region list and every statistic, none of the core's cleverness has changed
// what a caller sees.
//
// Not thread-safe; one caller drives it next to the core.
#ifndef TASKFS_TESTS_VMCORE_REFERENCE_MODEL_H_
#define TASKFS_TESTS_VMCORE_REFERENCE_MODEL_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "vmcore/kern_return.h"
#include "vmcore/vm_system.h"
#include "vmcore/vm_types.h"

namespace taskfs::vm::reference {

// --- printing ----------------------------------------------------------------

// For divergence reports: "0x1f", "rw-" (or hex for bits outside
// VM_PROT_ALL), "share" (or hex), "[0x1000-0x3000 rw-/rwx copy, ...]" and
// "{regions 1, virtual 0x2000, ...}".
std::string Hex(std::uint64_t value);
std::string ProtName(vm_prot_t prot);
std::string InheritName(vm_inherit_t inheritance);
std::string RegionsText(const std::vector<RegionInfo>& regions);
std::string StatsText(const TaskStatistics& s);

bool SameStats(const TaskStatistics& a, const TaskStatistics& b);

// --- the model ---------------------------------------------------------------

using Bytes = std::vector<std::uint8_t>;

// The bytes of one written page. Never changed once made: a write makes a new
// one, so whoever still holds the old one (a copy-on-write copy, a pinned
// read) keeps the old bytes. Null means never written, which reads as zeros.
// Each of these stands for one physical page of the core, which is what lets
// the model predict the memory limit and the resident and shared bytes.
using PageData = std::shared_ptr<const Bytes>;

// What one page of one task shows. The pages of a `share` region in a parent
// and in its forked child hold the same Slot, so a write or a copy through
// either changes what both read; everything else has a Slot of its own.
struct Slot {
  PageData data;
};

struct PageState {
  vm_prot_t protection = VM_PROT_DEFAULT;
  vm_prot_t max_protection = VM_PROT_ALL;
  vm_inherit_t inheritance = VM_INHERIT_DEFAULT;
  std::shared_ptr<Slot> slot;
};

struct ModelTask {
  std::string name;
  bool alive = true;
  std::map<std::uint64_t, PageState> pages;  // by page number
};

// Tasks are numbered by creation, the same numbers the harness uses for the
// core's tasks. Every call states its checks in docs/reference.md §2's order,
// one page at a time, and returns what the vm_user.h call of the same name must
// return on task number t (which must exist, terminated or not).
class Model {
 public:
  Model(const VmConfig& config, std::size_t pin_slots)
      : page_size_(config.page_size),
        limit_(std::uint64_t{1} << config.address_bits),
        total_pages_(limit_ / page_size_),
        limit_pages_(config.page_limit / config.page_size),
        max_tasks_(config.max_tasks),
        xnu_(config.flavor == Flavor::kXnu),
        pins_(pin_slots),
        pin_spans_(pin_slots) {}

  std::size_t task_count() const { return tasks_.size(); }
  bool alive(std::size_t t) const { return tasks_[t].alive; }
  const std::string& name(std::size_t t) const { return tasks_[t].name; }

  std::size_t LiveCount() const;

  // On success the new task is number task_count() - 1.
  KernReturn Create(const std::string& name);

  KernReturn Fork(std::size_t parent, const std::string& name);

  KernReturn Terminate(std::size_t t);

  KernReturn Allocate(std::size_t t, vm_address_t* address, vm_size_t size,
                      bool anywhere);

  KernReturn Deallocate(std::size_t t, vm_address_t address, vm_size_t size);

  KernReturn Protect(std::size_t t, vm_address_t address, vm_size_t size,
                     bool set_maximum, vm_prot_t new_prot);

  KernReturn Inherit(std::size_t t, vm_address_t address, vm_size_t size,
                     vm_inherit_t inheritance);

  KernReturn Read(std::size_t t, vm_address_t address, vm_size_t size,
                  Bytes* out) const;

  // vm_read without a copy, into pin slot `pin` (emptied first, like the
  // core's PinnedPages): the pages stay held, and count against the memory
  // limit, until Unpin.
  KernReturn ReadPinned(std::size_t t, vm_address_t address, vm_size_t size,
                        std::size_t pin);
  Bytes PinnedBytes(std::size_t pin) const {
    return Slice(Concatenate(pins_[pin]), pin_spans_[pin]);
  }
  void Unpin(std::size_t pin) {
    pins_[pin].clear();
    pin_spans_[pin] = {};
  }

  KernReturn Write(std::size_t t, vm_address_t address,
                   const std::uint8_t* data, vm_size_t size);

  // vm_fill: any alignment, no protection check, every page allocated.
  KernReturn Fill(std::size_t t, vm_address_t address, vm_size_t size,
                  std::uint8_t byte);

  KernReturn Copy(std::size_t t, vm_address_t source, vm_size_t size,
                  vm_address_t dest);

  KernReturn MapCopy(std::size_t dst_t, vm_address_t dest, std::size_t src_t,
                     vm_address_t source, vm_size_t size, bool dst_alloc,
                     bool src_destroy);

  // vm_remap (vmcore/vm_user.h): the pages of [trunc(source),
  // trunc(source) + round(size)) of src_t mapped into dst_t at
  // trunc(*target), or with anywhere at the lowest hole; *target is set to
  // where. Without copy the new pages hold the source's Slots (the same
  // memory, as a share region after a fork); with copy Slots of their own
  // with the same bytes (copy-on-write). They keep the source's protections
  // and take inheritance; *cur and *max are the protections common to every
  // source page.
  KernReturn Remap(std::size_t dst_t, vm_address_t* target, vm_size_t size,
                   bool anywhere, std::size_t src_t, vm_address_t source,
                   bool copy, vm_prot_t* cur, vm_prot_t* max,
                   vm_inherit_t inheritance);

  KernReturn RegionList(std::size_t t, std::vector<RegionInfo>* out) const;

  KernReturn Region(std::size_t t, vm_address_t* address,
                    RegionInfo* info) const;

  KernReturn FindData(std::size_t t, vm_address_t from,
                      vm_address_t* found) const;

  KernReturn FindHole(std::size_t t, vm_address_t from,
                      vm_address_t* found) const;

  KernReturn Statistics(std::size_t t, TaskStatistics* out) const;

  // Statistics of every task, by task number, in one walk of all pages
  // (Statistics walks all pages for each task): what a check of every task
  // after every call can afford. A terminated task's code is
  // KERN_INVALID_TASK. With live_pages, sets it to LivePages() too.
  std::vector<std::pair<KernReturn, TaskStatistics>> AllStatistics(
      std::uint64_t* live_pages = nullptr) const;

  // The page numbers of task t whose pages hold written bytes, ascending;
  // every other allocated page reads as zeros.
  std::vector<std::uint64_t> WrittenPages(std::size_t t) const;

  // Written pages held anywhere in the system: mapped by a live task or
  // pinned by a read.
  std::uint64_t LivePages() const { return CountMappings().size(); }

  // Runs [first, end) of allocated page numbers whose protection includes
  // `needed`, ascending.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> Runs(
      std::size_t t, vm_prot_t needed) const;

 private:
  static bool ValidName(std::string_view name);

  KernReturn CheckNewName(const std::string& name) const;

  bool Aligned(std::uint64_t value) const { return value % page_size_ == 0; }
  // The alignment rule of vm_read, vm_write and vm_copy: any value in the
  // XNU flavor (vm_user.h).
  bool TransferAligned(std::uint64_t value) const {
    return xnu_ || Aligned(value);
  }
  // The pages a transfer's bytes touch (all of them whole in the classic
  // flavor); false if they do not lie inside the address space.
  bool TransferPages(vm_address_t address, vm_size_t size, std::uint64_t* first,
                     std::uint64_t* end) const;
  static Bytes Slice(const Bytes& bytes,
                     std::pair<std::uint64_t, std::uint64_t> span) {
    // A zero-size read touches no page: there are no bytes to offset into.
    if (span.second == 0) return {};
    return Bytes(bytes.begin() + span.first,
                 bytes.begin() + span.first + span.second);
  }

  // Page numbers [*first, *end) of vm_allocate's rounding, the address and
  // the size each on its own: [trunc(address), trunc(address) +
  // round(size)); false if it does not lie inside the address space.
  bool ApartPages(vm_address_t address, vm_size_t size, std::uint64_t* first,
                  std::uint64_t* end) const;

  // The lowest page number of a hole of count free pages in task; false if
  // there is none.
  bool LowestHole(const ModelTask& task, std::uint64_t count,
                  std::uint64_t* first) const;

  // Page numbers [*first, *end) of Mach's rounded range [trunc(address),
  // round(address + size)); false if it wraps or leaves the address space.
  bool RoundedPages(vm_address_t address, vm_size_t size, std::uint64_t* first,
                    std::uint64_t* end) const;

  // The pages [*first, *end) of Mach's rounded range of a call (size > 0)
  // that needs them all allocated: KERN_INVALID_ADDRESS if it wraps, leaves
  // the address space or has a page not allocated.
  KernReturn AllocatedPages(const ModelTask& task, vm_address_t address,
                            vm_size_t size, std::uint64_t* first,
                            std::uint64_t* end) const;

  // The checks vm_copy and vm_map_copy make first, in Mach's order: the
  // alignment of source, size and dest; then, unless size is 0 (which
  // succeeds at once, the page numbers left unset), both ranges inside the
  // address space and the source's pages readable in src.
  // bytes: vm_copy, which follows the flavor's transfer rule; vm_map_copy
  // takes whole pages in both flavors.
  KernReturn CheckCopy(const ModelTask& src, vm_address_t source,
                       vm_size_t size, vm_address_t dest,
                       std::uint64_t* src_first, std::uint64_t* src_end,
                       std::uint64_t* dst_first, std::uint64_t* dst_end,
                       bool bytes = false) const;

  // The verdict of the lowest page of [first, end) that is not allocated
  // (KERN_INVALID_ADDRESS) or lacks `needed` (KERN_PROTECTION_FAILURE).
  static KernReturn CheckPages(const ModelTask& task, std::uint64_t first,
                               std::uint64_t end, vm_prot_t needed);

  static bool AnyAllocated(const ModelTask& task, std::uint64_t first,
                           std::uint64_t end);

  static void MapFresh(ModelTask& task, std::uint64_t first, std::uint64_t end);

  static std::vector<PageData> Snapshot(const ModelTask& task,
                                        std::uint64_t first, std::uint64_t end);

  Bytes Concatenate(const std::vector<PageData>& pages) const;

  KernReturn ReadPages(std::size_t t, vm_address_t address, vm_size_t size,
                       std::vector<PageData>* pages) const;

  // For each written page held by a live task or a pin, how many task pages
  // show it (0 if only pinned). Counted from scratch by walking everything:
  // slower than bookkeeping, but nothing to get wrong.
  std::unordered_map<const Bytes*, std::uint64_t> CountMappings() const;

  // Writes [address, address + size) of allocated pages (bounds and pages
  // checked by the caller), produce(dst, offset_in_request, n) giving the
  // bytes. The memory limit is checked the plain way, as docs/reference.md §2
  // words it
  // ("the limit would be exceeded"): make the change, count the written
  // pages alive afterwards, and undo it all if there are more than the limit
  // allows.
  template <typename Produce>
  KernReturn Store(ModelTask& task, vm_address_t address, vm_size_t size,
                   Produce&& produce);

  const std::uint64_t page_size_;
  const std::uint64_t limit_;        // 2^address_bits
  const std::uint64_t total_pages_;  // limit_ / page_size_
  const std::uint64_t limit_pages_;  // memory limit in pages; 0 = none
  const std::uint64_t max_tasks_;
  const bool xnu_;  // VmConfig::flavor is kXnu
  std::vector<ModelTask> tasks_;
  std::vector<std::vector<PageData>> pins_;
  // The bytes of each pin's pages that its read asked for: offset, size.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> pin_spans_;
};

}  // namespace taskfs::vm::reference

#endif  // TASKFS_TESTS_VMCORE_REFERENCE_MODEL_H_
