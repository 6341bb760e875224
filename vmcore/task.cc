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

}  // namespace

Task::Task(VmSystem& system, std::uint64_t id, std::string name)
    : system_(system),
      id_(id),
      name_(std::move(name)),
      map_(GeometryOf(system)) {}

void Task::Terminate() {
  terminated_ = true;
  map_.Remove(PageRange::All(geometry()));
}

}  // namespace taskfs::vm
