#include "tests/vmcore/reference_model.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <unordered_set>

namespace taskfs::vm::reference {
namespace {

// 128 bits hold address + size + page_size - 1 for any 64-bit inputs, so the
// model's range checks need no overflow reasoning of their own.
using Wide = unsigned __int128;

}  // namespace

std::string Hex(std::uint64_t value) {
  char buffer[24];
  std::snprintf(buffer, sizeof buffer, "0x%" PRIx64, value);
  return buffer;
}

std::string ProtName(vm_prot_t prot) {
  if ((prot & ~VM_PROT_ALL) != 0) return Hex(prot);
  std::string name = "---";
  if ((prot & VM_PROT_READ) != 0) name[0] = 'r';
  if ((prot & VM_PROT_WRITE) != 0) name[1] = 'w';
  if ((prot & VM_PROT_EXECUTE) != 0) name[2] = 'x';
  return name;
}

std::string InheritName(vm_inherit_t inheritance) {
  switch (inheritance) {
    case VM_INHERIT_SHARE:
      return "share";
    case VM_INHERIT_COPY:
      return "copy";
    case VM_INHERIT_NONE:
      return "none";
    default:
      return Hex(inheritance);
  }
}

std::string RegionsText(const std::vector<RegionInfo>& regions) {
  std::string text = "[";
  for (const RegionInfo& r : regions) {
    if (text.size() > 1) text += ", ";
    text += Hex(r.start) + "-" + Hex(r.start + r.size) + " " +
            ProtName(r.protection) + "/" + ProtName(r.max_protection) + " " +
            InheritName(r.inheritance);
  }
  return text + "]";
}

std::string StatsText(const TaskStatistics& s) {
  return "{regions " + std::to_string(s.regions) + ", virtual " +
         Hex(s.virtual_bytes) + ", resident " + Hex(s.resident_bytes) +
         ", shared " + Hex(s.shared_bytes) + "}";
}

bool SameStats(const TaskStatistics& a, const TaskStatistics& b) {
  return a.regions == b.regions && a.virtual_bytes == b.virtual_bytes &&
         a.resident_bytes == b.resident_bytes &&
         a.shared_bytes == b.shared_bytes;
}

std::size_t Model::LiveCount() const {
  return static_cast<std::size_t>(
      std::count_if(tasks_.begin(), tasks_.end(),
                    [](const ModelTask& task) { return task.alive; }));
}

KernReturn Model::Create(const std::string& name) {
  if (KernReturn kr = CheckNewName(name); kr != KERN_SUCCESS) return kr;
  tasks_.push_back(ModelTask{name, true, {}});
  return KERN_SUCCESS;
}

KernReturn Model::Fork(std::size_t parent, const std::string& name) {
  if (!ValidName(name)) return KERN_INVALID_ARGUMENT;
  if (!tasks_[parent].alive) return KERN_INVALID_TASK;
  if (KernReturn kr = CheckNewName(name); kr != KERN_SUCCESS) return kr;
  ModelTask child{name, true, {}};
  for (const auto& [page, state] : tasks_[parent].pages) {
    if (state.inheritance == VM_INHERIT_SHARE) {
      child.pages[page] = state;
    } else if (state.inheritance == VM_INHERIT_COPY) {
      PageState copy = state;
      copy.slot = std::make_shared<Slot>(Slot{state.slot->data});
      child.pages[page] = copy;
    }
  }
  tasks_.push_back(std::move(child));
  return KERN_SUCCESS;
}

KernReturn Model::Terminate(std::size_t t) {
  ModelTask& task = tasks_[t];
  if (!task.alive) return KERN_INVALID_TASK;
  task.alive = false;
  task.pages.clear();
  return KERN_SUCCESS;
}

KernReturn Model::Allocate(std::size_t t, vm_address_t* address, vm_size_t size,
                           bool anywhere) {
  ModelTask& task = tasks_[t];
  if (!task.alive) return KERN_INVALID_TASK;
  if (anywhere) {
    if (size == 0) {
      *address = 0;
      return KERN_SUCCESS;
    }
    if (size > limit_) return KERN_NO_SPACE;
    const std::uint64_t count = (size + page_size_ - 1) / page_size_;
    std::uint64_t candidate = 0;
    if (!LowestHole(task, count, &candidate)) return KERN_NO_SPACE;
    MapFresh(task, candidate, candidate + count);
    *address = candidate * page_size_;
    return KERN_SUCCESS;
  }
  if (size == 0) return KERN_SUCCESS;
  std::uint64_t first = 0, end = 0;
  if (!ApartPages(*address, size, &first, &end)) return KERN_INVALID_ADDRESS;
  if (AnyAllocated(task, first, end)) return KERN_NO_SPACE;
  MapFresh(task, first, end);
  *address = first * page_size_;
  return KERN_SUCCESS;
}

KernReturn Model::Deallocate(std::size_t t, vm_address_t address,
                             vm_size_t size) {
  ModelTask& task = tasks_[t];
  if (!task.alive) return KERN_INVALID_TASK;
  if (size == 0) return KERN_SUCCESS;
  std::uint64_t first, end;
  if (!RoundedPages(address, size, &first, &end)) {
    return KERN_INVALID_ADDRESS;
  }
  task.pages.erase(task.pages.lower_bound(first), task.pages.lower_bound(end));
  return KERN_SUCCESS;
}

KernReturn Model::Protect(std::size_t t, vm_address_t address, vm_size_t size,
                          bool set_maximum, vm_prot_t new_prot) {
  ModelTask& task = tasks_[t];
  if (!task.alive) return KERN_INVALID_TASK;
  if ((new_prot & ~VM_PROT_ALL) != 0) return KERN_INVALID_ARGUMENT;
  if (size == 0) return KERN_SUCCESS;
  std::uint64_t first, end;
  if (!RoundedPages(address, size, &first, &end)) {
    return KERN_INVALID_ADDRESS;
  }
  for (std::uint64_t page = first; page < end; ++page) {
    auto it = task.pages.find(page);
    if (it == task.pages.end()) return KERN_INVALID_ADDRESS;
    // Either form: the new value may not go beyond the present maximum.
    if ((new_prot & ~it->second.max_protection) != 0) {
      return KERN_PROTECTION_FAILURE;
    }
  }
  for (std::uint64_t page = first; page < end; ++page) {
    PageState& state = task.pages.at(page);
    if (set_maximum) {
      state.max_protection = new_prot;
      state.protection &= new_prot;
    } else {
      state.protection = new_prot;
    }
  }
  return KERN_SUCCESS;
}

KernReturn Model::Inherit(std::size_t t, vm_address_t address, vm_size_t size,
                          vm_inherit_t inheritance) {
  ModelTask& task = tasks_[t];
  if (!task.alive) return KERN_INVALID_TASK;
  if (inheritance > VM_INHERIT_NONE) return KERN_INVALID_ARGUMENT;
  if (size == 0) return KERN_SUCCESS;
  std::uint64_t first = 0, end = 0;
  if (KernReturn kr = AllocatedPages(task, address, size, &first, &end);
      kr != KERN_SUCCESS) {
    return kr;
  }
  for (std::uint64_t page = first; page < end; ++page) {
    task.pages.at(page).inheritance = inheritance;
  }
  return KERN_SUCCESS;
}

KernReturn Model::Read(std::size_t t, vm_address_t address, vm_size_t size,
                       Bytes* out) const {
  std::vector<PageData> pages;
  KernReturn kr = ReadPages(t, address, size, &pages);
  if (kr != KERN_SUCCESS) return kr;
  // The bytes of [address, address + size) straight from the pages: no
  // whole-page copy to slice afterwards, and out's capacity is reused.
  out->clear();
  out->reserve(size);
  std::uint64_t skip = address % page_size_;
  for (const PageData& data : pages) {
    const std::uint64_t take =
        std::min<std::uint64_t>(page_size_ - skip, size - out->size());
    if (take == 0) break;
    if (data == nullptr) {
      out->insert(out->end(), take, 0);
    } else {
      const auto from = data->begin() + static_cast<std::ptrdiff_t>(skip);
      out->insert(out->end(), from, from + static_cast<std::ptrdiff_t>(take));
    }
    skip = 0;
  }
  return kr;
}

KernReturn Model::ReadPinned(std::size_t t, vm_address_t address,
                             vm_size_t size, std::size_t pin) {
  Unpin(pin);
  std::vector<PageData> pages;
  KernReturn kr = ReadPages(t, address, size, &pages);
  if (kr == KERN_SUCCESS) {
    pins_[pin] = std::move(pages);
    pin_spans_[pin] = {size == 0 ? 0 : address % page_size_, size};
  }
  return kr;
}

template <typename Produce>
KernReturn Model::Store(ModelTask& task, vm_address_t address, vm_size_t size,
                        Produce&& produce) {
  const std::uint64_t first = address / page_size_;
  const std::uint64_t end = static_cast<std::uint64_t>(
      (Wide{address} + size + page_size_ - 1) / page_size_);
  std::vector<PageData> before;
  for (std::uint64_t page = first; page < end; ++page) {
    Slot& slot = *task.pages.at(page).slot;
    before.push_back(slot.data);
    Bytes bytes = slot.data != nullptr ? *slot.data : Bytes(page_size_, 0);
    const vm_address_t page_start = page * page_size_;
    const vm_address_t from = std::max(page_start, address);
    const vm_address_t to = std::min(page_start + page_size_, address + size);
    produce(bytes.data() + (from - page_start), from - address, to - from);
    slot.data = std::make_shared<const Bytes>(std::move(bytes));
  }
  if (limit_pages_ != 0 && LivePages() > limit_pages_) {
    // Last page first: two pages of the range may hold one Slot (a share
    // remap within the task), and the first one's old bytes are the Slot's.
    for (std::uint64_t page = end; page-- > first;) {
      task.pages.at(page).slot->data = before[page - first];
    }
    return KERN_RESOURCE_SHORTAGE;
  }
  return KERN_SUCCESS;
}

KernReturn Model::Write(std::size_t t, vm_address_t address,
                        const std::uint8_t* data, vm_size_t size) {
  ModelTask& task = tasks_[t];
  if (!task.alive) return KERN_INVALID_TASK;
  if (!TransferAligned(address) || !TransferAligned(size)) {
    return KERN_INVALID_ARGUMENT;
  }
  if (size == 0) return KERN_SUCCESS;
  std::uint64_t first, end;
  if (!TransferPages(address, size, &first, &end)) {
    return KERN_INVALID_ADDRESS;
  }
  if (KernReturn kr = CheckPages(task, first, end, VM_PROT_WRITE);
      kr != KERN_SUCCESS) {
    return kr;
  }
  return Store(
      task, address, size,
      [data](std::uint8_t* dst, std::uint64_t offset, std::uint64_t n) {
        std::copy(data + offset, data + offset + n, dst);
      });
}

KernReturn Model::Fill(std::size_t t, vm_address_t address, vm_size_t size,
                       std::uint8_t byte) {
  ModelTask& task = tasks_[t];
  if (!task.alive) return KERN_INVALID_TASK;
  if (size == 0) return KERN_SUCCESS;
  std::uint64_t first = 0, end = 0;
  if (KernReturn kr = AllocatedPages(task, address, size, &first, &end);
      kr != KERN_SUCCESS) {
    return kr;
  }
  return Store(task, address, size,
               [byte](std::uint8_t* dst, std::uint64_t, std::uint64_t n) {
                 std::fill(dst, dst + n, byte);
               });
}

KernReturn Model::Copy(std::size_t t, vm_address_t source, vm_size_t size,
                       vm_address_t dest) {
  ModelTask& task = tasks_[t];
  if (!task.alive) return KERN_INVALID_TASK;
  std::uint64_t src_first = 0, src_end = 0, dst_first = 0, dst_end = 0;
  if (KernReturn kr = CheckCopy(task, source, size, dest, &src_first, &src_end,
                                &dst_first, &dst_end, true);
      kr != KERN_SUCCESS || size == 0) {
    return kr;
  }
  if (KernReturn kr = CheckPages(task, dst_first, dst_end, VM_PROT_WRITE);
      kr != KERN_SUCCESS) {
    return kr;
  }
  if (!Aligned(source) || !Aligned(size) || !Aligned(dest)) {
    // The XNU flavor's byte copy: the source's bytes, then written.
    const Bytes bytes = Slice(Concatenate(Snapshot(task, src_first, src_end)),
                              {source % page_size_, size});
    return Store(
        task, dest, size,
        [&bytes](std::uint8_t* dst, std::uint64_t offset, std::uint64_t n) {
          std::copy(bytes.begin() + offset, bytes.begin() + offset + n, dst);
        });
  }
  // As if the source were read whole first: overlap cannot smear.
  const std::vector<PageData> pages = Snapshot(task, src_first, src_end);
  // The destination's pages are consecutive entries, all allocated.
  auto it = task.pages.find(dst_first);
  for (const PageData& data : pages) (it++)->second.slot->data = data;
  return KERN_SUCCESS;
}

KernReturn Model::MapCopy(std::size_t dst_t, vm_address_t dest,
                          std::size_t src_t, vm_address_t source,
                          vm_size_t size, bool dst_alloc, bool src_destroy) {
  ModelTask& dst = tasks_[dst_t];
  ModelTask& src = tasks_[src_t];
  if (!dst.alive || !src.alive) return KERN_INVALID_TASK;
  std::uint64_t src_first = 0, src_end = 0, dst_first = 0, dst_end = 0;
  if (KernReturn kr = CheckCopy(src, source, size, dest, &src_first, &src_end,
                                &dst_first, &dst_end);
      kr != KERN_SUCCESS || size == 0) {
    return kr;
  }
  if (dst_alloc) {
    if (AnyAllocated(dst, dst_first, dst_end)) return KERN_NO_SPACE;
  } else if (KernReturn kr = CheckPages(dst, dst_first, dst_end, VM_PROT_WRITE);
             kr != KERN_SUCCESS) {
    return kr;
  }
  const std::vector<PageData> pages = Snapshot(src, src_first, src_end);
  if (dst_alloc) {
    // New memory with the source's attributes, aliasing nothing.
    auto from = src.pages.find(src_first);
    for (std::uint64_t i = 0; i < pages.size(); ++i, ++from) {
      PageState state = from->second;
      state.slot = std::make_shared<Slot>(Slot{pages[i]});
      dst.pages[dst_first + i] = state;
    }
  } else {
    // The destination's pages are consecutive entries, all allocated.
    auto it = dst.pages.find(dst_first);
    for (const PageData& data : pages) (it++)->second.slot->data = data;
  }
  if (src_destroy) {
    auto erase = [&src](std::uint64_t first, std::uint64_t end) {
      if (first < end) {
        src.pages.erase(src.pages.lower_bound(first),
                        src.pages.lower_bound(end));
      }
    };
    if (&src == &dst) {
      // Within one task the destination keeps what it received: a move.
      erase(src_first, std::min(src_end, dst_first));
      erase(std::max(src_first, dst_end), src_end);
    } else {
      erase(src_first, src_end);
    }
  }
  return KERN_SUCCESS;
}

KernReturn Model::Remap(std::size_t dst_t, vm_address_t* target, vm_size_t size,
                        bool anywhere, std::size_t src_t, vm_address_t source,
                        bool copy, vm_prot_t* cur, vm_prot_t* max,
                        vm_inherit_t inheritance) {
  ModelTask& dst = tasks_[dst_t];
  const ModelTask& src = tasks_[src_t];
  if (!dst.alive || !src.alive) return KERN_INVALID_TASK;
  if (inheritance > VM_INHERIT_NONE || size == 0) return KERN_INVALID_ARGUMENT;
  std::uint64_t src_first = 0, src_end = 0, dst_first = 0, dst_end = 0;
  if (!ApartPages(source, size, &src_first, &src_end) ||
      (!anywhere && !ApartPages(*target, size, &dst_first, &dst_end))) {
    return KERN_INVALID_ADDRESS;
  }
  // Any protection: the source's pages need only be allocated.
  if (KernReturn kr = CheckPages(src, src_first, src_end, VM_PROT_NONE);
      kr != KERN_SUCCESS) {
    return kr;
  }
  const std::uint64_t count = src_end - src_first;
  if (anywhere) {
    if (!LowestHole(dst, count, &dst_first)) return KERN_NO_SPACE;
    dst_end = dst_first + count;
  } else if (AnyAllocated(dst, dst_first, dst_end)) {
    return KERN_NO_SPACE;
  }
  // The source's states first: src and dst may be one task.
  std::vector<PageState> states;
  vm_prot_t common = VM_PROT_ALL, common_max = VM_PROT_ALL;
  for (auto it = src.pages.find(src_first); states.size() < count; ++it) {
    PageState state = it->second;
    common &= state.protection;
    common_max &= state.max_protection;
    state.inheritance = inheritance;
    if (copy) state.slot = std::make_shared<Slot>(Slot{state.slot->data});
    states.push_back(std::move(state));
  }
  for (std::uint64_t i = 0; i < count; ++i) {
    dst.pages[dst_first + i] = std::move(states[i]);
  }
  *target = dst_first * page_size_;
  *cur = common;
  *max = common_max;
  return KERN_SUCCESS;
}

KernReturn Model::RegionList(std::size_t t,
                             std::vector<RegionInfo>* out) const {
  const ModelTask& task = tasks_[t];
  if (!task.alive) return KERN_INVALID_TASK;
  out->clear();
  for (const auto& [page, state] : task.pages) {
    const vm_address_t start = page * page_size_;
    if (!out->empty()) {
      RegionInfo& last = out->back();
      if (last.start + last.size == start &&
          last.protection == state.protection &&
          last.max_protection == state.max_protection &&
          last.inheritance == state.inheritance) {
        last.size += page_size_;
        continue;
      }
    }
    out->push_back(RegionInfo{start, page_size_, state.protection,
                              state.max_protection, state.inheritance});
  }
  return KERN_SUCCESS;
}

KernReturn Model::Region(std::size_t t, vm_address_t* address,
                         RegionInfo* info) const {
  std::vector<RegionInfo> regions;
  if (KernReturn kr = RegionList(t, &regions); kr != KERN_SUCCESS) return kr;
  for (const RegionInfo& region : regions) {
    if (region.start + region.size > *address) {
      *info = region;
      *address = region.start;
      return KERN_SUCCESS;
    }
  }
  return KERN_NO_SPACE;
}

KernReturn Model::FindData(std::size_t t, vm_address_t from,
                           vm_address_t* found) const {
  const ModelTask& task = tasks_[t];
  if (!task.alive) return KERN_INVALID_TASK;
  auto it = task.pages.lower_bound(from / page_size_);
  if (it == task.pages.end()) return KERN_NO_SPACE;
  *found = std::max(from, it->first * page_size_);
  return KERN_SUCCESS;
}

KernReturn Model::FindHole(std::size_t t, vm_address_t from,
                           vm_address_t* found) const {
  const ModelTask& task = tasks_[t];
  if (!task.alive) return KERN_INVALID_TASK;
  std::uint64_t page = from / page_size_;
  if (task.pages.count(page) == 0) {
    *found = std::min(from, limit_);
    return KERN_SUCCESS;
  }
  while (task.pages.count(page) != 0) ++page;
  *found = page * page_size_;
  return KERN_SUCCESS;
}

KernReturn Model::Statistics(std::size_t t, TaskStatistics* out) const {
  const ModelTask& task = tasks_[t];
  if (!task.alive) return KERN_INVALID_TASK;
  std::vector<RegionInfo> regions;
  RegionList(t, &regions);
  TaskStatistics stats;
  stats.regions = regions.size();
  stats.virtual_bytes = task.pages.size() * page_size_;
  const auto mappings = CountMappings();
  std::unordered_set<const Bytes*> seen;
  for (const auto& [page, state] : task.pages) {
    const Bytes* data = state.slot->data.get();
    if (data == nullptr || !seen.insert(data).second) continue;
    stats.resident_bytes += page_size_;
    // Shown at more than one task page: another address, another task,
    // copy-on-write or `share` alike.
    if (mappings.at(data) > 1) stats.shared_bytes += page_size_;
  }
  *out = stats;
  return KERN_SUCCESS;
}

std::vector<std::pair<KernReturn, TaskStatistics>> Model::AllStatistics(
    std::uint64_t* live_pages) const {
  // One walk of every page: each task's regions, allocated pages and
  // written pages, and how many task pages show each written page (as
  // CountMappings counts them); then Statistics' counting over the written
  // pages alone.
  std::vector<std::pair<KernReturn, TaskStatistics>> all(
      tasks_.size(), {KERN_INVALID_TASK, TaskStatistics{}});
  std::vector<std::vector<const Bytes*>> written(tasks_.size());
  std::unordered_map<const Bytes*, std::uint64_t> mappings;
  for (std::size_t t = 0; t < tasks_.size(); ++t) {
    const ModelTask& task = tasks_[t];
    if (!task.alive) continue;
    TaskStatistics& stats = all[t].second;
    all[t].first = KERN_SUCCESS;
    stats.virtual_bytes = task.pages.size() * page_size_;
    const PageState* last = nullptr;
    std::uint64_t last_page = 0;
    for (const auto& [page, state] : task.pages) {
      // A region per maximal run of equal attributes, as RegionList makes
      // them.
      if (last == nullptr || last_page + 1 != page ||
          last->protection != state.protection ||
          last->max_protection != state.max_protection ||
          last->inheritance != state.inheritance) {
        ++stats.regions;
      }
      last = &state;
      last_page = page;
      if (const Bytes* data = state.slot->data.get()) {
        written[t].push_back(data);
        ++mappings[data];
      }
    }
  }
  for (const std::vector<PageData>& pin : pins_) {
    for (const PageData& data : pin) {
      if (data != nullptr) mappings.try_emplace(data.get(), 0);
    }
  }
  if (live_pages != nullptr) *live_pages = mappings.size();
  for (std::size_t t = 0; t < tasks_.size(); ++t) {
    std::unordered_set<const Bytes*> seen;
    for (const Bytes* data : written[t]) {
      if (!seen.insert(data).second) continue;
      all[t].second.resident_bytes += page_size_;
      if (mappings.at(data) > 1) all[t].second.shared_bytes += page_size_;
    }
  }
  return all;
}

std::vector<std::uint64_t> Model::WrittenPages(std::size_t t) const {
  std::vector<std::uint64_t> written;
  for (const auto& [page, state] : tasks_[t].pages) {
    if (state.slot->data != nullptr) written.push_back(page);
  }
  return written;
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> Model::Runs(
    std::size_t t, vm_prot_t needed) const {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> runs;
  for (const auto& [page, state] : tasks_[t].pages) {
    if ((state.protection & needed) != needed) continue;
    if (!runs.empty() && runs.back().second == page) {
      ++runs.back().second;
    } else {
      runs.emplace_back(page, page + 1);
    }
  }
  return runs;
}

bool Model::ValidName(std::string_view name) {
  if (name.empty() || name.size() > 64 || name[0] == '.' ||
      name == "host_page_size") {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
}

KernReturn Model::CheckNewName(const std::string& name) const {
  if (!ValidName(name)) return KERN_INVALID_ARGUMENT;
  for (const ModelTask& task : tasks_) {
    if (task.alive && task.name == name) return KERN_NAME_EXISTS;
  }
  if (LiveCount() >= max_tasks_) return KERN_RESOURCE_SHORTAGE;
  return KERN_SUCCESS;
}

bool Model::ApartPages(vm_address_t address, vm_size_t size,
                       std::uint64_t* first, std::uint64_t* end) const {
  // Mach: trunc_page(address) and round_page(size), each on its own.
  const std::uint64_t page = address / page_size_;
  const std::uint64_t count = size / page_size_ + (size % page_size_ != 0);
  if (count > total_pages_ || page > total_pages_ - count) return false;
  *first = page;
  *end = page + count;
  return true;
}

bool Model::LowestHole(const ModelTask& task, std::uint64_t count,
                       std::uint64_t* first) const {
  // Walk the allocated pages upward.
  std::uint64_t candidate = 0;
  for (const auto& [page, state] : task.pages) {
    if (page - candidate >= count) break;
    candidate = page + 1;
  }
  if (total_pages_ - candidate < count) return false;
  *first = candidate;
  return true;
}

bool Model::RoundedPages(vm_address_t address, vm_size_t size,
                         std::uint64_t* first, std::uint64_t* end) const {
  const Wide end_page = (Wide{address} + size + page_size_ - 1) / page_size_;
  if (end_page > total_pages_) return false;
  *first = address / page_size_;
  *end = static_cast<std::uint64_t>(end_page);
  return true;
}

KernReturn Model::AllocatedPages(const ModelTask& task, vm_address_t address,
                                 vm_size_t size, std::uint64_t* first,
                                 std::uint64_t* end) const {
  if (!RoundedPages(address, size, first, end)) return KERN_INVALID_ADDRESS;
  return CheckPages(task, *first, *end, VM_PROT_NONE);
}

KernReturn Model::CheckCopy(const ModelTask& src, vm_address_t source,
                            vm_size_t size, vm_address_t dest,
                            std::uint64_t* src_first, std::uint64_t* src_end,
                            std::uint64_t* dst_first, std::uint64_t* dst_end,
                            bool bytes) const {
  const auto aligned = [&](std::uint64_t v) {
    return bytes ? TransferAligned(v) : Aligned(v);
  };
  if (!aligned(source) || !aligned(size) || !aligned(dest)) {
    return KERN_INVALID_ARGUMENT;
  }
  if (size == 0) return KERN_SUCCESS;
  if (!TransferPages(source, size, src_first, src_end) ||
      !TransferPages(dest, size, dst_first, dst_end)) {
    return KERN_INVALID_ADDRESS;
  }
  return CheckPages(src, *src_first, *src_end, VM_PROT_READ);
}

bool Model::TransferPages(vm_address_t address, vm_size_t size,
                          std::uint64_t* first, std::uint64_t* end) const {
  const Wide end_byte = Wide{address} + size;
  if (end_byte > limit_) return false;
  *first = address / page_size_;
  *end = static_cast<std::uint64_t>((end_byte + page_size_ - 1) / page_size_);
  return true;
}

KernReturn Model::CheckPages(const ModelTask& task, std::uint64_t first,
                             std::uint64_t end, vm_prot_t needed) {
  // One step per page from the first: allocated pages are consecutive
  // entries, and the first page missing from them is not allocated.
  auto it = task.pages.lower_bound(first);
  for (std::uint64_t page = first; page < end; ++page, ++it) {
    if (it == task.pages.end() || it->first != page) {
      return KERN_INVALID_ADDRESS;
    }
    if ((it->second.protection & needed) != needed) {
      return KERN_PROTECTION_FAILURE;
    }
  }
  return KERN_SUCCESS;
}

bool Model::AnyAllocated(const ModelTask& task, std::uint64_t first,
                         std::uint64_t end) {
  auto it = task.pages.lower_bound(first);
  return it != task.pages.end() && it->first < end;
}

void Model::MapFresh(ModelTask& task, std::uint64_t first, std::uint64_t end) {
  for (std::uint64_t page = first; page < end; ++page) {
    PageState state;
    state.slot = std::make_shared<Slot>();
    task.pages[page] = state;
  }
}

std::vector<PageData> Model::Snapshot(const ModelTask& task,
                                      std::uint64_t first, std::uint64_t end) {
  // Every page of [first, end) is allocated: consecutive entries.
  std::vector<PageData> pages;
  pages.reserve(end - first);
  auto it = task.pages.find(first);
  for (std::uint64_t page = first; page < end; ++page) {
    pages.push_back((it++)->second.slot->data);
  }
  return pages;
}

Bytes Model::Concatenate(const std::vector<PageData>& pages) const {
  Bytes bytes;
  bytes.reserve(pages.size() * page_size_);
  for (const PageData& data : pages) {
    if (data == nullptr) {
      bytes.insert(bytes.end(), page_size_, 0);
    } else {
      bytes.insert(bytes.end(), data->begin(), data->end());
    }
  }
  return bytes;
}

KernReturn Model::ReadPages(std::size_t t, vm_address_t address, vm_size_t size,
                            std::vector<PageData>* pages) const {
  const ModelTask& task = tasks_[t];
  if (!task.alive) return KERN_INVALID_TASK;
  if (!TransferAligned(address) || !TransferAligned(size)) {
    return KERN_INVALID_ARGUMENT;
  }
  // XNU's vm_read carries its size in a 32-bit count.
  if (xnu_ && size > 0xffffffffu) return KERN_INVALID_ARGUMENT;
  if (size == 0) {
    pages->clear();
    return KERN_SUCCESS;
  }
  std::uint64_t first, end;
  if (!TransferPages(address, size, &first, &end)) {
    return KERN_INVALID_ADDRESS;
  }
  if (KernReturn kr = CheckPages(task, first, end, VM_PROT_READ);
      kr != KERN_SUCCESS) {
    return kr;
  }
  *pages = Snapshot(task, first, end);
  return KERN_SUCCESS;
}

std::unordered_map<const Bytes*, std::uint64_t> Model::CountMappings() const {
  std::unordered_map<const Bytes*, std::uint64_t> mappings;
  for (const ModelTask& task : tasks_) {
    for (const auto& [page, state] : task.pages) {
      if (state.slot->data != nullptr) ++mappings[state.slot->data.get()];
    }
  }
  for (const std::vector<PageData>& pin : pins_) {
    for (const PageData& data : pin) {
      if (data != nullptr) mappings.try_emplace(data.get(), 0);
    }
  }
  return mappings;
}

}  // namespace taskfs::vm::reference
