// The one number grammar of ctl commands, manifests and -o options
// (docs/reference.md §3, §6, §8): decimal or 0x hex digits, no sign, no blanks;
// a size may end in K, M, G or T (powers of 1024, either case). A value that
// does not fit in 64 bits is an error, never a wrap.
#ifndef TASKFS_FS_NUMBER_H_
#define TASKFS_FS_NUMBER_H_

#include <cstdint>
#include <string_view>

namespace taskfs::fs {

enum class NumberForm {
  kPlain,  // an address, a count, a byte: digits only
  kSize,   // a size: digits with an optional K, M, G or T
};

struct ParsedNumber {
  enum class Error { kNone, kMalformed, kTooLarge };

  std::uint64_t value = 0;  // meaningful when ok()
  Error error = Error::kNone;

  bool ok() const { return error == Error::kNone; }
};

ParsedNumber ParseNumber(std::string_view text, NumberForm form);

}  // namespace taskfs::fs

#endif  // TASKFS_FS_NUMBER_H_
