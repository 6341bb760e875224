// A Mach result code together with the value a successful call returns.
#ifndef TASKFS_VMCORE_KERN_RESULT_H_
#define TASKFS_VMCORE_KERN_RESULT_H_

#include <cassert>
#include <optional>
#include <utility>

#include "vmcore/kern_return.h"

namespace taskfs::vm {

// Either KERN_SUCCESS and a T, or a failure code and no T:
//   KernResult<vm_address_t> r = vm_find_data(task, from);
//   if (!r.ok()) return r.code();
//   use(r.value());
// Built implicitly from a T (success) or from a KernReturn other than
// KERN_SUCCESS (failure), so a function returns either one directly.
template <class T>
class [[nodiscard]] KernResult {
 public:
  // A failure. code must not be KERN_SUCCESS.
  KernResult(KernReturn code) : code_(code) {  // NOLINT: implicit on purpose
    assert(code != KERN_SUCCESS);
  }
  // A success holding value.
  KernResult(T value)  // NOLINT: implicit on purpose
      : code_(KERN_SUCCESS), value_(std::move(value)) {}

  bool ok() const { return code_ == KERN_SUCCESS; }
  KernReturn code() const { return code_; }

  // Require ok().
  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }

 private:
  KernReturn code_;
  std::optional<T> value_;
};

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_KERN_RESULT_H_
