// What a refused charge of the memory limit throws.
#ifndef TASKFS_VMCORE_LIMIT_REACHED_H_
#define TASKFS_VMCORE_LIMIT_REACHED_H_

#include <cstdint>
#include <new>

namespace taskfs::vm {

// What a refused charge throws: a std::bad_alloc, so every path that
// survives running out of memory survives the limit the same way, with the
// figures for the failure reason.
class LimitReached : public std::bad_alloc {
 public:
  LimitReached(std::uint64_t limit, std::uint64_t used, std::uint64_t asked)
      : limit_(limit), used_(used), asked_(asked) {}
  const char* what() const noexcept override { return "memory limit reached"; }
  std::uint64_t limit() const { return limit_; }
  std::uint64_t used() const { return used_; }
  std::uint64_t asked() const { return asked_; }

 private:
  std::uint64_t limit_, used_, asked_;
};

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_LIMIT_REACHED_H_
