#include "fs/access.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <string>

#include "vmcore/failure_reason.h"

namespace taskfs::fs {
namespace {

// Capability numbers of <linux/capability.h>.
constexpr unsigned kCapDacOverride = 1;
constexpr unsigned kCapDacReadSearch = 2;

// The value of the line "key:\t..." of a /proc status text; false if none.
bool Field(std::string_view status, std::string_view key,
           std::string_view* value) {
  std::size_t at = 0;
  while (at < status.size()) {
    const std::size_t end = std::min(status.find('\n', at), status.size());
    const std::string_view line = status.substr(at, end - at);
    if (line.size() > key.size() && line.substr(0, key.size()) == key &&
        line[key.size()] == ':') {
      *value = line.substr(key.size() + 1);
      return true;
    }
    at = end + 1;
  }
  return false;
}

// Parses the whitespace-separated numbers of text in base into *out; false
// on anything else.
template <typename T>
bool Numbers(std::string_view text, int base, std::vector<T>* out) {
  std::size_t i = 0;
  for (;;) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    if (i == text.size()) return true;
    T n{};
    const auto [end, ec] =
        std::from_chars(text.data() + i, text.data() + text.size(), n, base);
    if (ec != std::errc() ||
        (end != text.data() + text.size() && *end != ' ' && *end != '\t')) {
      return false;
    }
    out->push_back(n);
    i = static_cast<std::size_t>(end - text.data());
  }
}

// The filesystem id (the fourth of "Uid:" and "Gid:") of a status text.
bool FilesystemId(std::string_view status, std::string_view key,
                  std::uint32_t* id) {
  std::string_view value;
  std::vector<std::uint32_t> ids;
  if (!Field(status, key, &value) || !Numbers(value, 10, &ids) ||
      ids.size() != 4) {
    return false;
  }
  *id = ids[3];
  return true;
}

}  // namespace

bool ModeAllows(const Caller& caller, const TaskNode& node, mode_t mode,
                mode_t want) {
  if (caller.uid == node.uid) return ((mode >> 6) & want) == want;
  const bool in_group = caller.gid == node.gid ||
                        std::find(caller.groups.begin(), caller.groups.end(),
                                  node.gid) != caller.groups.end();
  if (in_group) return ((mode >> 3) & want) == want;
  return (mode & want) == want;
}

vm::KernReturn MayAccess(const Caller& caller, const TaskNode& node,
                         bool want_write) {
  const unsigned dir = static_cast<unsigned>(NodeKind::kDir);
  const unsigned mem = static_cast<unsigned>(NodeKind::kMem);
  const bool reads_past_modes = caller.dac_override || caller.dac_read_search;
  const bool search =
      reads_past_modes || ModeAllows(caller, node, node.modes[dir], 01);
  const bool read =
      reads_past_modes || ModeAllows(caller, node, node.modes[mem], 04);
  const bool write =
      caller.dac_override || ModeAllows(caller, node, node.modes[mem], 02);
  return search && read && (!want_write || write) ? vm::KERN_SUCCESS
                                                  : vm::KERN_PROTECTION_FAILURE;
}

vm::KernReturn OpenerMayAccess(const Credentials& opener,
                               const NodeTable& nodes, vm::Task& other,
                               bool want_write) {
  TaskNode node;
  if (!nodes.Find(other.id(), &node)) {
    vm::SetFailureReason(fmt::format("task {} is gone", other.name()));
    return vm::KERN_INVALID_TASK;
  }
  if (!opener.known) {
    vm::SetFailureReason(fmt::format(
        "the groups and capabilities of uid {}, who opened this file, could "
        "not be read when it was opened",
        opener.uid));
    return vm::KERN_PROTECTION_FAILURE;
  }
  const vm::KernReturn kr = MayAccess(opener.caller(), node, want_write);
  if (kr != vm::KERN_SUCCESS) {
    vm::SetFailureReason(fmt::format(
        "uid {} may not {} task {}'s mem (directory {:04o}, mem {:04o}, "
        "owner {}:{})",
        opener.uid, want_write ? "read and write" : "read", other.name(),
        node.modes[static_cast<unsigned>(NodeKind::kDir)],
        node.modes[static_cast<unsigned>(NodeKind::kMem)], node.uid, node.gid));
  }
  return kr;
}

void ParseProcStatus(std::string_view status, uid_t uid, gid_t gid,
                     Credentials* out) {
  *out = Credentials{uid, gid, {}, false, false, false};
  std::uint32_t fsuid = 0;
  std::uint32_t fsgid = 0;
  std::string_view groups;
  if (!FilesystemId(status, "Uid", &fsuid) ||
      !FilesystemId(status, "Gid", &fsgid) || fsuid != uid || fsgid != gid ||
      !Field(status, "Groups", &groups) || !Numbers(groups, 10, &out->groups)) {
    out->groups.clear();
    return;
  }
  if (uid == 0) {
    std::string_view caps;
    std::vector<std::uint64_t> effective;
    if (!Field(status, "CapEff", &caps) || !Numbers(caps, 16, &effective) ||
        effective.size() != 1) {
      out->groups.clear();
      return;
    }
    out->dac_override = (effective[0] >> kCapDacOverride) & 1;
    out->dac_read_search = (effective[0] >> kCapDacReadSearch) & 1;
  }
  out->known = true;
}

Credentials ReadCredentials(pid_t pid, uid_t uid, gid_t gid) {
  Credentials credentials{uid, gid, {}, false, false, false};
  if (pid <= 0) return credentials;
  const std::string path = fmt::format("/proc/{0}/task/{0}/status", pid);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return credentials;
  // Usually about 1.5 KiB, and up to some 400 KiB for 65,536 groups.
  std::string text(4096, '\0');
  std::size_t used = 0;
  for (;;) {
    if (used == text.size()) text.resize(2 * text.size());
    const ssize_t n = ::read(fd, text.data() + used, text.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return credentials;
    }
    if (n == 0) break;
    used += static_cast<std::size_t>(n);
  }
  ::close(fd);
  text.resize(used);
  ParseProcStatus(text, uid, gid, &credentials);
  credentials.groups.shrink_to_fit();
  return credentials;
}

}  // namespace taskfs::fs
