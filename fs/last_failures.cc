#include "fs/last_failures.h"

#include <new>
#include <utility>

namespace taskfs::fs {

LastFailures::~LastFailures() {
  if (slots_ == nullptr) return;
  for (Slot& slot : *slots_) Clear(slot);
  account_.Release(kSlotsBytes);
}

void LastFailures::Clear(Slot& slot) noexcept {
  account_.Release(slot.charge);
  slot.charge = 0;
  std::string().swap(slot.line);
  slot.tid = 0;
  slot.seq = 0;
}

void LastFailures::Note(pid_t tid, std::uint64_t seq,
                        std::string_view line) noexcept {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  line = line.substr(0, kMaxLine);
  std::lock_guard lock(mu_);
  if (slots_ == nullptr) {
    if (!account_.TryCharge(kSlotsBytes, /*use_reserve=*/true)) return;
    slots_.reset(new (std::nothrow) Slots());
    if (slots_ == nullptr) {
      account_.Release(kSlotsBytes);
      return;
    }
  }
  // tid's own slot, else a free one, else the one used longest ago.
  Slot* target = nullptr;
  for (Slot& slot : *slots_) {
    if (slot.tid == tid) {
      target = &slot;
      break;
    }
    if (target == nullptr || (target->tid != 0 && slot.tid == 0) ||
        (target->tid != 0 && slot.used < target->used)) {
      target = &slot;
    }
  }
  Clear(*target);
  target->tid = tid;
  target->seq = seq;
  target->used = ++clock_;
  // The line's own buffer, at its exact size, charged with the heap's
  // overhead; refused, the failure is kept without it.
  const std::size_t bytes = line.size() + 1 + vm::kHeapOverhead;
  if (line.size() > 15 && !account_.TryCharge(bytes, /*use_reserve=*/true)) {
    return;
  }
  try {
    target->line.assign(line);
    if (line.size() > 15) target->charge = bytes;
  } catch (const std::bad_alloc&) {
    if (line.size() > 15) account_.Release(bytes);
  }
}

LastFailure LastFailures::Take(pid_t tid) noexcept {
  LastFailure out;
  std::lock_guard lock(mu_);
  if (slots_ == nullptr) return out;
  for (Slot& slot : *slots_) {
    if (slot.tid != tid) continue;
    out.seq = slot.seq;
    out.line.swap(slot.line);  // no allocation: the line moves out
    account_.Release(slot.charge);
    slot.charge = 0;
    Clear(slot);
    break;
  }
  return out;
}

}  // namespace taskfs::fs
