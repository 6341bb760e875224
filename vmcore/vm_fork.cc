#include "vmcore/vm_fork.h"

#include <mutex>
#include <utility>
#include <vector>

#include "vmcore/locks.h"
#include "vmcore/memory_account.h"
#include "vmcore/page.h"
#include "vmcore/page_table.h"
#include "vmcore/phase_fair_mutex.h"
#include "vmcore/vm_object.h"

namespace taskfs::vm {
namespace {

// The child's entries, in address order. Their share entries are not
// covered yet (Insert does that).
std::vector<MapEntry> ChildEntries(const AddressMap& map) {
  std::vector<MapEntry> entries;
  ObjectLocks locks;
  locks.Add(map, PageRange::All(map.geometry()), /*exclusive=*/false);
  locks.LockAll();
  const unsigned shift = map.geometry().page_shift;
  for (const auto& [start, entry] : map.entries()) {
    if (entry.inheritance == VM_INHERIT_NONE) continue;
    MapEntry child = entry;
    if (entry.inheritance == VM_INHERIT_COPY) {
      // A new object at the same indexes, sharing the page-table subtrees:
      // copy-on-write both ways.
      const std::uint64_t lo = entry.offset;
      const std::uint64_t hi = lo + ((entry.end - entry.start) >> shift);
      child.object = std::make_shared<VmObject>(map.budget(), map.freer());
      MemoryAccount scratch(map.budget());
      PageTable::Undo undo(scratch, map.freer());
      child.object->pages().Assign(lo, hi, entry.object->pages(), lo, undo);
      undo.Commit();
    }
    entries.push_back(std::move(child));
  }
  return entries;
}

}  // namespace

KernResult<std::shared_ptr<Task>> ForkTask(VmSystem& system, const Task& parent,
                                           std::string_view name) {
  std::vector<MapEntry> entries = ChildEntries(parent.map());
  // The share entries are covered (Insert) only now, with no object locked:
  // the parent's shared task lock keeps their objects covered meanwhile, so
  // none of their pages can be freed.
  std::unique_lock<PhaseFairMutex> child_lock;
  KernResult<std::shared_ptr<Task>> child = system.AddTask(name, &child_lock);
  if (!child.ok()) return child;
  Task& task = *child.value();
  try {
    for (MapEntry& entry : entries) task.map().Insert(std::move(entry));
  } catch (...) {
    task.Terminate();
    system.RemoveTask(task);
    // Before child goes: the registry held the other reference, so the
    // task (and its lock) goes with child.
    child_lock.unlock();
    throw;
  }
  return child;
}

}  // namespace taskfs::vm
