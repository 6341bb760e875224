// docs/reference.md §4's permission model ("What each permission grants")
// through one real mount with allow_other, as a table: every path into a task
// (the open of each file for reading and for writing, listing, mem pread and
// pwrite, each ioctl, each ctl command, copy-from and vm_map_copy as
// destination and as source, with and without destroy, fork, rmdir, chmod,
// chown) × the caller's relation to the task (owner, member of its group,
// member through a supplementary group, member through the last of 100
// supplementary groups, other) × what the modes give the caller's class:
// exactly what the path needs; that with each needed bit taken away in turn,
// while every other class holds it; every bit. Each row asserts its exact
// errno. A refused row must change nothing: the victim task, the caller's own
// task (maps, status, the bytes of every readable page, the owner and mode of
// every path) and the list of tasks are compared whole before and after. A
// granted row must do what the path does, and nothing else.
//
// Then the ways one permission could turn into another, as attacks by a
// user who holds one of them: ctl write to mem read through fork, ctl write
// to mem write through a share region and fork, copy-from into a task the
// caller may only control, mem read or mem write alone to the other, and an
// ownership a chown of another path took away.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "taskfs/ioctl.h"
#include "tests/integration/mount_fixture.h"
#include "tests/integration/test_util.h"

namespace taskfs::testing {
namespace {

// The users. uids and gids need no entry in /etc/passwd: a child process
// simply becomes them. The task's group is above every other group here:
// setgroups sorts the list, so in the caller with 100 groups it is the
// 100th, past the first 64.
constexpr uid_t kOwnerUid = 41000;
constexpr gid_t kTaskGroup = 60000;

std::vector<gid_t> HundredGroups() {
  std::vector<gid_t> groups;
  for (gid_t g = 50000; g < 50099; ++g) groups.push_back(g);
  groups.push_back(kTaskGroup);
  return groups;
}

struct Relation {
  const char* name;
  Identity who;
  int shift;  // where the class's permission bits are in a mode
  bool owner;
};

const std::vector<Relation>& Relations() {
  static const std::vector<Relation> relations = {
      {"Owner", {kOwnerUid, 41000, {}}, 6, true},
      {"Group", {41001, kTaskGroup, {}}, 3, false},
      {"SupplementaryGroup", {41002, 41002, {kTaskGroup}}, 3, false},
      {"LastOf100Groups", {41003, 41003, HundredGroups()}, 3, false},
      {"Other", {41004, 41004, {}}, 0, false},
  };
  return relations;
}

// The paths of a task, with their modes at creation (docs/reference.md §4).
enum File { kDir, kMem, kCtl, kMaps, kStatus, kErrors, kFiles };
constexpr const char* kSuffix[kFiles] = {"",      "/mem",    "/ctl",
                                         "/maps", "/status", "/errors"};
constexpr const char* kFileName[kFiles] = {"Dir",  "Mem",    "Ctl",
                                           "Maps", "Status", "Errors"};
constexpr mode_t kCreatedModes[kFiles] = {0700, 0600, 0600, 0400, 0444, 0400};

std::string BitName(File f, mode_t bit) {
  switch (bit) {
    case 4:
      return "Read";
    case 2:
      return "Write";
    default:
      return f == kDir ? "Search" : "Exec";
  }
}

// What the victim task holds when a row starts: 8 KiB of Pattern(8K, 1) at
// 0x10000 and a page of Pattern(4K, 2) at 0x20000. Each caller's own task
// ("home") holds a page of Pattern(4K, 3) at 0x200000.
constexpr std::uint64_t kData = 0x10000;
constexpr std::uint64_t kSpare = 0x20000;
constexpr std::uint64_t kFresh = 0x40000;      // free in the victim
constexpr std::uint64_t kHomeData = 0x200000;  // the home task's page
constexpr std::uint64_t kHomeDst = 0x300000;   // free in the home task
constexpr char kVictimSetup[] = "allocate 0x10000 8K\nallocate 0x20000 4K\n";
constexpr char kDataLine[] = "0000000000010000-0000000000012000 rw-/rwx copy\n";
constexpr char kSpareLine[] =
    "0000000000020000-0000000000021000 rw-/rwx copy\n";
constexpr char kFreshLine[] =
    "0000000000040000-0000000000041000 rw-/rwx copy\n";
constexpr char kHomeLine[] = "0000000000200000-0000000000201000 rw-/rwx copy\n";
constexpr char kHomeDstLine[] =
    "0000000000300000-0000000000301000 rw-/rwx copy\n";

// --- the state a row may change, read as root --------------------------------

struct TaskState {
  bool exists = false;
  std::array<std::string, kFiles> attrs;  // "mode uid:gid" of each path
  std::string maps;
  std::string status;
  bool status_may_change = false;  // a granted row changed the statistics
  std::map<std::uint64_t, std::string> pages;  // every readable page
};

struct World {
  std::vector<std::string> tasks;  // the root's listing
  TaskState victim, home, child;
};

std::string Hex(std::uint64_t n) {
  char text[24];
  std::snprintf(text, sizeof text, "%#llx", static_cast<unsigned long long>(n));
  return text;
}

std::string Attr(mode_t mode, uid_t uid, gid_t gid) {
  char text[64];
  std::snprintf(text, sizeof text, "%04o %u:%u", mode, uid, gid);
  return text;
}

TaskState ReadTask(const std::string& dir) {
  TaskState s;
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return s;
  s.exists = true;
  for (int f = 0; f < kFiles; ++f) {
    if (::stat((dir + kSuffix[f]).c_str(), &st) == 0) {
      s.attrs[f] = Attr(st.st_mode & 07777, st.st_uid, st.st_gid);
    }
  }
  s.maps = ReadFile(dir + "/maps");
  s.status = ReadFile(dir + "/status");
  std::size_t at = 0;
  while (at < s.maps.size()) {
    const std::size_t end = s.maps.find('\n', at);
    const std::string line = s.maps.substr(at, end - at);
    at = end == std::string::npos ? s.maps.size() : end + 1;
    const std::uint64_t start = std::strtoull(line.c_str(), nullptr, 16);
    const std::uint64_t stop = std::strtoull(line.c_str() + 17, nullptr, 16);
    if (line.size() < 35 || line[34] != 'r') continue;
    std::string bytes;
    if (ReadMem(dir + "/mem", start, stop - start, &bytes) != 0) continue;
    for (std::uint64_t p = start; p < stop; p += kPage) {
      s.pages[p] = bytes.substr(p - start, kPage);
    }
  }
  return s;
}

// The differences of two states, "" if none; want's status is ignored if
// it may change.
std::string Diff(const TaskState& want, const TaskState& got) {
  std::string d;
  if (want.exists != got.exists) {
    return want.exists ? " is gone;" : " exists;";
  }
  for (int f = 0; f < kFiles; ++f) {
    if (want.attrs[f] != got.attrs[f]) {
      d += std::string(" ") + kFileName[f] + " is " + got.attrs[f] + ", not " +
           want.attrs[f] + ";";
    }
  }
  if (want.maps != got.maps) {
    d += " maps are\n" + got.maps + "not\n" + want.maps + ";";
  }
  if (!want.status_may_change && want.status != got.status) {
    d += " status is\n" + got.status + "not\n" + want.status + ";";
  }
  for (const auto& [page, bytes] : want.pages) {
    const auto it = got.pages.find(page);
    if (it == got.pages.end()) {
      d += " page " + Hex(page) + " cannot be read;";
    } else if (it->second != bytes) {
      d += " page " + Hex(page) + " changed;";
    }
  }
  for (const auto& [page, bytes] : got.pages) {
    if (want.pages.count(page) == 0) {
      d += " page " + Hex(page) + " appeared;";
    }
  }
  return d;
}

// --- the paths ---------------------------------------------------------------

// What one row works on.
struct Context {
  std::string victim;  // the task's name and directory
  std::string v;
  std::uint64_t victim_id = 0;
  std::string home;  // the caller's own task
  std::string h;
  std::uint64_t home_id = 0;
  std::string child;  // the name a fork gives its child, and its directory
  std::string k;
  Identity who;
};

struct Need {
  File file;
  mode_t bits;
};

enum class Rule {
  kModes,      // granted when the modes give every need
  kOwnerOnly,  // granted to the owner; a non-owner gets `refusal`
  kRefused,    // refused with `refusal` even when the modes give every need
};

struct PathSpec {
  std::string name;
  std::vector<Need> needs;  // on the victim, for the caller's class
  Rule rule = Rule::kModes;
  int refusal = 0;
  // Runs as the caller: 0, an errno, or kMismatch.
  std::function<int(const Context&)> run;
  // Turns the world before into what a grant leaves.
  std::function<void(const Context&, World&)> effect;
};

int OpenClose(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) return errno;
  ::close(fd);
  return 0;
}

// Opens path, reads it whole, and checks the text with ok.
int OpenRead(const std::string& path,
             const std::function<bool(const std::string&)>& ok) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return errno;
  std::string text;
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) text.append(buf, n);
  const int error = n < 0 ? errno : 0;
  ::close(fd);
  if (error != 0) return error;
  return ok(text) ? 0 : kMismatch;
}

