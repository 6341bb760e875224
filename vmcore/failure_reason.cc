#include "vmcore/failure_reason.h"

#include <algorithm>

namespace taskfs::vm {
namespace {

// Room for any reason the core writes; a longer one is cut.
constexpr std::size_t kMaxReason = 512;

struct Reason {
  char text[kMaxReason] = {};
  std::size_t size = 0;
  std::uint64_t count = 0;
};

Reason& This() {
  thread_local Reason reason;
  return reason;
}

}  // namespace

std::string_view LastFailureReason() {
  const Reason& r = This();
  return std::string_view(r.text, r.size);
}

void SetFailureReason(std::string_view reason) noexcept {
  Reason& r = This();
  r.size = std::min(reason.size(), kMaxReason);
  std::copy_n(reason.data(), r.size, r.text);
  ++r.count;
}

std::uint64_t FailureReasonCount() { return This().count; }

}  // namespace taskfs::vm
