#include "fs/generated_files.h"

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <vector>

#include "fs/render.h"
#include "vmcore/vm_system.h"
#include "vmcore/vm_user.h"

namespace taskfs::fs {
namespace {

// A maps snapshot: the list of regions and then its text are as large as
// the map, so both are charged to the open file while they are made (the
// text's line is 58 bytes; the list's vector may be twice its size).
vm::KernReturn MapsText(vm::Task& task, vm::MemoryAccount& account,
                        std::string* out) {
  constexpr std::uint64_t kPerRegion = 2 * sizeof(vm::RegionInfo) + 64;
  const vm::KernResult<std::vector<vm::RegionInfo>> regions =
      vm::vm_region_list(task, &account, kPerRegion);
  if (!regions.ok()) return regions.code();
  const std::uint64_t charged = regions.value().size() * kPerRegion;
  try {
    *out = RenderMaps(regions.value());
  } catch (...) {
    account.Release(charged);
    throw;
  }
  account.Release(charged);
  return vm::KERN_SUCCESS;
}

vm::KernReturn StatusText(const NodeTable& nodes, vm::Task& task,
                          std::string* out) {
  const vm::KernResult<vm::TaskStatistics> result = vm::task_statistics(task);
  if (!result.ok()) return result.code();
  TaskNode node;
  if (!nodes.Find(task.id(), &node)) return vm::KERN_INVALID_TASK;
  const vm::VmSystem& system = task.system();
  StatusFacts facts;
  facts.name = task.name();
  facts.id = task.id();
  facts.uid = node.uid;
  facts.gid = node.gid;
  facts.page_size = system.page_size();
  facts.address_bits = system.address_bits();
  facts.flavor = vm::FlavorName(system.config().flavor);
  *out = RenderStatus(facts, result.value());
  return vm::KERN_SUCCESS;
}

// A fresh snapshot of file's text in file.text, charged. Requires file.mu.
vm::KernReturn TakeSnapshot(const NodeTable& nodes, OpenFile& file) {
  const vm::KernReturn kr = file.kind == NodeKind::kMaps
                                ? MapsText(*file.task, file.account, &file.text)
                                : StatusText(nodes, *file.task, &file.text);
  if (kr != vm::KERN_SUCCESS) {
    file.text.clear();
    return kr;
  }
  return file.ChargeText() ? vm::KERN_SUCCESS : vm::KERN_RESOURCE_SHORTAGE;
}

}  // namespace

std::string_view TextPart(std::string_view text, off_t off, std::size_t size) {
  if (off < 0 || static_cast<std::size_t>(off) >= text.size()) return {};
  return text.substr(static_cast<std::size_t>(off), size);
}

namespace {

// An errors file reads the log itself (ErrorLog::Read), not a snapshot: its
// bytes stay where they are as lines are added.
vm::KernReturn ReadErrors(const NodeTable& nodes, OpenFile& file, off_t off,
                          std::size_t size, std::string* part) {
  std::lock_guard lock(file.mu);
  if (TaskNode node; !nodes.Find(file.task->id(), &node)) {
    return vm::KERN_INVALID_TASK;
  }
  // A read from the start begins with the oldest kept line; each read that
  // finds its bytes forgotten moves this file's later reads on as far, so a
  // sequential reader sees every kept line once.
  if (off == 0) file.errors_shift = 0;
  const std::uint64_t want =
      static_cast<std::uint64_t>(off) + file.errors_shift;
  file.errors_shift += file.errors->Read(want, size, part) - want;
  return vm::KERN_SUCCESS;
}

}  // namespace

vm::KernReturn ReadGenerated(const NodeTable& nodes, OpenFile& file, off_t off,
                             std::size_t size, std::string* part) {
  if (file.kind == NodeKind::kErrors) {
    return ReadErrors(nodes, file, off, size, part);
  }
  std::lock_guard lock(file.mu);
  vm::KernReturn kr = vm::KERN_SUCCESS;
  if (off == 0 || file.text.empty()) {
    kr = TakeSnapshot(nodes, file);
  } else if (TaskNode node; !nodes.Find(file.task->id(), &node)) {
    kr = vm::KERN_INVALID_TASK;
  }
  if (kr != vm::KERN_SUCCESS) return kr;
  // Only the part this read returns: a snapshot can be large.
  const std::string_view all = file.text;
  *part = all.substr(
      std::min<std::size_t>(static_cast<std::size_t>(off), all.size()), size);
  return vm::KERN_SUCCESS;
}

}  // namespace taskfs::fs