// Opens path with flags and makes one ioctl: 0 or the errno.
template <typename T>
int Ioctl(const std::string& path, int flags, unsigned long cmd, T arg,
          const std::function<bool(const T&)>& ok = nullptr) {
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) return errno;
  const int error = Err(::ioctl(fd, cmd, &arg));
  ::close(fd);
  if (error != 0) return error;
  return ok == nullptr || ok(arg) ? 0 : kMismatch;
}

int WriteCtl(const std::string& dir, const std::string& command) {
  return WriteFile(dir + "/ctl", command + "\n");
}

std::string CopyFromVictim(const Context& c, bool destroy) {
  return "copy-from " + c.victim + " 0x10000 4K 0x300000 alloc" +
         (destroy ? " destroy" : "");
}

taskfs_vm_map_copy MapCopyFromVictim(const Context& c, bool destroy) {
  return {c.victim_id,
          kData,
          kPage,
          kHomeDst,
          TASKFS_VM_MAP_COPY_DST_ALLOC |
              (destroy ? TASKFS_VM_MAP_COPY_SRC_DESTROY : 0u),
          0};
}

// The effects, on the world a row started from.
void Nothing(const Context&, World&) {}

void Allocated(const Context&, World& w) {
  w.victim.maps += kFreshLine;
  w.victim.pages[kFresh] = std::string(kPage, '\0');
  w.victim.status_may_change = true;
}

void Deallocated(const Context&, World& w) {
  w.victim.maps = kDataLine;
  w.victim.pages.erase(kSpare);
  w.victim.status_may_change = true;
}

// The victim's first data page given other attributes: its maps line ends
// in `attributes` (protection and inheritance).
void FirstDataPageBecame(World& w, const std::string& attributes) {
  w.victim.maps = "0000000000010000-0000000000011000 " + attributes +
                  "\n"
                  "0000000000011000-0000000000012000 rw-/rwx copy\n" +
                  std::string(kSpareLine);
  w.victim.status_may_change = true;
}

void Protected(const Context&, World& w) {
  FirstDataPageBecame(w, "r--/rwx copy");
}

void Inherited(const Context&, World& w) {
  FirstDataPageBecame(w, "rw-/rwx none");
}

void Copied(const Context&, World& w) {
  w.victim.pages[kSpare] = w.victim.pages[kData];
  w.victim.status_may_change = true;
}

// The home task's page arrived at 0x40000 of the victim.
void CopiedIn(const Context&, World& w) {
  w.victim.maps += kFreshLine;
  w.victim.pages[kFresh] = w.home.pages[kHomeData];
  w.victim.status_may_change = true;
  w.home.status_may_change = true;
}

// The victim's first page arrived at 0x300000 of the home task.
void CopiedOut(const Context&, World& w) {
  w.home.maps += kHomeDstLine;
  w.home.pages[kHomeDst] = w.victim.pages[kData];
  w.victim.status_may_change = true;
  w.home.status_may_change = true;
}

void CopiedOutAndDestroyed(const Context& c, World& w) {
  CopiedOut(c, w);
  w.victim.maps = "0000000000011000-0000000000012000 rw-/rwx copy\n" +
                  std::string(kSpareLine);
  w.victim.pages.erase(kData);
}

void Forked(const Context& c, World& w) {
  w.tasks.push_back(c.child);
  w.child = w.victim;
  for (int f = 0; f < kFiles; ++f) {
    w.child.attrs[f] = Attr(kCreatedModes[f], c.who.uid, c.who.gid);
  }
  w.child.status_may_change = true;
  w.victim.status_may_change = true;
}

void Removed(const Context& c, World& w) {
  std::erase(w.tasks, c.victim);
  w.victim = TaskState();
}

