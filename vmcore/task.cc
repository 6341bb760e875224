#include "vmcore/task.h"

#include <utility>

#include "vmcore/vm_system.h"

namespace taskfs::vm {
namespace {

Geometry GeometryOf(const VmSystem& system) {
  Geometry geometry;
  geometry.page_shift =
      static_cast<unsigned>(__builtin_ctzll(system.page_size()));
  geometry.limit = system.address_limit();
  geometry.flavor = system.config().flavor;
  return geometry;
}

// The record of a task: the Task made by std::make_shared, its name and its
// two nodes in the VmSystem's registry.
constexpr std::uint64_t kTaskCharge =
    sizeof(Task) + 64 + 2 * 96 + 4 * kHeapOverhead;

}  // namespace

Task::Task(VmSystem& system, std::uint64_t id, std::string name)
    : system_(system),
      id_(id),
      name_(std::move(name)),
      account_(system.budget()),
      map_(GeometryOf(system), system.budget(), system.freer()) {
  account_.Charge(kTaskCharge);
}

std::int64_t Task::Now() noexcept {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return std::int64_t{now.tv_sec} * 1000000000 + now.tv_nsec;
}

void Task::NoteChange() noexcept {
  // Calls under a shared lock (writes, copies) note concurrently: the
  // latest time wins, so the time never goes back.
  const std::int64_t now = Now();
  std::int64_t seen = changed_ns_.load();
  while (seen < now && !changed_ns_.compare_exchange_weak(seen, now)) {
  }
}

void Task::Terminate() noexcept {
  // Removing the whole space splits nothing, so it cannot fail.
  map_.Remove(PageRange::All(geometry()));
  terminated_ = true;
}

}  // namespace taskfs::vm
