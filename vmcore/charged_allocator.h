// A standard allocator charged to a MemoryAccount.
#ifndef TASKFS_VMCORE_CHARGED_ALLOCATOR_H_
#define TASKFS_VMCORE_CHARGED_ALLOCATOR_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "vmcore/memory_account.h"

namespace taskfs::vm {

// A standard allocator that charges an account for what it allocates, for
// the containers whose size users decide (map entries, coverage, page-table
// chunk lists).
template <typename T>
class ChargedAllocator {
 public:
  using value_type = T;

  explicit ChargedAllocator(MemoryAccount& account) : account_(&account) {}
  template <typename U>
  ChargedAllocator(const ChargedAllocator<U>& other)  // NOLINT: rebinding
      : account_(other.account()) {}

  T* allocate(std::size_t n) {
    const std::uint64_t bytes = Cost(n);
    account_->Charge(bytes);
    try {
      return std::allocator<T>().allocate(n);
    } catch (...) {
      account_->Release(bytes);
      throw;
    }
  }
  void deallocate(T* p, std::size_t n) noexcept {
    std::allocator<T>().deallocate(p, n);
    account_->Release(Cost(n));
  }

  MemoryAccount* account() const { return account_; }
  template <typename U>
  bool operator==(const ChargedAllocator<U>& other) const {
    return account_ == other.account();
  }

 private:
  static std::uint64_t Cost(std::size_t n) {
    return n * sizeof(T) + kHeapOverhead;
  }
  MemoryAccount* account_;
};

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_CHARGED_ALLOCATOR_H_