constexpr mode_t kChmodTo = 0751;

void DirChmodded(const Context&, World& w) {
  w.victim.attrs[kDir] = Attr(kChmodTo, kOwnerUid, kTaskGroup);
}
void MemChmodded(const Context&, World& w) {
  w.victim.attrs[kMem] = Attr(kChmodTo, kOwnerUid, kTaskGroup);
}

void MemWritten(const Context&, World& w) {
  w.victim.pages[kData + kPage] = std::string(kPage, 'W');
}

std::vector<PathSpec> Paths() {
  const Need search{kDir, 1};
  const Need mem_r{kMem, 4};
  const Need mem_w{kMem, 2};
  const Need mem_rw{kMem, 6};
  const Need ctl_w{kCtl, 2};
  std::vector<PathSpec> p;
  auto add = [&p](std::string name, std::vector<Need> needs, Rule rule,
                  int refusal, std::function<int(const Context&)> run,
                  std::function<void(const Context&, World&)> effect) {
    p.push_back({std::move(name), std::move(needs), rule, refusal,
                 std::move(run), std::move(effect)});
  };
  const Rule modes = Rule::kModes;

  // The open of each file, for reading and for writing. The generated
  // files are read-only for everyone: their write opens are refused even
  // when the mode has the write bit (docs/reference.md §4).
  add(
      "OpenMemForReading", {search, mem_r}, modes, 0,
      [](const Context& c) { return OpenClose(c.v + "/mem", O_RDONLY); },
      Nothing);
  add(
      "OpenMemForWriting", {search, mem_w}, modes, 0,
      [](const Context& c) { return OpenClose(c.v + "/mem", O_WRONLY); },
      Nothing);
  add(
      "OpenCtlForReading", {search, {kCtl, 4}}, modes, 0,
      [](const Context& c) {
        // No command written on this open file: nothing to read.
        return OpenRead(c.v + "/ctl",
                        [](const std::string& t) { return t.empty(); });
      },
      Nothing);
  add(
      "OpenCtlForWriting", {search, ctl_w}, modes, 0,
      [](const Context& c) { return OpenClose(c.v + "/ctl", O_WRONLY); },
      Nothing);
  add(
      "OpenMapsForReading", {search, {kMaps, 4}}, modes, 0,
      [](const Context& c) {
        return OpenRead(c.v + "/maps", [](const std::string& t) {
          return t == std::string(kDataLine) + kSpareLine;
        });
      },
      Nothing);
  add(
      "OpenStatusForReading", {search, {kStatus, 4}}, modes, 0,
      [](const Context& c) {
        return OpenRead(c.v + "/status", [&c](const std::string& t) {
          return StatusValue(t, "name") == c.victim;
        });
      },
      Nothing);
  add(
      "OpenErrorsForReading", {search, {kErrors, 4}}, modes, 0,
      [](const Context& c) {
        return OpenRead(c.v + "/errors",
                        [](const std::string&) { return true; });
      },
      Nothing);
  for (File f : {kMaps, kStatus, kErrors}) {
    add(
        std::string("Open") + kFileName[f] + "ForWriting", {search, {f, 2}},
        Rule::kRefused, EACCES,
        [f](const Context& c) { return OpenClose(c.v + kSuffix[f], O_WRONLY); },
        Nothing);
  }
  add(
      "ListDir", {{kDir, 4}}, modes, 0,
      [](const Context& c) {
        const std::vector<std::string> names = ListDir(c.v);
        if (names.empty()) {
          const int fd = ::open(c.v.c_str(), O_RDONLY | O_DIRECTORY);
          if (fd < 0) return errno;
          ::close(fd);
          return kMismatch;
        }
        return names.size() == 6 ? 0 : kMismatch;
      },
      Nothing);

  // mem I/O.
  add(
      "MemPread", {search, mem_r}, modes, 0,
      [](const Context& c) {
        std::string data;
        const int e = ReadMem(c.v + "/mem", kData, 2 * kPage, &data);
        if (e != 0) return e;
        return data == Pattern(2 * kPage, 1) ? 0 : kMismatch;
      },
      Nothing);
  add(
      "MemPwrite", {search, mem_w}, modes, 0,
      [](const Context& c) {
        return WriteMem(c.v + "/mem", kData + kPage, std::string(kPage, 'W'));
      },
      MemWritten);
  add(
      "MemPreadOnWriteOnlyDescriptor", {search, mem_w}, Rule::kRefused, EBADF,
      [](const Context& c) {
        const int fd = ::open((c.v + "/mem").c_str(), O_WRONLY);
        if (fd < 0) return errno;
        AlignedBuffer b(kPage);
        const int e = Err(::pread(fd, b.data, kPage, kData));
        ::close(fd);
        return e;
      },
      Nothing);
  add(
      "MemPwriteOnReadOnlyDescriptor", {search, mem_r}, Rule::kRefused, EBADF,
      [](const Context& c) {
        const int fd = ::open((c.v + "/mem").c_str(), O_RDONLY);
        if (fd < 0) return errno;
        AlignedBuffer b(kPage);
        const int e = Err(::pwrite(fd, b.data, kPage, kData));
        ::close(fd);
        return e;
      },
      Nothing);

  // Each ioctl. Those that change memory need a descriptor open for
  // writing: write permission on mem, and on a read-only descriptor EBADF.
  struct Changing {
    const char* name;
    std::function<int(const Context&, int flags)> run;
    std::function<void(const Context&, World&)> effect;
  };
  const std::vector<Changing> changing = {
      {"IoctlVmCopy",
       [](const Context& c, int flags) {
         return Ioctl(c.v + "/mem", flags, TASKFS_IOC_VM_COPY,
                      taskfs_vm_copy{kData, kPage, kSpare});
       },
       Copied},
      {"IoctlVmAllocate",
       [](const Context& c, int flags) {
         return Ioctl(c.v + "/mem", flags, TASKFS_IOC_VM_ALLOCATE,
                      taskfs_vm_allocate{kFresh, kPage, 0, 0});
       },
       Allocated},
      {"IoctlVmDeallocate",
       [](const Context& c, int flags) {
         return Ioctl(c.v + "/mem", flags, TASKFS_IOC_VM_DEALLOCATE,
                      taskfs_vm_deallocate{kSpare, kPage});
       },
       Deallocated},
      {"IoctlVmProtect",
       [](const Context& c, int flags) {
         return Ioctl(c.v + "/mem", flags, TASKFS_IOC_VM_PROTECT,
                      taskfs_vm_protect{kData, kPage, 0, TASKFS_VM_PROT_READ});
       },
       Protected},
      {"IoctlVmInherit",
       [](const Context& c, int flags) {
         return Ioctl(
             c.v + "/mem", flags, TASKFS_IOC_VM_INHERIT,
             taskfs_vm_inherit{kData, kPage, TASKFS_VM_INHERIT_NONE, 0});
       },
       Inherited},
      // The victim as the destination of vm_map_copy, from the caller's
      // own task.
      {"IoctlVmMapCopyInto",
       [](const Context& c, int flags) {
         return Ioctl(c.v + "/mem", flags, TASKFS_IOC_VM_MAP_COPY,
                      taskfs_vm_map_copy{c.home_id, kHomeData, kPage, kFresh,
                                         TASKFS_VM_MAP_COPY_DST_ALLOC, 0});
       },
       CopiedIn},
  };
  for (const Changing& ch : changing) {
    add(
        ch.name, {search, mem_w}, modes, 0,
        [run = ch.run](const Context& c) { return run(c, O_WRONLY); },
        ch.effect);
    add(
        std::string(ch.name) + "OnReadOnlyDescriptor", {search, mem_r},
        Rule::kRefused, EBADF,
        [run = ch.run](const Context& c) { return run(c, O_RDONLY); }, Nothing);
  }
  // vm_region tells the layout, as maps and SEEK_DATA/SEEK_HOLE do, to any
  // descriptor of mem.
  for (const auto& [name, flags, need] :
       {std::tuple{"IoctlVmRegion", O_RDONLY, mem_r},
        std::tuple{"IoctlVmRegionOnWriteOnlyDescriptor", O_WRONLY, mem_w}}) {
    add(
        name, {search, need}, modes, 0,
        [flags = flags](const Context& c) {
          return Ioctl<taskfs_vm_region>(
              c.v + "/mem", flags, TASKFS_IOC_VM_REGION, {0, 0, 0, 0, 0, 0},
              [](const taskfs_vm_region& r) {
                return r.address == kData && r.size == 2 * kPage &&
                       r.prot == 3 && r.max_prot == 7 && r.inheritance == 1;
              });
        },
        Nothing);
  }
  // The victim as the source of vm_map_copy into the caller's own task:
  // what a path walk to its mem and an open would need.
  for (bool destroy : {false, true}) {
    add(
        destroy ? "IoctlVmMapCopyFromDestroy" : "IoctlVmMapCopyFrom",
        {search, destroy ? mem_rw : mem_r}, modes, 0,
        [destroy](const Context& c) {
          return Ioctl(c.h + "/mem", O_RDWR, TASKFS_IOC_VM_MAP_COPY,
                       MapCopyFromVictim(c, destroy));
        },
        destroy ? CopiedOutAndDestroyed : CopiedOut);
  }

  // Each ctl command.
  struct Ctl {
    const char* name;
    std::string command;
    std::function<void(const Context&, World&)> effect;
  };
  for (const Ctl& ctl : std::vector<Ctl>{
           {"CtlAllocate", "allocate 0x40000 4K", Allocated},
           {"CtlDeallocate", "deallocate 0x20000 4K", Deallocated},
           {"CtlProtect", "protect 0x10000 4K r--", Protected},
           {"CtlInherit", "inherit 0x10000 4K none", Inherited},
           {"CtlCopy", "copy 0x10000 4K 0x20000", Copied},
       }) {
    add(
        ctl.name, {search, ctl_w}, modes, 0,
        [command = ctl.command](const Context& c) {
          return WriteCtl(c.v, command);
        },
        ctl.effect);
  }
  // Into the victim, from the caller's own task: control of the victim.
  add(
      "CtlCopyFromInto", {search, ctl_w}, modes, 0,
      [](const Context& c) {
        return WriteCtl(c.v,
                        "copy-from " + c.home + " 0x200000 4K 0x40000 alloc");
      },
      CopiedIn);
  // From the victim, into the caller's own task: read (and write) on mem.
  for (bool destroy : {false, true}) {
    add(
        destroy ? "CtlCopyFromDestroy" : "CtlCopyFrom",
        {search, destroy ? mem_rw : mem_r}, modes, 0,
        [destroy](const Context& c) {
          return WriteCtl(c.h, CopyFromVictim(c, destroy));
        },
        destroy ? CopiedOutAndDestroyed : CopiedOut);
  }
  // fork: control of the task and read permission on its mem.
  add(
      "CtlFork", {search, ctl_w, mem_r}, modes, 0,
      [](const Context& c) { return WriteCtl(c.v, "fork " + c.child); },
      Forked);

  // The namespace and the attributes. rmdir needs nothing of the task's
  // modes: the root is 1777, so a task is its owner's to remove. chmod is
  // the owner's; chown is root's, even to a group the owner is in.
  add(
      "Rmdir", {}, Rule::kOwnerOnly, EPERM,
      [](const Context& c) { return Err(::rmdir(c.v.c_str())); }, Removed);
  add(
      "ChmodDir", {}, Rule::kOwnerOnly, EPERM,
      [](const Context& c) { return Err(::chmod(c.v.c_str(), kChmodTo)); },
      DirChmodded);
  add(
      "ChmodMem", {search}, Rule::kOwnerOnly, EPERM,
      [](const Context& c) {
        return Err(::chmod((c.v + "/mem").c_str(), kChmodTo));
      },
      MemChmodded);
  add(
      "ChgrpMemToOwnGroup", {search}, Rule::kRefused, EPERM,
      [](const Context& c) {
        return Err(
            ::chown((c.v + "/mem").c_str(), static_cast<uid_t>(-1), c.who.gid));
      },
      Nothing);
  add(
      "ChownDirToSelf", {}, Rule::kRefused, EPERM,
      [](const Context& c) {
        return Err(::chown(c.v.c_str(), c.who.uid, c.who.gid));
      },
      Nothing);
  return p;
}

