#include "vmcore/vm_system.h"

#include <fmt/format.h>

#include <string>

#include "taskfs/task_name.h"
#include "vmcore/failure_reason.h"
#include "vmcore/page_table.h"
#include "vmcore/task.h"

namespace taskfs::vm {

VmSystem::VmSystem(const VmConfig& config)
    : config_(config),
      budget_(
          config.memory_limit, config.open_file_reserve,
          PageAllocator::PinReserveFor(config.pin_reserve, config.page_size)),
      pages_(config.page_size, budget_, config.page_limit),
      freer_(PageTable::kDeadNodes) {
  // Large subtrees freed in the background (page_table.h) first: their
  // pages then are the allocator's to give back.
  budget_.SetReclaimer(
      [](void* arg) {
        VmSystem& system = *static_cast<VmSystem*>(arg);
        const bool freed = system.freer_.Drain();
        return system.pages_.Reclaim() + (freed ? 1 : 0);
      },
      this);
  budget_.SetHeapTrim(config.heap_trim_threshold);
  if (config.charge_heap_overhang && config.heap_trim_threshold != 0) {
    budget_.ChargeHeapOverhang(config.heap_overhang_allowance);
  }
}

VmSystem::~VmSystem() {
  // Tasks still held elsewhere must not keep memory of a dead system.
  for (auto& [id, task] : tasks_by_id_) {
    std::unique_lock lock(task->mu());
    task->Terminate();
  }
  // The pages of subtrees still being freed are this system's: the freer
  // frees them all, then its thread ends and is joined, before the
  // allocator and the budget go.
  freer_.Stop();
}

std::uint64_t VmSystem::MeasureUsedBytes() {
  freer_.Drain();
  budget_.LowerHeapOverhang();
  const std::uint64_t own = pages_.own_bytes();
  const std::uint64_t charged = budget_.used() + budget_.reserve_used();
  return charged > own ? charged - own : 0;
}

void VmSystem::BeforeFork() noexcept {
  freer_.Rest();
  if (HeapTrimmer* trimmer = budget_.heap_trimmer()) trimmer->Rest();
}

std::string VmSystem::ValidateConfig(const VmConfig& config) {
  const std::uint64_t ps = config.page_size;
  if (ps < 4096 || ps > 65536 || (ps & (ps - 1)) != 0) {
    return fmt::format(
        "page_size must be a power of two from 4096 to 65536, not {}", ps);
  }
  if (config.address_bits < 24 || config.address_bits > 62) {
    return fmt::format("address_bits must be from 24 to 62, not {}",
                       config.address_bits);
  }
  if (config.max_tasks == 0) return "max_tasks must be at least 1";
  return "";
}

bool VmSystem::ValidTaskName(std::string_view name) {
  return taskfs_valid_task_name(name.data(), name.size()) != 0;
}

std::shared_ptr<Task> VmSystem::FindTask(std::string_view name) const {
  std::lock_guard lock(tasks_mu_);
  auto it = ids_by_name_.find(name);
  return it == ids_by_name_.end() ? nullptr : tasks_by_id_.at(it->second);
}

std::shared_ptr<Task> VmSystem::FindTask(std::uint64_t id) const {
  std::lock_guard lock(tasks_mu_);
  auto it = tasks_by_id_.find(id);
  return it == tasks_by_id_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<Task>> VmSystem::Tasks() const {
  std::lock_guard lock(tasks_mu_);
  std::vector<std::shared_ptr<Task>> tasks;
  tasks.reserve(tasks_by_id_.size());
  for (const auto& [id, task] : tasks_by_id_) tasks.push_back(task);
  return tasks;
}

KernResult<std::shared_ptr<Task>> VmSystem::AddTask(
    std::string_view name, std::unique_lock<PhaseFairMutex>* lock_out) {
  std::lock_guard lock(tasks_mu_);
  if (ids_by_name_.find(name) != ids_by_name_.end()) {
    SetFailureReason(fmt::format("a task named {} exists", name));
    return KERN_NAME_EXISTS;
  }
  if (tasks_by_id_.size() >= config_.max_tasks) {
    SetFailureReason(
        fmt::format("max_tasks {} tasks are alive", config_.max_tasks));
    return KERN_RESOURCE_SHORTAGE;
  }
  const std::uint64_t id = next_task_id_;
  auto task = std::make_shared<Task>(*this, id, std::string(name));
  tasks_by_id_.emplace(id, task);
  try {
    ids_by_name_.emplace(std::string(name), id);
  } catch (...) {
    tasks_by_id_.erase(id);
    throw;
  }
  ++next_task_id_;
  // Nobody else can reach the new task yet, so this never waits; try_lock
  // keeps tasks_mu_ below every task lock (lock_order.h): it never waits for
  // one.
  if (lock_out != nullptr) {
    *lock_out = std::unique_lock(task->mu(), std::try_to_lock);
  }
  return task;
}

void VmSystem::RemoveTask(const Task& task) {
  std::lock_guard lock(tasks_mu_);
  auto it = tasks_by_id_.find(task.id());
  if (it == tasks_by_id_.end() || it->second.get() != &task) return;
  ids_by_name_.erase(task.name());
  tasks_by_id_.erase(it);
}

}  // namespace taskfs::vm
