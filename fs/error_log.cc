#include "fs/error_log.h"

#include <fmt/format.h>

#include <iterator>
#include <utility>

namespace taskfs::fs {
namespace {

// Appends text, cut at ErrorLog::kMaxField bytes, with what would break
// the line escaped.
void AppendField(std::string* out, std::string_view text) {
  const bool cut = text.size() > ErrorLog::kMaxField;
  for (const char c : text.substr(0, ErrorLog::kMaxField)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte >= 0x7f || byte == '\\') {
      fmt::format_to(std::back_inserter(*out), "\\x{:02x}", byte);
    } else {
      out->push_back(c);
    }
  }
  if (cut) out->append("...");
}

}  // namespace

ErrorLog::ErrorLog(vm::MemoryBudget& budget) : account_(budget) {
  account_.Charge(sizeof(ErrorLog) + kNodeBytes + vm::kHeapOverhead);
}

std::uint64_t ErrorLog::Cost(const std::string& line) {
  // A short line lives inside the std::string itself.
  return line.capacity() > 15 ? line.capacity() + 1 + vm::kHeapOverhead : 0;
}

void ErrorLog::Drop(std::size_t i) noexcept {
  account_.Release(Cost(lines_[i]));
  kept_bytes_ -= lines_[i].size();
  std::string().swap(lines_[i]);
}

std::uint64_t ErrorLog::Record(uid_t uid, std::string_view operation,
                               vm::KernReturn kr, std::string_view reason,
                               std::string* line_out) {
  std::string line;
  line.reserve(operation.size() + reason.size() + 64);
  std::lock_guard lock(mu_);
  const std::uint64_t seq = recorded_ + 1;
  fmt::format_to(std::back_inserter(line), "{} uid {} ", seq, uid);
  AppendField(&line, operation);
  fmt::format_to(std::back_inserter(line), ": {}: ", vm::KernReturnName(kr));
  AppendField(&line, reason);
  line.push_back('\n');
  if (line_out != nullptr) *line_out = line;  // may throw: nothing changed yet
  const std::size_t slot = recorded_ % kCapacity;
  recorded_ = seq;
  total_bytes_ += line.size();
  timespec_get(&changed_, TIME_UTC);
  Drop(slot);
  // At the limit, the oldest kept lines make room (the slot after this one
  // holds the oldest).
  for (std::size_t i = 1; !account_.TryCharge(Cost(line), /*use_reserve=*/true);
       ++i) {
    if (i == kCapacity) return seq;  // no room at all: counted, not kept
    Drop((slot + i) % kCapacity);
  }
  kept_bytes_ += line.size();
  lines_[slot] = std::move(line);
  return seq;
}

std::string ErrorLog::Text() const {
  std::lock_guard lock(mu_);
  const std::uint64_t kept = recorded_ < kCapacity ? recorded_ : kCapacity;
  std::size_t bytes = 0;
  for (std::uint64_t i = recorded_ - kept; i < recorded_; ++i) {
    bytes += lines_[i % kCapacity].size();
  }
  std::string text;
  text.reserve(bytes);
  for (std::uint64_t i = recorded_ - kept; i < recorded_; ++i) {
    text.append(lines_[i % kCapacity]);
  }
  return text;
}

std::uint64_t ErrorLog::size() const {
  std::lock_guard lock(mu_);
  return total_bytes_;
}

std::uint64_t ErrorLog::Read(std::uint64_t off, std::size_t max,
                             std::string* out) const {
  out->clear();
  std::lock_guard lock(mu_);
  // The kept lines are the file's last kept_bytes_ bytes: the oldest lines
  // are the ones dropped, and a line not kept at all had every older line
  // dropped before it.
  std::uint64_t pos = total_bytes_ - kept_bytes_;
  const std::uint64_t from = off > pos ? off : pos;
  if (from >= total_bytes_) return from;
  const std::uint64_t end =
      total_bytes_ - from > max ? from + max : total_bytes_;
  out->reserve(static_cast<std::size_t>(end - from));
  const std::uint64_t slots = recorded_ < kCapacity ? recorded_ : kCapacity;
  for (std::uint64_t i = recorded_ - slots; i < recorded_ && pos < end; ++i) {
    const std::string& line = lines_[i % kCapacity];
    const std::uint64_t line_end = pos + line.size();
    if (line_end > from) {
      const std::uint64_t lo = from > pos ? from - pos : 0;
      const std::uint64_t hi = (end < line_end ? end : line_end) - pos;
      out->append(line, static_cast<std::size_t>(lo),
                  static_cast<std::size_t>(hi - lo));
    }
    pos = line_end;
  }
  return from;
}

timespec ErrorLog::changed() const {
  std::lock_guard lock(mu_);
  return changed_;
}

std::uint64_t ErrorLog::last_seq() const {
  std::lock_guard lock(mu_);
  return recorded_;
}

}  // namespace taskfs::fs