// --- the rows ----------------------------------------------------------------

// What the modes give the caller's class in a row: exactly the path's needs
// (kExactly, and nothing to the other classes); the needs but for one bit of
// need number `denied`, which every other class holds; or every bit
// (kAllModes).
constexpr int kExactly = -1;
constexpr int kAllModes = -2;

struct Variant {
  std::string name;
  int denied = kExactly;
  mode_t bit = 0;
};

std::vector<Variant> Variants(const PathSpec& path) {
  std::vector<Variant> v = {{"Exactly", kExactly, 0}};
  for (std::size_t i = 0; i < path.needs.size(); ++i) {
    const Need& n = path.needs[i];
    for (mode_t bit : {4, 2, 1}) {
      if ((n.bits & bit) == 0) continue;
      v.push_back(
          {"Without" + std::string(kFileName[n.file]) + BitName(n.file, bit),
           static_cast<int>(i), bit});
    }
  }
  v.push_back({"AllModes", kAllModes, 0});
  return v;
}

std::array<mode_t, kFiles> Modes(const PathSpec& path, const Variant& v,
                                 int shift) {
  std::array<mode_t, kFiles> m{};
  if (v.denied == kAllModes) {
    m.fill(0777);
    return m;
  }
  for (const Need& n : path.needs) {
    m[n.file] |= v.denied == kExactly ? n.bits << shift : n.bits * 0111;
  }
  if (v.denied >= 0) {
    // The caller's class has every bit but the one taken away.
    const File f = path.needs[v.denied].file;
    m[f] = (m[f] & ~(07 << shift)) | ((07 & ~v.bit) << shift);
  }
  return m;
}

