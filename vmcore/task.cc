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

void Task::Terminate() noexcept {
  // Removing the whole space splits nothing, so it cannot fail.
  map_.Remove(PageRange::All(geometry()));
  terminated_ = true;
}

}  // namespace taskfs::vm
