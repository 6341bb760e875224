// For tests that compare codes first and values after: the code of a
// KernResult, with its value moved to *out when it has one.
#ifndef TASKFS_TESTS_VMCORE_TAKE_RESULT_H_
#define TASKFS_TESTS_VMCORE_TAKE_RESULT_H_

#include <utility>

#include "vmcore/kern_result.h"

namespace taskfs::vm {

template <class T>
KernReturn Take(KernResult<T> result, T* out) {
  if (result.ok()) *out = std::move(result).value();
  return result.code();
}

}  // namespace taskfs::vm

#endif  // TASKFS_TESTS_VMCORE_TAKE_RESULT_H_