int Expected(const PathSpec& path, const Variant& v, const Relation& r) {
  if (v.denied >= 0) return EACCES;
  switch (path.rule) {
    case Rule::kModes:
      return 0;
    case Rule::kOwnerOnly:
      return r.owner ? 0 : path.refusal;
    case Rule::kRefused:
      return path.refusal;
  }
  return -1;
}

std::string Describe(int result) {
  if (result == 0) return "success";
  if (result == kMismatch) return "success with the wrong result";
  if (result >= 1000) return "child failure " + std::to_string(result);
  return std::strerror(result);
}

// The failures the running test has had so far.
int FailureCount() {
  const ::testing::TestResult* result =
      ::testing::UnitTest::GetInstance()->current_test_info()->result();
  int n = 0;
  for (int i = 0; i < result->total_part_count(); ++i) {
    if (result->GetTestPartResult(i).failed()) ++n;
  }
  return n;
}

class PermissionModel {
 public:
  explicit PermissionModel(const Mount& mount) : mount_(mount) {}

  // Makes each caller's own task; false on failure.
  bool MakeHomes() {
    for (const Relation& r : Relations()) {
      const std::string name = "h" + std::to_string(r.who.uid);
      const std::string dir = mount_ / name;
      if (::mkdir(dir.c_str(), 0700) != 0 ||
          WriteCtl(dir, "allocate 0x200000 4K") != 0 ||
          WriteMem(dir + "/mem", kHomeData, Pattern(kPage, 3)) != 0 ||
          ::chown(dir.c_str(), r.who.uid, r.who.gid) != 0) {
        return false;
      }
    }
    return true;
  }

  World Read(const Context& c) const {
    World w;
    w.tasks = ListDir(mount_.path());
    w.victim = ReadTask(c.v);
    w.home = ReadTask(c.h);
    w.child = ReadTask(c.k);
    return w;
  }

  // One row; failures name it. Returns whether it passed.
  bool Run(const PathSpec& path, const Relation& r, const Variant& v) {
    const std::string row = path.name + "_" + r.name + "_" + v.name;
    SCOPED_TRACE(row);
    const int failures_before = FailureCount();
    ++rows_;
    Context c = MakeVictim(r);
    if (c.victim.empty()) return false;
    const std::array<mode_t, kFiles> modes = Modes(path, v, r.shift);
    for (int f = 0; f < kFiles; ++f) {
      EXPECT_EQ(Err(::chmod((c.v + kSuffix[f]).c_str(), modes[f])), 0)
          << kFileName[f];
    }
    const World before = Read(c);
    const int want = Expected(path, v, r);
    const int got = RunAs(c.who, [&] { return path.run(c); });
    EXPECT_EQ(got, want) << row << ": " << Describe(got) << ", not "
                         << Describe(want);
    World expected = before;
    if (want == 0) {
      path.effect(c, expected);
      ++granted_;
    }
    const World after = Read(c);
    EXPECT_EQ(after.tasks, expected.tasks) << row << ": the list of tasks";
    const std::string victim = Diff(expected.victim, after.victim);
    const std::string home = Diff(expected.home, after.home);
    const std::string child = Diff(expected.child, after.child);
    EXPECT_EQ(victim, "") << row << ": the victim";
    EXPECT_EQ(home, "") << row << ": the caller's own task";
    EXPECT_EQ(child, "") << row << ": the fork child";
    EXPECT_TRUE(DaemonAlive(mount_));
    Clean(c);
    return FailureCount() == failures_before;
  }

  int rows() const { return rows_; }
  int granted() const { return granted_; }

 private:
  // A fresh victim task, owned by kOwnerUid:kTaskGroup.
  Context MakeVictim(const Relation& r) {
    ++counter_;
    Context c;
    c.who = r.who;
    c.victim = "v" + std::to_string(counter_);
    c.v = mount_ / c.victim;
    c.child = "k" + std::to_string(counter_);
    c.k = mount_ / c.child;
    c.home = "h" + std::to_string(r.who.uid);
    c.h = mount_ / c.home;
    const bool ok = Err(::mkdir(c.v.c_str(), 0700)) == 0 &&
                    WriteFile(c.v + "/ctl", kVictimSetup) == 0 &&
                    WriteMem(c.v + "/mem", kData, Pattern(2 * kPage, 1)) == 0 &&
                    WriteMem(c.v + "/mem", kSpare, Pattern(kPage, 2)) == 0 &&
                    Err(::chown(c.v.c_str(), kOwnerUid, kTaskGroup)) == 0;
    EXPECT_TRUE(ok) << "setting up " << c.victim;
    if (!ok) return Context();
    c.victim_id = std::strtoull(
        StatusValue(ReadFile(c.v + "/status"), "id").c_str(), nullptr, 10);
    c.home_id = std::strtoull(
        StatusValue(ReadFile(c.h + "/status"), "id").c_str(), nullptr, 10);
    return c;
  }

  // Back to where the next row starts: no victim, no child, the home task
  // with its one page.
  void Clean(const Context& c) {
    ::rmdir(c.v.c_str());
    ::rmdir(c.k.c_str());
    EXPECT_EQ(WriteCtl(c.h, "deallocate 0x300000 4K"), 0);
  }

  const Mount& mount_;
  int counter_ = 0;
  int rows_ = 0;
  int granted_ = 0;
};

TEST(PermissionModelTest, EveryPathEveryRelationEveryMode) {
  Mount mount({"-o", "tasks=none,allow_other"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  PermissionModel model(mount);
  ASSERT_TRUE(model.MakeHomes());
  int failed = 0;
  const std::vector<PathSpec> paths = Paths();
  for (const PathSpec& path : paths) {
    for (const Relation& r : Relations()) {
      for (const Variant& v : Variants(path)) {
        if (!model.Run(path, r, v)) ++failed;
      }
    }
  }
  std::printf(
      "%d rows (%zu paths x %zu relations x their modes): %d granted, "
      "%d refused; %d failed\n",
      model.rows(), paths.size(), Relations().size(), model.granted(),
      model.rows() - model.granted(), failed);
  EXPECT_EQ(failed, 0);
}

// --- one permission does not become another ----------------------------------

// The attacks: a user ("other") given one permission on a task tries to get
// another out of it. Each step's errno is asserted, and then the task, the
// attacker's own task and the list of tasks are what the granted steps
// alone leave.
class Attack {
 public:
  explicit Attack(const Mount& mount) : mount_(mount) {}

  // A victim as in the table, owned by kOwnerUid:kTaskGroup, with the modes
  // of its directory, mem and ctl.
  std::string MakeVictim(const std::string& name, mode_t dir, mode_t mem,
                         mode_t ctl) {
    const std::string v = mount_ / name;
    const bool ok = Err(::mkdir(v.c_str(), 0700)) == 0 &&
                    WriteFile(v + "/ctl", kVictimSetup) == 0 &&
                    WriteMem(v + "/mem", kData, Pattern(2 * kPage, 1)) == 0 &&
                    WriteMem(v + "/mem", kSpare, Pattern(kPage, 2)) == 0 &&
                    Err(::chown(v.c_str(), kOwnerUid, kTaskGroup)) == 0 &&
                    Err(::chmod((v + "/mem").c_str(), mem)) == 0 &&
                    Err(::chmod((v + "/ctl").c_str(), ctl)) == 0 &&
                    Err(::chmod(v.c_str(), dir)) == 0;
    EXPECT_TRUE(ok) << "setting up " << name;
    return v;
  }

  // Runs fn as the attacker.
  int As(const std::function<int()>& fn) const { return RunAs(kAttacker, fn); }

  std::string home() const { return "h" + std::to_string(kAttacker.uid); }
  std::string h() const { return mount_ / home(); }
  std::uint64_t Id(const std::string& dir) const {
    return std::strtoull(StatusValue(ReadFile(dir + "/status"), "id").c_str(),
                         nullptr, 10);
  }

  static inline const Identity kAttacker{41004, 41004, {}};

 private:
  const Mount& mount_;
};

// The task as it is but for the statistics, which copies and forks change
// through the pages they share.
TaskState Contents(const std::string& dir) {
  TaskState s = ReadTask(dir);
  s.status_may_change = true;
  return s;
}

// Each attack runs on a fresh mount, beside the attacker's own task, which
// holds a page of its own; afterwards that task and the list of tasks are
// what they were.
class PermissionModelAttackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(mount_.ok()) << mount_.error();
    ASSERT_EQ(Err(::mkdir(h_.c_str(), 0700)), 0);
    ASSERT_EQ(WriteCtl(h_, "allocate 0x200000 4K"), 0);
    ASSERT_EQ(WriteMem(h_ + "/mem", kHomeData, Pattern(kPage, 3)), 0);
    ASSERT_EQ(
        Err(::chown(h_.c_str(), Attack::kAttacker.uid, Attack::kAttacker.gid)),
        0);
    home_ = Contents(h_);
  }
  void TearDown() override {
    if (!mount_.ok()) return;
    EXPECT_EQ(ListDir(mount_.path()),
              (std::vector<std::string>{"host_page_size", a_.home()}));
    EXPECT_TRUE(DaemonAlive(mount_));
  }

  Mount mount_{{"-o", "tasks=none,allow_other"}};
  Attack a_{mount_};
  const std::string h_ = a_.h();
  TaskState home_;  // the attacker's task as SetUp leaves it
};

// ctl write → mem read, through fork.
TEST_F(PermissionModelAttackTest, CtlWriteDoesNotGiveMemReadThroughFork) {
  const std::string v = a_.MakeVictim("v1", 0711, 0600, 0622);
  TaskState want = Contents(v);
  const std::uint64_t id = a_.Id(v);
  EXPECT_EQ(a_.As([&] {
    std::string data;
    return ReadMem(v + "/mem", kData, kPage, &data);
  }),
            EACCES);
  // Control: the inherit runs. The fork, whose child would hold the
  // victim's bytes, is refused, and the write fails with it.
  EXPECT_EQ(a_.As([&] {
    return WriteCtl(v, "inherit 0x10000 8K share\nfork stolen1");
  }),
            EACCES);
  // Nor does the victim's data come out by copy-from or vm_map_copy,
  // not even into the victim itself.
  EXPECT_EQ(a_.As([&] {
    return WriteCtl(h_, "copy-from v1 0x10000 4K 0x300000 alloc");
  }),
            EACCES);
  EXPECT_EQ(a_.As([&] {
    return Ioctl(h_ + "/mem", O_RDWR, TASKFS_IOC_VM_MAP_COPY,
                 taskfs_vm_map_copy{id, kData, kPage, kHomeDst,
                                    TASKFS_VM_MAP_COPY_DST_ALLOC, 0});
  }),
            EACCES);
  EXPECT_EQ(
      a_.As([&] { return WriteCtl(v, "copy-from v1 0x10000 4K 0x20000"); }),
      EACCES);
  want.maps = "0000000000010000-0000000000012000 rw-/rwx share\n" +
              std::string(kSpareLine);
  EXPECT_EQ(Diff(want, ReadTask(v)), "");
  // The victim's errors file says who was refused, and why.
  const std::string uid = std::to_string(Attack::kAttacker.uid);
  const std::string errors = ReadFile(v + "/errors");
  EXPECT_NE(errors.find("uid " + uid +
                        " ctl fork stolen1: KERN_PROTECTION_FAILURE: uid " +
                        uid + " may not read task v1's mem"),
            std::string::npos)
      << errors;
  EXPECT_EQ(Diff(home_, ReadTask(h_)), "");
  EXPECT_EQ(ListDir(mount_.path()),
            (std::vector<std::string>{"host_page_size", a_.home(), "v1"}));
  ::rmdir(v.c_str());
}

// ctl write and mem read → mem write, through share and fork.
TEST_F(PermissionModelAttackTest,
       CtlWriteAndMemReadDoNotGiveMemWriteThroughShareAndFork) {
  const std::string v = a_.MakeVictim("v2", 0711, 0644, 0622);
  TaskState want = Contents(v);
  const std::string k = mount_ / "stolen2";
  EXPECT_EQ(a_.As([&] {
    return WriteMem(v + "/mem", kData, std::string(kPage, 'S'));
  }),
            EACCES);
  EXPECT_EQ(a_.As([&] {
    return Ioctl(v + "/mem", O_RDONLY, TASKFS_IOC_VM_COPY,
                 taskfs_vm_copy{kSpare, kPage, kData});
  }),
            EBADF);
  // With both, fork is granted (docs/reference.md §4), the child is the
  // attacker's, and writing its share region writes the victim's: what control
  // of the task allows anyway, as copy-from into it shows below.
  EXPECT_EQ(a_.As([&] {
    return WriteCtl(v, "inherit 0x10000 4K share\nfork stolen2");
  }),
            0);
  struct stat st;
  ASSERT_EQ(Err(::stat(k.c_str(), &st)), 0);
  EXPECT_EQ(st.st_uid, Attack::kAttacker.uid);
  EXPECT_EQ(a_.As([&] {
    return WriteMem(k + "/mem", kData, std::string(kPage, 'S'));
  }),
            0);
  EXPECT_EQ(a_.As([&] {
    return WriteCtl(v, "copy-from " + a_.home() + " 0x200000 4K 0x11000");
  }),
            0);
  // A copy region of the child is the child's own.
  EXPECT_EQ(a_.As([&] {
    return WriteMem(k + "/mem", kSpare, std::string(kPage, 'C'));
  }),
            0);
  want.maps =
      "0000000000010000-0000000000011000 rw-/rwx share\n"
      "0000000000011000-0000000000012000 rw-/rwx copy\n" +
      std::string(kSpareLine);
  want.pages[kData] = std::string(kPage, 'S');
  want.pages[kData + kPage] = Pattern(kPage, 3);
  EXPECT_EQ(Diff(want, ReadTask(v)), "");
  EXPECT_EQ(Diff(home_, ReadTask(h_)), "");
  ::rmdir(k.c_str());
  ::rmdir(v.c_str());
}

// ctl write → another task's bytes, through copy-from into it.
TEST_F(PermissionModelAttackTest,
       CtlWriteDoesNotGiveAnotherTasksBytesThroughCopyFrom) {
  const std::string v = a_.MakeVictim("v3", 0711, 0600, 0622);
  const std::string w = a_.MakeVictim("w3", 0711, 0600, 0600);
  ASSERT_EQ(WriteMem(w + "/mem", kData, Pattern(kPage, 4)), 0);
  TaskState want = Contents(v);
  const TaskState other = Contents(w);
  // The source must be readable: another task's mem that is not, and the
  // victim's own, are refused, with or without destroy.
  for (const char* command :
       {"copy-from w3 0x10000 4K 0x20000",
        "copy-from w3 0x10000 4K 0x40000 alloc destroy",
        "copy-from v3 0x10000 4K 0x20000",
        "copy-from v3 0x10000 4K 0x40000 alloc destroy"}) {
    EXPECT_EQ(a_.As([&] { return WriteCtl(v, command); }), EACCES) << command;
  }
  EXPECT_EQ(Diff(want, ReadTask(v)), "");
  EXPECT_EQ(Diff(other, ReadTask(w)), "");
  // The attacker's own task, and bytes that stay inside the victim, are
  // control of it.
  EXPECT_EQ(a_.As([&] {
    return WriteCtl(v, "copy-from " + a_.home() + " 0x200000 4K 0x20000");
  }),
            0);
  EXPECT_EQ(a_.As([&] { return WriteCtl(v, "copy 0x10000 4K 0x11000"); }), 0);
  // A source the attacker may read may be copied in.
  ASSERT_EQ(Err(::chmod((w + "/mem").c_str(), 0604)), 0);
  EXPECT_EQ(a_.As([&] {
    return WriteCtl(v, "copy-from w3 0x10000 4K 0x40000 alloc");
  }),
            0);
  want.maps += kFreshLine;
  want.pages[kSpare] = Pattern(kPage, 3);
  want.pages[kData + kPage] = want.pages[kData];
  want.pages[kFresh] = Pattern(kPage, 4);
  EXPECT_EQ(Diff(want, ReadTask(v)), "");
  TaskState other_now = other;
  other_now.attrs[kMem] = Attr(0604, kOwnerUid, kTaskGroup);
  EXPECT_EQ(Diff(other_now, ReadTask(w)), "");
  ::rmdir(v.c_str());
  ::rmdir(w.c_str());
}

// mem read → mem write.
TEST_F(PermissionModelAttackTest, MemReadDoesNotGiveMemWrite) {
  const std::string v = a_.MakeVictim("v4", 0711, 0644, 0600);
  // A share region: what a fork would share, a copy still copies.
  ASSERT_EQ(WriteCtl(v, "inherit 0x10000 8K share"), 0);
  const TaskState want = Contents(v);
  const std::uint64_t id = a_.Id(v);
  EXPECT_EQ(a_.As([&] {
    std::string data;
    const int e = ReadMem(v + "/mem", kData, 2 * kPage, &data);
    return e != 0 ? e : data == Pattern(2 * kPage, 1) ? 0 : kMismatch;
  }),
            0);
  EXPECT_EQ(a_.As([&] {
    return WriteMem(v + "/mem", kData, std::string(kPage, 'R'));
  }),
            EACCES);
  EXPECT_EQ(a_.As([&] { return WriteCtl(v, "fork stolen4"); }), EACCES);
  // Every changing ioctl on the read-only descriptor.
  EXPECT_EQ(a_.As([&] {
    const std::string mem = v + "/mem";
    const int results[] = {
        Ioctl(mem, O_RDONLY, TASKFS_IOC_VM_COPY,
              taskfs_vm_copy{kSpare, kPage, kData}),
        Ioctl(mem, O_RDONLY, TASKFS_IOC_VM_ALLOCATE,
              taskfs_vm_allocate{kFresh, kPage, 0, 0}),
        Ioctl(mem, O_RDONLY, TASKFS_IOC_VM_DEALLOCATE,
              taskfs_vm_deallocate{kData, kPage}),
        Ioctl(mem, O_RDONLY, TASKFS_IOC_VM_PROTECT,
              taskfs_vm_protect{kData, kPage, 0, 0}),
        Ioctl(mem, O_RDONLY, TASKFS_IOC_VM_INHERIT,
              taskfs_vm_inherit{kData, kPage, TASKFS_VM_INHERIT_SHARE, 0}),
        Ioctl(mem, O_RDONLY, TASKFS_IOC_VM_MAP_COPY,
              taskfs_vm_map_copy{id, kSpare, kPage, kData, 0, 0}),
    };
    for (int e : results) {
      if (e != EBADF) return e == 0 ? kMismatch : e;
    }
    return EBADF;
  }),
            EBADF);
  // The attacker may copy the bytes out; its copy is copy-on-write, even
  // of a share region, and writing it leaves the victim's pages as they
  // were. destroy, which would deallocate the source, needs write
  // permission.
  EXPECT_EQ(a_.As([&] {
    return WriteCtl(h_, "copy-from v4 0x10000 8K 0x300000 alloc");
  }),
            0);
  EXPECT_EQ(a_.As([&] {
    return WriteMem(h_ + "/mem", kHomeDst, std::string(kPage, 'H'));
  }),
            0);
  EXPECT_EQ(a_.As([&] {
    return WriteCtl(h_, "copy-from v4 0x11000 4K 0x400000 alloc destroy");
  }),
            EACCES);
  EXPECT_EQ(Diff(want, ReadTask(v)), "");
  EXPECT_EQ(ReadFile(h_ + "/maps"),
            std::string(kHomeLine) +
                "0000000000300000-0000000000302000 rw-/rwx share\n");
  EXPECT_EQ(WriteCtl(h_, "deallocate 0x300000 8K"), 0);
  ::rmdir(v.c_str());
}

// mem write → mem read.
TEST_F(PermissionModelAttackTest, MemWriteDoesNotGiveMemRead) {
  const std::string v = a_.MakeVictim("v5", 0711, 0622, 0600);
  TaskState want = Contents(v);
  const std::uint64_t id = a_.Id(v);
  EXPECT_EQ(a_.As([&] { return OpenClose(v + "/mem", O_RDONLY); }), EACCES);
  EXPECT_EQ(a_.As([&] {
    const int fd = ::open((v + "/mem").c_str(), O_WRONLY);
    if (fd < 0) return errno;
    AlignedBuffer b(kPage);
    const int e = Err(::pread(fd, b.data, kPage, kData));
    ::close(fd);
    return e;
  }),
            EBADF);
  // vm_map_copy from the victim needs read permission on its mem, even
  // into the victim itself, and so does copy-from.
  EXPECT_EQ(a_.As([&] {
    return Ioctl(v + "/mem", O_WRONLY, TASKFS_IOC_VM_MAP_COPY,
                 taskfs_vm_map_copy{id, kData, kPage, kFresh,
                                    TASKFS_VM_MAP_COPY_DST_ALLOC, 0});
  }),
            EACCES);
  EXPECT_EQ(a_.As([&] {
    return WriteCtl(h_, "copy-from v5 0x10000 4K 0x300000 alloc");
  }),
            EACCES);
  // Writing, and copying inside the task, are what write permission is.
  EXPECT_EQ(a_.As([&] {
    return Ioctl(v + "/mem", O_WRONLY, TASKFS_IOC_VM_COPY,
                 taskfs_vm_copy{kData, kPage, kSpare});
  }),
            0);
  EXPECT_EQ(a_.As([&] {
    return WriteMem(v + "/mem", kData + kPage, std::string(kPage, 'W'));
  }),
            0);
  want.pages[kSpare] = want.pages[kData];
  want.pages[kData + kPage] = std::string(kPage, 'W');
  EXPECT_EQ(Diff(want, ReadTask(v)), "");
  EXPECT_EQ(Diff(home_, ReadTask(h_)), "");
  ::rmdir(v.c_str());
}

// ownership taken away by chown of another path.
TEST_F(PermissionModelAttackTest, OwnershipTakenAwayByChownOfAnotherPathHolds) {
  // The attacker owns v6 and has just used it, so the kernel holds the
  // attributes of its paths; root gives the task away through status.
  // chmod, chown and rmdir are decided by the kernel on the attributes it
  // holds, so taskfs's own owner checks must refuse them.
  const std::string v = mount_ / "v6";
  ASSERT_EQ(Err(::mkdir(v.c_str(), 0700)), 0);
  ASSERT_EQ(WriteFile(v + "/ctl", kVictimSetup), 0);
  ASSERT_EQ(
      Err(::chown(v.c_str(), Attack::kAttacker.uid, Attack::kAttacker.gid)), 0);
  EXPECT_EQ(a_.As([&] {
    const int e = Err(::chmod(v.c_str(), 0711));
    if (e != 0) return e;
    struct stat st;
    return Err(::stat((v + "/mem").c_str(), &st));
  }),
            0);
  // Read before the chown: a stat would refresh what the kernel holds.
  TaskState want = Contents(v);
  for (int f = 0; f < kFiles; ++f) {
    want.attrs[f] =
        Attr(f == kDir ? 0711 : kCreatedModes[f], kOwnerUid, kTaskGroup);
  }
  ASSERT_EQ(Err(::chown((v + "/status").c_str(), kOwnerUid, kTaskGroup)), 0);
  // Each first on what it acts on: a walk through v6 refreshes v6, and a
  // chown of a file (which may clear its set-id bits) refreshes the file.
  EXPECT_EQ(a_.As([&] { return Err(::rmdir(v.c_str())); }), EPERM);
  EXPECT_EQ(a_.As([&] { return Err(::chmod(v.c_str(), 0777)); }), EPERM);
  EXPECT_EQ(a_.As([&] {
    return Err(
        ::chown(v.c_str(), static_cast<uid_t>(-1), Attack::kAttacker.gid));
  }),
            EPERM);
  EXPECT_EQ(a_.As([&] { return Err(::chmod((v + "/mem").c_str(), 0666)); }),
            EPERM);
  EXPECT_EQ(a_.As([&] { return OpenClose(v + "/mem", O_RDWR); }), EACCES);
  EXPECT_EQ(Diff(want, ReadTask(v)), "");
  ::rmdir(v.c_str());
}

}  // namespace
}  // namespace taskfs::testing
