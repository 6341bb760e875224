// The hostile soak: several users at once, each with tasks of its own, some
// opened to a group or to everyone on purpose, doing everything the mount
// offers on every path for a bounded, seeded time, while four attacks run
// among them:
//   - borrowed identity: a user hands its own ctl or mem descriptor (or one
//     of another user's ctl it may write) to a root process over a unix
//     socket, which writes, ioctls and closes it, as a setuid program that
//     inherited it would (copy-from, vm_map_copy, copy-from ... destroy,
//     fork, and a cut line run at close);
//   - kept ctl lines: thousands of open ctl files of one user, each with a
//     cut line, continued by large writes;
//   - stranded frees: the limit filled with map entries (protect splits),
//     the task removed, the limit filled again with written pages;
//   - status readers: concurrent status reads of a large forked task.
// Throughout, and at the end:
//   - no user ever reads a byte of a task it may not read: every page the
//     test writes says whose it is and who may read it, and every page any
//     user reads (its own tasks, what copy-from, vm_map_copy and fork brought
//     into them, and other users' tasks open to it) is checked against the
//     reader; a root process acting on a user's descriptor counts as that
//     user; a task nobody else may read or change (the vault) never changes;
//   - every failure is an errno the operation may return;
//   - the daemon's VmRSS stays within its idle level + memory_limit + the
//     open-file reserve + the README's fixed base (normal build only), and
//     the soak stops with a failure as soon as it passes that;
//   - the daemon stays alive, and once every task is removed statfs says
//     nothing is used and VmRSS comes back within the idle level + the base.
//
// TASKFS_SOAK_SEED sets the seed (printed), TASKFS_SOAK_SECONDS the duration,
// TASKFS_SOAK_ATTACKS a comma-separated subset of borrow,lines,strand,status
// (all by default) to run one attack on its own.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "taskfs/ioctl.h"
#include "tests/integration/child_processes.h"
#include "tests/integration/mount_fixture.h"
#include "tests/integration/test_util.h"

namespace taskfs::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr long long kMiB = 1 << 20;

// The bounds. The limit is large enough that the status attack (about 40
// bytes per distinct page for each of libfuse's 10 worker threads reading
// status at once) shows above the README's fixed base: 384 MiB is 98,304
// pages, about 37 MiB for 10 readers. The daemon's VmRSS bound is then
// about 415 MiB above nothing, and the soak stops at it.
#ifdef TASKFS_SANITIZED
constexpr long long kLimit = 64 * kMiB;
constexpr int kDefaultSeconds = 15;
constexpr int kCtlFiles = 300;
constexpr auto kAttackDeadline = std::chrono::seconds(8);
constexpr long long kSplitBytes = 16 * kMiB;
// Not an assertion (shadow memory and quarantine make VmRSS meaningless
// here): what stops the attacks before they could hurt the machine.
constexpr long long kSafetyStop = 2048 * kMiB;
#else
constexpr long long kLimit = 384 * kMiB;
constexpr int kDefaultSeconds = 50;
constexpr int kCtlFiles = 3000;
constexpr auto kAttackDeadline = std::chrono::seconds(20);
// The stranding attack makes this much of map entries (not the whole limit:
// enough to pass the base twice over, in a few seconds).
constexpr long long kSplitBytes = 64 * kMiB;
#endif
// VmConfig::open_file_reserve: what open files may charge past the limit.
constexpr long long kReserve = 2 * kMiB;
// The README's fixed base beyond the idle level: libfuse's worker threads
// (up to 10, each with a 1 MiB request buffer), their reusable request
// vectors, the allocator's one empty slab and malloc's rounding.
constexpr long long kBase = 24 * kMiB;
constexpr int kStatusReaders = 10;

// The users: two in the crew group, two not. uids need no passwd entry.
constexpr gid_t kCrew = 42100;
constexpr int kUsers = 4;
constexpr int kWorkersPerUser = 2;
constexpr int kWorkers = kUsers * kWorkersPerUser;
const Identity kUser[kUsers] = {{42001, 42001, {kCrew}},
                                {42002, 42002, {kCrew}},
                                {42003, 42003, {}},
                                {42004, 42004, {}}};
bool InCrew(uid_t uid) { return uid == 42001 || uid == 42002; }

// Who may read a page, by the task it was written to.
enum Class : std::uint64_t { kPrivate = 1, kGroup = 2, kOther = 3 };
const char* ClassName(std::uint64_t c) {
  return c == kGroup ? "group" : c == kOther ? "other" : "private";
}
bool MayRead(uid_t reader, std::uint64_t owner, std::uint64_t cls) {
  return reader == owner || cls == kOther || (cls == kGroup && InCrew(reader));
}

// Each user's tasks: two private ones and a private one with thousands of
// regions, one readable by everyone (dir 0755, mem 0644) and one by the
// crew (dir 0750, mem 0640, group crew). Copies and forks only go into the
// private ones, so a shared task holds its owner's pages alone.
enum Own { kP0, kP1, kOpen, kCrewTask, kMany, kOwnTasks };
constexpr const char* kOwnSuffix[kOwnTasks] = {"p0", "p1", "o", "g", "many"};
constexpr Class kOwnClass[kOwnTasks] = {kPrivate, kPrivate, kOther, kGroup,
                                        kPrivate};
// The vault: user 0's, private, written once at setup, never touched by
// its owner again: it must read back unchanged at every checkpoint. The drop
// box: user 1's, ctl writable by everyone (ctl 0622, dir 0711), mem private.
constexpr int kVault = kUsers * kOwnTasks;
constexpr int kDrop = kVault + 1;
constexpr int kTaskSlots = kDrop + 1;

Class OwnClass(int k) { return kOwnClass[k]; }

std::string TaskName(int slot) {
  if (slot == kVault) return "vault";
  if (slot == kDrop) return "drop";
  std::string name("u");
  name.append(std::to_string(slot / kOwnTasks));
  name.append(kOwnSuffix[slot % kOwnTasks]);
  return name;
}
int SlotOwner(int slot) {
  return slot == kVault ? 0 : slot == kDrop ? 1 : slot / kOwnTasks;
}
Class SlotClass(int slot) {
  return slot >= kVault ? kPrivate : OwnClass(slot % kOwnTasks);
}

// Addresses inside every task.
constexpr std::uint64_t kData = 0x100000;  // the written pages
constexpr std::uint64_t kDataPages = 64;
constexpr std::uint64_t kVaultPages = 16;
constexpr std::uint64_t kSlots = 0x40000000;  // copy destinations, 1 MiB each
constexpr std::uint64_t kManyBase = 0x10000000;
constexpr int kManyRegions = 4000;  // protect splits of every other page

std::string Hex(std::uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// --- pages that say whose they are ------------------------------------------

constexpr std::uint64_t kMagic = 0x6b616f736b736174;  // "tasksoak"
std::uint64_t Mix(std::uint64_t owner, std::uint64_t cls, std::uint64_t serial,
                  std::uint64_t w) {
  return (owner * 0x9E3779B97F4A7C15ULL ^ (cls << 56) ^
          serial * 0xBF58476D1CE4E5B9ULL) +
         w * 0x94D049BB133111EBULL;
}
void FillTagged(unsigned char* p, std::uint64_t owner, std::uint64_t cls,
                std::uint64_t serial) {
  std::uint64_t* words = reinterpret_cast<std::uint64_t*>(p);
  words[0] = kMagic;
  words[1] = owner;
  words[2] = cls;
  words[3] = serial;
  for (std::size_t w = 4; w < kPage / 8; ++w) {
    words[w] = Mix(owner, cls, serial, w);
  }
}
enum class PageKind { kZero, kTagged, kForeign };
PageKind Decode(const unsigned char* p, std::uint64_t* owner,
                std::uint64_t* cls) {
  const std::uint64_t* words = reinterpret_cast<const std::uint64_t*>(p);
  if (words[0] != kMagic) {
    for (std::size_t w = 0; w < kPage / 8; ++w) {
      if (words[w] != 0) return PageKind::kForeign;
    }
    return PageKind::kZero;
  }
  *owner = words[1];
  *cls = words[2];
  for (std::size_t w = 4; w < kPage / 8; ++w) {
    if (words[w] != Mix(words[1], words[2], words[3], w)) {
      return PageKind::kForeign;
    }
  }
  return PageKind::kTagged;
}

// --- what every process reports ---------------------------------------------

constexpr int kNotes = 24;
const char* const kPhaseName[] = {
    "the soak alone",          "lines: opening ctl files",
    "lines: continuing lines", "strand: protect splits",
    "strand: refilling pages", "status: filling the task",
    "status: reading status"};
struct SoakState {
  std::atomic<bool> stop{false};
  std::atomic<bool> over_bound{false};
  std::atomic<bool> daemon_lost{false};
  std::atomic<long long> peak_rss{0};
  std::atomic<long long> attack_peak_rss{0};
  std::atomic<long long> over_bound_rss{0};
  // What runs now (kPhaseName), and what ran when VmRSS passed the bound.
  std::atomic<int> phase{0};
  std::atomic<int> over_bound_phase{0};
  std::atomic<long> ops{0};
  std::atomic<long> pages_checked{0};
  std::atomic<long> leaks{0};        // pages read by a user who may not
  std::atomic<long> foreign{0};      // pages neither zero nor written here
  std::atomic<long> bad_errno{0};    // an errno the operation may not return
  std::atomic<long> borrowed{0};     // a borrowed descriptor did more
  std::atomic<long> unpermitted{0};  // a direct call without the right ran
  std::atomic<long> vault_damage{0};
  // The attacks' figures: lines 0-1, strand 2-4, status 5-6 (as printed).
  std::atomic<long> figure[8]{};
  std::atomic<std::uint64_t> ids[kTaskSlots]{};
  std::atomic<int> notes{0};
  char note[kNotes][240]{};
};

void Note(SoakState* s, const char* fmt, ...) {
  const int i = s->notes.fetch_add(1);
  if (i >= kNotes) return;
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(s->note[i], sizeof s->note[i], fmt, ap);
  va_end(ap);
}

// The errnos the operations here may return (the README's errno table and
// permission model; EPERM for rmdir, chmod and chown of others' tasks).
bool AllowedErrno(int e) {
  switch (e) {
    case 0:
    case EACCES:
    case EFAULT:
    case EINVAL:
    case ENOMEM:
    case ENOSPC:
    case ESRCH:
    case EBADF:
    case ENOENT:
    case EEXIST:
    case ENOTTY:
    case EPERM:
      return true;
    default:
      return false;
  }
}
int Check(SoakState* s, const char* op, int e) {
  s->ops.fetch_add(1, std::memory_order_relaxed);
  if (!AllowedErrno(e)) {
    s->bad_errno.fetch_add(1);
    Note(s, "%s: unexpected errno %s", op, std::strerror(e));
  }
  return e;
}

// Checks every page of what reader read out of task `where`.
void CheckRead(SoakState* s, uid_t reader, const unsigned char* buf,
               std::size_t n, const std::string& where) {
  for (std::size_t off = 0; off + kPage <= n; off += kPage) {
    std::uint64_t owner = 0;
    std::uint64_t cls = 0;
    switch (Decode(buf + off, &owner, &cls)) {
      case PageKind::kZero:
        break;
      case PageKind::kForeign:
        if (s->foreign.fetch_add(1) < 3) {
          Note(s, "uid %u read a page of unknown bytes in %s +%zu", reader,
               where.c_str(), off);
        }
        break;
      case PageKind::kTagged:
        s->pages_checked.fetch_add(1, std::memory_order_relaxed);
        if (!MayRead(reader, owner, cls) && s->leaks.fetch_add(1) < 6) {
          Note(s, "uid %u read a %s page of uid %llu in %s +%zu", reader,
               ClassName(cls), static_cast<unsigned long long>(owner),
               where.c_str(), off);
        }
        break;
    }
  }
}

// pread of [addr, addr + pages) through fd, checked for reader: the errno.
int ReadChecked(SoakState* s, uid_t reader, int fd, std::uint64_t addr,
                std::size_t pages, const std::string& where) {
  AlignedBuffer b(pages * kPage);
  const ssize_t r = ::pread(fd, b.data, b.size, static_cast<off_t>(addr));
  if (r < 0) return Check(s, ("pread " + where).c_str(), errno);
  CheckRead(s, reader, b.data, static_cast<std::size_t>(r), where);
  return 0;
}
int ReadPathChecked(SoakState* s, uid_t reader, const std::string& mem,
                    std::uint64_t addr, std::size_t pages) {
  const int fd = ::open(mem.c_str(), O_RDONLY);
  if (fd < 0) return Check(s, ("open " + mem).c_str(), errno);
  const int e = ReadChecked(s, reader, fd, addr, pages, mem);
  ::close(fd);
  return e;
}

int WriteCtlText(const std::string& ctl, const std::string& text) {
  const int fd = ::open(ctl.c_str(), O_WRONLY);
  if (fd < 0) return errno;
  const int e = Command(fd, text);
  const int c = ::close(fd) == 0 ? 0 : errno;
  return e != 0 ? e : c;
}

std::uint64_t TaskId(const std::string& dir) {
  return std::strtoull(StatusValue(ReadFile(dir + "/status"), "id").c_str(),
                       nullptr, 10);
}

// --- descriptors handed to root ---------------------------------------------

// What a user asks the root broker to do with the descriptor it sends.
struct Request {
  int kind;  // kWriteText or kMapCopy
  taskfs_vm_map_copy map_copy;
  char text[200];
};
constexpr int kWriteText = 1;
constexpr int kMapCopy = 2;
struct Reply {
  int op_errno;
  int close_errno;
};

// The root process: for each descriptor a user sends, does what was asked,
// closes it and answers with the errnos. Ends when every user hung up.
int RunBroker(const std::vector<int>& socks) {
  std::vector<pollfd> polls;
  for (int s : socks) polls.push_back({s, POLLIN, 0});
  std::size_t open = polls.size();
  while (open > 0) {
    if (::poll(polls.data(), polls.size(), 200) < 0 && errno != EINTR) break;
    for (pollfd& p : polls) {
      if (p.fd < 0 || p.revents == 0) continue;
      Request req{};
      int fd = -1;
      if (!ReceiveWithFd(p.fd, &req, sizeof req, &fd)) {
        ::close(p.fd);
        p.fd = -1;
        --open;
        continue;
      }
      Reply reply{0, 0};
      if (req.kind == kWriteText) {
        req.text[sizeof req.text - 1] = '\0';
        reply.op_errno = Command(fd, req.text);
      } else {
        reply.op_errno =
            ::ioctl(fd, TASKFS_IOC_VM_MAP_COPY, &req.map_copy) < 0 ? errno : 0;
      }
      reply.close_errno = ::close(fd) == 0 ? 0 : errno;
      if (::send(p.fd, &reply, sizeof reply, MSG_NOSIGNAL) != sizeof reply) {
        ::close(p.fd);
        p.fd = -1;
        --open;
      }
    }
  }
  return 0;
}

// --- one user's worker
// --------------------------------------------------------

class Worker {
 public:
  Worker(const Mount& mount, SoakState* state, int index, int broker,
         std::uint64_t seed)
      : mount_(mount),
        s_(state),
        index_(index),
        user_(index / kWorkersPerUser),
        uid_(kUser[user_].uid),
        broker_(broker),
        rng_(seed * 1000003 + static_cast<std::uint64_t>(index)) {}

  int Run(Clock::time_point deadline) {
    // Every worker borrows root's hands for each attack once, then at random.
    for (int kind = 0; kind < 5; ++kind) Borrow(kind);
    while (!s_->stop.load() && Clock::now() < deadline) Step();
    for (int fd : held_ctl_) Check(s_, "close held ctl", CloseErr(fd));
    if (held_mem_ >= 0) ::close(held_mem_);
    return 0;
  }

 private:
  static int CloseErr(int fd) { return ::close(fd) == 0 ? 0 : errno; }
  std::uint64_t Rand(std::uint64_t n) { return rng_() % n; }
  int OwnSlot(int k) const { return user_ * kOwnTasks + k; }
  std::string Dir(int slot) const { return mount_ / TaskName(slot); }
  std::string ChildName(int n) const {
    std::string name("u");
    name.append(std::to_string(user_)).append("w");
    name.append(std::to_string(index_ % kWorkersPerUser)).append("c");
    return name.append(std::to_string(n));
  }
  std::uint64_t SlotAddr() { return kSlots + Rand(8) * 0x100000; }
  // A private task of this user to copy into.
  std::string PrivateDir() { return Dir(OwnSlot(Rand(2) == 0 ? kP0 : kMany)); }
  std::uint64_t NextSerial() {
    return (static_cast<std::uint64_t>(index_) << 40) | ++serial_;
  }

  void Step() {
    const std::uint64_t r = Rand(100);
    if (r < 18) {
      WriteOwn();
    } else if (r < 32) {
      ReadOwn();
    } else if (r < 42) {
      ReadOthers();
    } else if (r < 52) {
      Ioctls();
    } else if (r < 60) {
      MapCopy();
    } else if (r < 69) {
      CopyFrom();
    } else if (r < 74) {
      Fork();
    } else if (r < 80) {
      CutLines();
    } else if (r < 84) {
      Recreate();
    } else if (r < 88) {
      HeldOpenRead();
    } else if (r < 92) {
      Borrow(static_cast<int>(Rand(5)));
    } else if (r < 96) {
      Readers();
    } else {
      HoldCtl();
    }
  }

  void WriteOwn() {
    const int k = static_cast<int>(Rand(kOwnTasks));
    const std::size_t pages = 1 + Rand(16);
    const std::uint64_t at = kData + Rand(kDataPages - pages + 1) * kPage;
    AlignedBuffer b(pages * kPage);
    for (std::size_t i = 0; i < pages; ++i) {
      FillTagged(b.page(i), uid_, OwnClass(k), NextSerial());
    }
    const int fd = ::open((Dir(OwnSlot(k)) + "/mem").c_str(), O_WRONLY);
    if (fd < 0) {
      Check(s_, "open own mem", errno);
      return;
    }
    const int e = Check(s_, "pwrite own", WriteAll(fd, b.data, b.size, at));
    ::close(fd);
    if (e == EFAULT) {  // a destroy or deallocate took the data region
      WriteCtlText(Dir(OwnSlot(k)) + "/ctl",
                   "allocate " + Hex(kData) + " 256K\n");
    }
  }

  void ReadOwn() {
    if (Rand(3) == 0) {
      const std::string child = mount_ / ChildName(static_cast<int>(Rand(3)));
      ReadPathChecked(s_, uid_, child + "/mem", kData, kDataPages);
      return;
    }
    const int k = static_cast<int>(Rand(kOwnTasks));
    const std::uint64_t at = Rand(2) == 0 ? kData : SlotAddr();
    ReadPathChecked(s_, uid_, Dir(OwnSlot(k)) + "/mem", at,
                    at == kData ? kDataPages : 16);
  }

  // Another user's task: open ones read, the rest refused at open.
  void ReadOthers() {
    const int slot = static_cast<int>(Rand(kTaskSlots));
    if (SlotOwner(slot) == user_) return;
    const std::string mem = Dir(slot) + "/mem";
    const int fd = ::open(mem.c_str(), O_RDONLY);
    if (fd < 0) {
      Check(s_, "open others' mem", errno);
      return;
    }
    if (!MayRead(uid_, kUser[SlotOwner(slot)].uid, SlotClass(slot))) {
      s_->unpermitted.fetch_add(1);
      Note(s_, "uid %u opened %s for reading", uid_, mem.c_str());
    }
    ReadChecked(s_, uid_, fd, kData, kDataPages, mem);
    ::close(fd);
  }

  void Ioctls() {
    const int k = static_cast<int>(Rand(kOwnTasks));
    const int fd = ::open((Dir(OwnSlot(k)) + "/mem").c_str(), O_RDWR);
    if (fd < 0) {
      Check(s_, "open own mem rw", errno);
      return;
    }
    const std::uint64_t page = kData + Rand(kDataPages) * kPage;
    switch (Rand(6)) {
      case 0: {
        taskfs_vm_copy c{kData + Rand(32) * kPage, (1 + Rand(16)) * kPage,
                         kData + Rand(32) * kPage};
        Check(s_, "VM_COPY", Err(::ioctl(fd, TASKFS_IOC_VM_COPY, &c)));
        break;
      }
      case 1: {
        taskfs_vm_allocate a{0, (1 + Rand(8)) * kPage,
                             TASKFS_VM_ALLOCATE_ANYWHERE, 0};
        if (Check(s_, "VM_ALLOCATE",
                  Err(::ioctl(fd, TASKFS_IOC_VM_ALLOCATE, &a))) == 0) {
          taskfs_vm_deallocate d{a.address, a.size};
          Check(s_, "VM_DEALLOCATE",
                Err(::ioctl(fd, TASKFS_IOC_VM_DEALLOCATE, &d)));
        }
        break;
      }
      case 2: {
        taskfs_vm_protect p{page, kPage, 0,
                            Rand(2) == 0
                                ? TASKFS_VM_PROT_READ
                                : TASKFS_VM_PROT_READ | TASKFS_VM_PROT_WRITE};
        Check(s_, "VM_PROTECT", Err(::ioctl(fd, TASKFS_IOC_VM_PROTECT, &p)));
        break;
      }
      case 3: {
        taskfs_vm_inherit i{page, kPage, static_cast<std::uint32_t>(Rand(3)),
                            0};
        Check(s_, "VM_INHERIT", Err(::ioctl(fd, TASKFS_IOC_VM_INHERIT, &i)));
        break;
      }
      case 4: {
        taskfs_vm_region g{Rand(2) == 0 ? 0 : page, 0, 0, 0, 0, 0};
        Check(s_, "VM_REGION", Err(::ioctl(fd, TASKFS_IOC_VM_REGION, &g)));
        break;
      }
      default: {
        taskfs_vm_deallocate d{SlotAddr(), 0x100000};
        Check(s_, "VM_DEALLOCATE slot",
              Err(::ioctl(fd, TASKFS_IOC_VM_DEALLOCATE, &d)));
        break;
      }
    }
    ::close(fd);
  }

  // vm_map_copy from any task into a private one of ours, then read it.
  void MapCopy() {
    const int src = static_cast<int>(Rand(kTaskSlots));
    const std::string dst = PrivateDir();
    const std::uint64_t slot = SlotAddr();
    const int fd = ::open((dst + "/mem").c_str(), O_RDWR);
    if (fd < 0) {
      Check(s_, "open own mem rw", errno);
      return;
    }
    taskfs_vm_deallocate d{slot, 0x100000};
    Check(s_, "VM_DEALLOCATE", Err(::ioctl(fd, TASKFS_IOC_VM_DEALLOCATE, &d)));
    const std::uint64_t pages = 1 + Rand(16);
    taskfs_vm_map_copy m{
        s_->ids[src].load(),          kData, pages * kPage, slot,
        TASKFS_VM_MAP_COPY_DST_ALLOC, 0};
    const int e =
        Check(s_, "VM_MAP_COPY", Err(::ioctl(fd, TASKFS_IOC_VM_MAP_COPY, &m)));
    if (e == 0 && !MayRead(uid_, kUser[SlotOwner(src)].uid, SlotClass(src))) {
      s_->unpermitted.fetch_add(1);
      Note(s_, "uid %u: VM_MAP_COPY from %s ran", uid_, TaskName(src).c_str());
    }
    ReadChecked(s_, uid_, fd, slot, pages, dst + " after VM_MAP_COPY");
    ::close(fd);
  }

  // copy-from any task (with alloc; destroy from our own) into ours.
  void CopyFrom() {
    const int src = static_cast<int>(Rand(kTaskSlots));
    const bool own = SlotOwner(src) == user_;
    const std::string dst = PrivateDir();
    const std::uint64_t slot = SlotAddr();
    const std::uint64_t pages = 1 + Rand(16);
    // Never by the vault's owner, whose vault must stay as it is.
    const bool destroy = own ? src != kVault && Rand(4) == 0 : Rand(8) == 0;
    const std::string text =
        "deallocate " + Hex(slot) + " 1M\ncopy-from " + TaskName(src) + " " +
        Hex(kData + Rand(8) * kPage) + " " + std::to_string(pages * 4) + "K " +
        Hex(slot) + " alloc" + (destroy ? " destroy\n" : "\n");
    const int e = Check(s_, "ctl copy-from", WriteCtlText(dst + "/ctl", text));
    const bool may = MayRead(uid_, kUser[SlotOwner(src)].uid, SlotClass(src)) &&
                     (!destroy || own);
    if (e == 0 && !may) {
      s_->unpermitted.fetch_add(1);
      Note(s_, "uid %u: %s", uid_, text.c_str() + text.find('\n') + 1);
    }
    ReadPathChecked(s_, uid_, dst + "/mem", slot, pages);
  }

  void Fork() {
    const int k = static_cast<int>(Rand(kOwnTasks));
    const std::string child = ChildName(static_cast<int>(Rand(3)));
    ::rmdir((mount_ / child).c_str());
    if (Check(s_, "ctl fork",
              WriteCtlText(Dir(OwnSlot(k)) + "/ctl", "fork " + child + "\n")) ==
        0) {
      ReadPathChecked(s_, uid_, mount_ / child + "/mem", kData, kDataPages);
    }
  }

  // A command stream cut across two writes, or left cut to run at close.
  void CutLines() {
    const std::string ctl = Dir(OwnSlot(Rand(2) == 0 ? kP0 : kMany)) + "/ctl";
    const std::string slot = Hex(SlotAddr());
    const std::string text = "deallocate " + slot + " 1M\nallocate " + slot +
                             " 64K\nprotect " + slot + " 4K r--\n";
    const int fd = ::open(ctl.c_str(), O_WRONLY);
    if (fd < 0) {
      Check(s_, "open own ctl", errno);
      return;
    }
    // Cut after the first newline: a write without one runs as a command.
    const std::size_t first = text.find('\n') + 1;
    const std::size_t cut = first + Rand(text.size() - first);
    Check(s_, "ctl cut write", Command(fd, text.substr(0, cut)));
    if (Rand(2) == 0) Check(s_, "ctl continued", Command(fd, text.substr(cut)));
    Check(s_, "close ctl with a cut line", CloseErr(fd));
  }

  // Frees and refills: rmdir then mkdir of a task of ours.
  void Recreate() {
    const int k = static_cast<int>(Rand(3));  // p0, p1 or the open one
    const std::string dir = Dir(OwnSlot(k));
    if (Check(s_, "rmdir own", Err(::rmdir(dir.c_str()))) != 0) return;
    if (Check(s_, "mkdir own", Err(::mkdir(dir.c_str(), 0700))) != 0) return;
    Check(s_, "allocate data",
          WriteCtlText(dir + "/ctl", "allocate " + Hex(kData) + " 256K\n"));
    if (k == kOpen) {
      Check(s_, "chmod mem", Err(::chmod((dir + "/mem").c_str(), 0644)));
      Check(s_, "chmod dir", Err(::chmod(dir.c_str(), 0755)));
    }
    s_->ids[OwnSlot(k)].store(TaskId(dir));
  }

  // A descriptor of another user's open task kept across steps, read while
  // its owner removes and recreates the task.
  void HeldOpenRead() {
    if (held_mem_ < 0) {
      const int other =
          (user_ + 1 + static_cast<int>(Rand(kUsers - 1))) % kUsers;
      held_slot_ = other * kOwnTasks + (Rand(2) == 0 ? kCrewTask : kOpen);
      held_mem_ = ::open((Dir(held_slot_) + "/mem").c_str(), O_RDONLY);
      if (held_mem_ < 0) Check(s_, "open held mem", errno);
      return;
    }
    if (ReadChecked(s_, uid_, held_mem_, kData, kDataPages,
                    Dir(held_slot_) + " (held)") == ESRCH ||
        Rand(8) == 0) {
      ::close(held_mem_);
      held_mem_ = -1;
    }
  }

  // Up to 16 ctl files of ours held open with a cut line kept; one of them
  // closed now and then, running its line.
  void HoldCtl() {
    if (held_ctl_.size() >= 16 || (Rand(3) == 0 && !held_ctl_.empty())) {
      const std::size_t i = Rand(held_ctl_.size());
      Check(s_, "close held ctl", CloseErr(held_ctl_[i]));
      held_ctl_.erase(held_ctl_.begin() + static_cast<long>(i));
      return;
    }
    const int fd = ::open((Dir(OwnSlot(kMany)) + "/ctl").c_str(), O_WRONLY);
    if (fd < 0) {
      Check(s_, "open ctl to hold", errno);
      return;
    }
    const std::string slot = Hex(SlotAddr());
    Check(s_, "ctl cut line",
          Command(fd, "deallocate " + slot + " 1M\nallocate " + slot + " 4K"));
    held_ctl_.push_back(fd);
  }

  // maps of our task of thousands of regions, status of ours and children.
  void Readers() {
    if (Rand(2) == 0) {
      const std::string maps = ReadFile(Dir(OwnSlot(kMany)) + "/maps");
      if (maps.empty()) Check(s_, "read maps", ENOENT);
    } else {
      const std::string status =
          ReadFile(mount_ / ChildName(static_cast<int>(Rand(3))) + "/status");
      if (!status.empty() && StatusValue(status, "resident_bytes").empty()) {
        Note(s_, "status without resident_bytes");
      }
    }
  }

  // Hands a descriptor to root with one of the attacks. kind 0: copy-from
  // the vault through our ctl; 1: vm_map_copy from the vault through our
  // mem; 2: copy-from the vault with destroy; 3: fork of the drop box
  // through its ctl (which we may write); 4: copy-from the vault left cut,
  // to run at root's close. Each must be refused as it would be for us, and
  // what we read afterwards must hold nothing of the victim.
  void Borrow(int kind) {
    const int victim = kind == 3 ? kDrop : kVault;
    if (broker_ < 0 || SlotOwner(victim) == user_) return;
    const std::string dst = Dir(OwnSlot(kP0));
    const std::uint64_t slot = SlotAddr();
    const std::string stolen = ChildName(3 + kind);
    WriteCtlText(dst + "/ctl", "deallocate " + Hex(slot) + " 1M\n");
    Request req{};
    std::string what;
    int fd = -1;
    if (kind == 1) {
      req.kind = kMapCopy;
      req.map_copy = {s_->ids[kVault].load(),       kData,
                      kVaultPages * kPage,          slot,
                      TASKFS_VM_MAP_COPY_DST_ALLOC, 0};
      fd = ::open((dst + "/mem").c_str(), O_RDWR);
      what = "VM_MAP_COPY from vault";
    } else {
      req.kind = kWriteText;
      if (kind == 0)
        what = "copy-from vault 0x100000 64K " + Hex(slot) + " alloc\n";
      if (kind == 2)
        what = "copy-from vault 0x100000 4K " + Hex(slot) + " alloc destroy\n";
      if (kind == 3) what = "fork " + stolen + "\n";
      if (kind == 4)
        what = "# cut\ncopy-from vault 0x100000 64K " + Hex(slot) + " alloc";
      std::snprintf(req.text, sizeof req.text, "%s", what.c_str());
      fd =
          ::open((Dir(victim == kDrop ? kDrop : OwnSlot(kP0)) + "/ctl").c_str(),
                 O_WRONLY);
    }
    if (fd < 0) {
      Check(s_, "open to lend", errno);
      return;
    }
    Reply reply{-1, -1};
    // Our own descriptor stays open until root is done with its copy: our
    // close would otherwise flush the file first, and a line root left cut
    // would run at our close, not at root's.
    const bool sent = SendWithFd(broker_, &req, sizeof req, fd);
    const bool replied = sent && ::recv(broker_, &reply, sizeof reply,
                                        MSG_WAITALL) == sizeof reply;
    ::close(fd);
    if (!replied) return;  // the broker is gone: the soak is ending
    Check(s_, "borrowed op", reply.op_errno);
    Check(s_, "borrowed close", reply.close_errno);
    const int result = kind == 4 ? reply.close_errno : reply.op_errno;
    if (result != EACCES) {
      s_->borrowed.fetch_add(1);
      Note(s_, "root on uid %u's descriptor: \"%s\" gave %s, not EACCES", uid_,
           what.substr(0, what.find_last_not_of('\n') + 1).c_str(),
           result == 0 ? "success" : std::strerror(result));
    }
    // What we can read now: our own task, and a child of the victim forked
    // in our name.
    ReadPathChecked(s_, uid_, dst + "/mem", slot, kVaultPages);
    if (kind == 3) {
      ReadPathChecked(s_, uid_, mount_ / stolen + "/mem", kData, kVaultPages);
      ::rmdir((mount_ / stolen).c_str());
    }
  }

  const Mount& mount_;
  SoakState* s_;
  int index_;
  int user_;
  uid_t uid_;
  int broker_;
  std::mt19937_64 rng_;
  std::uint64_t serial_ = 0;
  int held_mem_ = -1;
  int held_slot_ = 0;
  std::vector<int> held_ctl_;
};

// --- the test
// -----------------------------------------------------------------

std::string DescribeExit(int code) { return DescribeChildExit(code); }
using Children = ChildProcesses<DescribeExit>;

std::uint64_t SeedFromEnv() {
  const char* env = std::getenv("TASKFS_SOAK_SEED");
  if (env != nullptr && *env != '\0') return std::strtoull(env, nullptr, 0);
  return std::random_device{}();
}
int SecondsFromEnv() {
  const char* env = std::getenv("TASKFS_SOAK_SECONDS");
  const int s = env != nullptr ? std::atoi(env) : 0;
  return s > 0 ? s : kDefaultSeconds;
}
bool AttackChosen(const char* name) {
  const char* env = std::getenv("TASKFS_SOAK_ATTACKS");
  if (env == nullptr || *env == '\0') return true;
  const std::string list = "," + std::string(env) + ",";
  return list.find("," + std::string(name) + ",") != std::string::npos;
}

class HostileSoakTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(mount_.ok()) << mount_.error();
    daemon_ = mount_.daemon_pid();
    // The kept-lines attack holds thousands of descriptors.
    rlimit nofile{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &nofile), 0);
    nofile.rlim_cur = nofile.rlim_max =
        std::max<rlim_t>(nofile.rlim_max, kCtlFiles + 256);
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &nofile), 0) << std::strerror(errno);
  }

  // Each user's tasks, the vault and the drop box, as their owners make
  // them; root gives the crew tasks their group.
  void MakeTasks() {
    for (int u = 0; u < kUsers; ++u) {
      for (int k = 0; k < kOwnTasks; ++k) {
        const int slot = u * kOwnTasks + k;
        const std::string dir = mount_ / TaskName(slot);
        ASSERT_EQ(RunAs(kUser[u], [&] { return MakeTask(dir, k); }), 0) << dir;
        if (k == kCrewTask) {
          ASSERT_EQ(Err(::chown(dir.c_str(), static_cast<uid_t>(-1), kCrew)),
                    0);
          ASSERT_EQ(RunAs(kUser[u],
                          [&] {
                            return Err(::chmod((dir + "/mem").c_str(), 0640)) +
                                   Err(::chmod(dir.c_str(), 0750));
                          }),
                    0);
        }
      }
    }
    vault_.resize(kVaultPages * kPage);
    for (std::uint64_t i = 0; i < kVaultPages; ++i) {
      FillTagged(reinterpret_cast<unsigned char*>(vault_.data()) + i * kPage,
                 kUser[0].uid, kPrivate, 0xFA17 + i);
    }
    std::string drop(kVaultPages * kPage, '\0');
    for (std::uint64_t i = 0; i < kVaultPages; ++i) {
      FillTagged(reinterpret_cast<unsigned char*>(drop.data()) + i * kPage,
                 kUser[1].uid, kPrivate, 0xD0 + i);
    }
    const std::string vault = mount_ / "vault";
    const std::string box = mount_ / "drop";
    ASSERT_EQ(RunAs(kUser[0], [&] { return MakeTask(vault, kP0); }), 0);
    ASSERT_EQ(RunAs(kUser[0],
                    [&] { return WriteMem(vault + "/mem", kData, vault_); }),
              0);
    ASSERT_EQ(RunAs(kUser[1],
                    [&] {
                      int e = MakeTask(box, kP0);
                      if (e == 0) e = WriteMem(box + "/mem", kData, drop);
                      if (e == 0)
                        e = Err(::chmod((box + "/ctl").c_str(), 0622));
                      if (e == 0) e = Err(::chmod(box.c_str(), 0711));
                      return e;
                    }),
              0);
    for (int slot = 0; slot < kTaskSlots; ++slot) {
      state_->ids[slot].store(TaskId(mount_ / TaskName(slot)));
    }
  }

  // Run by the owner: the task, its data region written, its modes.
  static int MakeTask(const std::string& dir, int k) {
    if (::mkdir(dir.c_str(), 0700) != 0) return errno;
    std::string text = "allocate " + Hex(kData) + " 256K\n";
    if (k == kMany) {
      text += "allocate " + Hex(kManyBase) + " " +
              std::to_string(2 * kManyRegions * 4) + "K\n";
      for (int i = 0; i < kManyRegions; ++i) {
        text += "protect " + Hex(kManyBase + 2 * i * kPage) + " 4K r--\n";
      }
    }
    if (const int e = WriteCtlText(dir + "/ctl", text); e != 0) return e;
    AlignedBuffer b(kDataPages * kPage);
    const uid_t me = ::getuid();
    for (std::uint64_t i = 0; i < kDataPages; ++i) {
      FillTagged(b.page(i), me, OwnClass(k), 0xB00 + i);
    }
    const int fd = ::open((dir + "/mem").c_str(), O_WRONLY);
    if (fd < 0) return errno;
    const int e = WriteAll(fd, b.data, b.size, kData);
    ::close(fd);
    if (e != 0) return e;
    if (OwnClass(k) == kOther) {
      if (::chmod((dir + "/mem").c_str(), 0644) != 0) return errno;
      if (::chmod(dir.c_str(), 0755) != 0) return errno;
    }
    return 0;
  }

  // The vault reads back as written, as root.
  void CheckVault() {
    std::string now;
    const int e = ReadMem(mount_ / "vault/mem", kData, vault_.size(), &now);
    if ((e != 0 || now != vault_) && state_->vault_damage.fetch_add(1) == 0) {
      Note(&*state_, "the vault changed: %s",
           e != 0 ? std::strerror(e) : "other bytes");
    }
  }

  // Samples the daemon's VmRSS every 10 ms until told to end; past the
  // bound, everything stops.
  void Monitor(const std::atomic<bool>& end) {
    while (!end.load()) {
      const long long rss = DaemonRss(daemon_);
      if (rss < 0 || !IsMountpoint(mount_.path())) {
        if (!state_->daemon_lost.exchange(true)) {
          Note(&*state_, "the daemon or its mount went away");
        }
        state_->stop.store(true);
        return;
      }
      if (rss > state_->peak_rss.load()) state_->peak_rss.store(rss);
      if (rss > state_->attack_peak_rss.load()) {
        state_->attack_peak_rss.store(rss);
      }
#ifdef TASKFS_SANITIZED
      if (rss > baseline_ + kSafetyStop) state_->stop.store(true);
#else
      if (rss > Bound() && !state_->over_bound.exchange(true)) {
        state_->over_bound_rss.store(rss);
        state_->over_bound_phase.store(state_->phase.load());
        state_->stop.store(true);
      }
#endif
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  long long Bound() const { return baseline_ + kLimit + kReserve + kBase; }

  bool Stopped() { return state_->stop.load(); }

  // One attack, run as `who` in a child with a deadline; prints its figures
  // and the daemon's VmRSS peak while it ran.
  void Attack(const char* name, const Identity& who,
              const std::function<int()>& fn) {
    if (!AttackChosen(name) || Stopped()) return;
    state_->attack_peak_rss.store(0);
    const auto start = Clock::now();
    const int r =
        RunAs(who, fn,
              static_cast<int>(
                  std::chrono::milliseconds(2 * kAttackDeadline).count()));
    const long long secs =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() -
                                                              start)
            .count();
    std::cout << "[ ATTACK   ] " << name << ": " << secs << " ms, VmRSS peak "
              << (state_->attack_peak_rss.load() - baseline_) / kMiB
              << " MiB above idle (bound " << (Bound() - baseline_) / kMiB
              << "), result "
              << (r == kChildHung ? "hung"
                  : r == 0        ? "ok"
                                  : std::strerror(r))
              << "\n";
    if (r != 0) Note(&*state_, "attack %s ended with %d", name, r);
    state_->phase.store(0);
  }

  // Kept ctl lines: kCtlFiles open ctl files, each keeping a cut line, then
  // a 512 KiB write on each that continues it (comment lines, and a cut line
  // again). Stops once the daemon passes its bound.
  int KeptLines() {
    SoakState* s = &*state_;
    const std::string dir = mount_ / "lines";
    s->phase.store(1);
    if (::mkdir(dir.c_str(), 0700) != 0) return errno;
    std::vector<int> fds;
    for (int i = 0; i < kCtlFiles && !Stopped(); ++i) {
      const int fd = ::open((dir + "/ctl").c_str(), O_WRONLY);
      if (fd < 0) {
        Check(s, "open ctl to keep a line", errno);
        break;
      }
      fds.push_back(fd);
      Check(s, "ctl cut line", Command(fd, "# kept\ndeallocate 0x10000"));
    }
    s->figure[0].store(static_cast<long>(fds.size()));
    s->phase.store(2);
    std::string big = " 4K\n";
    const std::string comment = "#" + std::string(1022, 'k') + "\n";
    while (big.size() + comment.size() + 64 < 512 * 1024) big += comment;
    big += "deallocate 0x10000";
    long grown = 0;
    for (int fd : fds) {
      if (Stopped()) break;
      if (Check(s, "ctl continued", Command(fd, big)) == 0) ++grown;
    }
    s->figure[1].store(grown);
    for (int fd : fds) Check(s, "close kept ctl", ::close(fd) == 0 ? 0 : errno);
    return Err(::rmdir(dir.c_str()));
  }

  // Stranded frees: protect splits until kSplitBytes of map entries (or the
  // limit), rmdir, then written pages up to the limit.
  int Strand() {
    SoakState* s = &*state_;
    const std::string dir = mount_ / "splits";
    s->phase.store(3);
    const long long before = StatfsUsedBytes(mount_.path());
    const std::uint64_t pages =
        2 * static_cast<std::uint64_t>(kSplitBytes / 64);
    if (::mkdir(dir.c_str(), 0700) != 0) return errno;
    if (const int e =
            WriteCtlText(dir + "/ctl", "allocate 0x100000000 " +
                                           std::to_string(pages * 4) + "K\n");
        e != 0) {
      return e;
    }
    const int ctl = ::open((dir + "/ctl").c_str(), O_WRONLY);
    if (ctl < 0) return errno;
    const auto until = Clock::now() + kAttackDeadline / 2;
    long splits = 0;
    std::uint64_t page = 0;
    while (!Stopped() && Clock::now() < until && page + 2 * 2048 < pages &&
           StatfsUsedBytes(mount_.path()) - before < kSplitBytes) {
      std::string text;
      for (int i = 0; i < 2048; ++i, page += 2) {
        text += "protect " + Hex(0x100000000 + page * kPage) + " 4K r--\n";
      }
      const int e = Check(s, "ctl protect splits", Command(ctl, text));
      if (e != 0) break;
      splits += 2048;
    }
    ::close(ctl);
    s->figure[2].store(splits);
    s->figure[3].store((StatfsUsedBytes(mount_.path()) - before) / kMiB);
    if (::rmdir(dir.c_str()) != 0) return errno;
    PollUntil([&] { return StatfsUsedBytes(mount_.path()) <= before + kMiB; },
              std::chrono::seconds(10));
    s->phase.store(4);
    s->figure[4].store(FillWithPages(mount_ / "refill") / kMiB);
    return Err(::rmdir((mount_ / "refill").c_str()));
  }

  // Writes tagged pages into a new task until the limit (or room_left
  // bytes under it); the bytes written.
  long long FillWithPages(const std::string& dir, long long room_left = 0) {
    SoakState* s = &*state_;
    if (::mkdir(dir.c_str(), 0700) != 0) return 0;
    WriteCtlText(dir + "/ctl", "allocate 0x100000000 " +
                                   std::to_string((kLimit + 64 * kMiB) / 1024) +
                                   "K\n");
    const int fd = ::open((dir + "/mem").c_str(), O_WRONLY);
    if (fd < 0) return 0;
    AlignedBuffer b(512 * 1024);
    long long written = 0;
    const auto until = Clock::now() + kAttackDeadline / 2;
    while (!Stopped() && Clock::now() < until && written < kLimit + 32 * kMiB &&
           (room_left == 0 ||
            StatfsUsedBytes(mount_.path()) < kLimit - room_left)) {
      for (std::size_t i = 0; i < b.size / kPage; ++i) {
        FillTagged(b.page(i), ::getuid(), kPrivate, 0x5000000 + written + i);
      }
      const int e =
          Check(s, "pwrite refill",
                WriteAll(fd, b.data, b.size,
                         0x100000000 + static_cast<std::uint64_t>(written)));
      if (e != 0) break;
      written += static_cast<long long>(b.size);
    }
    ::close(fd);
    return written;
  }

  // Status readers: a task of nearly the limit's pages forked, and
  // kStatusReaders processes reading both tasks' status at once.
  int StatusReaders() {
    SoakState* s = &*state_;
    const std::string big = mount_ / "big";
    s->phase.store(5);
    const long long written = FillWithPages(big, 3 * kMiB);
    s->figure[5].store(written / static_cast<long long>(kPage));
    int e = WriteCtlText(big + "/ctl", "fork bigchild\n");
    Check(s, "fork big", e);
    if (e == 0) {
      s->figure[7].store((DaemonRss(daemon_) - baseline_) / kMiB);
      s->phase.store(6);
      std::atomic<long>* reads = &s->figure[6];
      Children readers;
      const auto until = Clock::now() + std::chrono::seconds(3);
      for (int i = 0; i < kStatusReaders; ++i) {
        readers.Spawn("status reader", [&, i] {
          const std::string path =
              mount_ / (i % 2 == 0 ? "bigchild/status" : "big/status");
          while (!Stopped() && Clock::now() < until) {
            if (ResidentBytes(path) < 0) return kWrongContent;
            reads->fetch_add(1);
          }
          return 0;
        });
      }
      readers.WaitAll(until + std::chrono::seconds(10));
      e = Err(::rmdir((mount_ / "bigchild").c_str()));
    }
    const int r = Err(::rmdir(big.c_str()));
    return e != 0 ? e : r;
  }

  Mount mount_{{"-o", "tasks=none,allow_other,memory_limit=" +
                          std::to_string(kLimit / kMiB) + "M"}};
  pid_t daemon_ = -1;
  long long baseline_ = 0;
  std::string vault_;
  Shared<SoakState> state_;
};

TEST_F(HostileSoakTest, UsersSeeOnlyWhatTheyMayAndTheDaemonStaysBounded) {
  const std::uint64_t seed = SeedFromEnv();
  const int seconds = SecondsFromEnv();
  std::cout << "[ SOAK     ] seed " << seed << " (TASKFS_SOAK_SEED), "
            << seconds << " s (TASKFS_SOAK_SECONDS), memory_limit "
            << kLimit / kMiB << " MiB\n";
  ASSERT_NO_FATAL_FAILURE(MakeTasks());
  baseline_ = DaemonRss(daemon_);
  ASSERT_GT(baseline_, 0);
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::seconds(seconds);

  // The root broker and the users' workers, each worker with its own socket
  // to the broker.
  Children broker;
  Children workers;
  std::vector<int> broker_ends;
  std::vector<int> worker_ends;
  for (int i = 0; i < kWorkers; ++i) {
    int pair[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
    broker_ends.push_back(pair[0]);
    worker_ends.push_back(pair[1]);
  }
  const bool borrow = AttackChosen("borrow");
  broker.Spawn("root broker", [&] {
    for (int fd : worker_ends) ::close(fd);
    return RunBroker(broker_ends);
  });
  for (int fd : broker_ends) ::close(fd);
  for (int i = 0; i < kWorkers; ++i) {
    workers.Spawn("worker " + std::to_string(i), [&, i] {
      for (int j = 0; j < kWorkers; ++j) {
        if (j != i) ::close(worker_ends[j]);
      }
      const Identity& who = kUser[i / kWorkersPerUser];
      if (::setgroups(who.groups.size(), who.groups.data()) != 0 ||
          ::setgid(who.gid) != 0 || ::setuid(who.uid) != 0) {
        return kUnexpectedError;
      }
      Worker w(mount_, &*state_, i, borrow ? worker_ends[i] : -1, seed);
      return w.Run(deadline);
    });
  }
  for (int fd : worker_ends) ::close(fd);

  std::atomic<bool> end_monitor{false};
  std::thread monitor([&] { Monitor(end_monitor); });

  // The memory attacks, in a seeded order, while the workers run.
  std::vector<int> order = {0, 1, 2};
  std::shuffle(order.begin(), order.end(), std::mt19937_64(seed));
  for (int a : order) {
    CheckVault();
    if (a == 0) Attack("lines", kUser[3], [&] { return KeptLines(); });
    if (a == 1) Attack("strand", kUser[2], [&] { return Strand(); });
    if (a == 2) Attack("status", kUser[1], [&] { return StatusReaders(); });
  }
  // Then the soak alone, with checkpoints, until the deadline.
  while (!Stopped() && Clock::now() < deadline) {
    CheckVault();
    PollUntil([&] { return Stopped(); }, std::chrono::milliseconds(200));
  }
  state_->stop.store(true);
  const bool all_exited =
      workers.WaitAll(Clock::now() + std::chrono::seconds(20));
  broker.WaitAll(Clock::now() + std::chrono::seconds(5));
  CheckVault();
  const bool alive = DaemonAlive(mount_);

  // Every task removed: nothing used, and VmRSS back within the base.
  for (const std::string& name : ListDir(mount_.path())) {
    if (name != "host_page_size") ::rmdir((mount_ / name).c_str());
  }
  const bool emptied =
      PollUntil([&] { return StatfsUsedBytes(mount_.path()) == 0; },
                std::chrono::seconds(10));
#ifndef TASKFS_SANITIZED
  const bool came_down = PollUntil(
      [&] { return DaemonRss(daemon_) <= baseline_ + kReserve + kBase; },
      std::chrono::seconds(10));
#endif
  end_monitor.store(true);
  monitor.join();

  SoakState& s = *state_;
  std::cout
      << "[ SOAK     ] "
      << std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start)
             .count()
      << " s, " << s.ops.load() << " operations, " << s.pages_checked.load()
      << " tagged pages checked; VmRSS idle " << baseline_ / kMiB
      << " MiB, peak " << (s.peak_rss.load() - baseline_) / kMiB
      << " MiB above idle (bound " << (Bound() - baseline_) / kMiB << ")\n"
      << "[ SOAK     ] lines: " << s.figure[0].load()
      << " ctl files kept a line, " << s.figure[1].load()
      << " continued by 512 KiB; strand: " << s.figure[2].load() << " splits ("
      << s.figure[3].load() << " MiB), then " << s.figure[4].load()
      << " MiB written; status: " << s.figure[5].load() << " pages forked, "
      << s.figure[6].load() << " status reads, VmRSS before them "
      << s.figure[7].load() << " MiB above idle\n";
  for (int i = 0; i < std::min(s.notes.load(), kNotes); ++i) {
    std::cout << "[ NOTE     ] " << s.note[i] << "\n";
  }
  EXPECT_EQ(s.leaks.load(), 0) << "pages read by a user who may not read them";
  EXPECT_EQ(s.borrowed.load(), 0)
      << "root acting on a user's descriptor did what the user may not";
  EXPECT_EQ(s.vault_damage.load(), 0) << "the vault changed";
  EXPECT_EQ(s.unpermitted.load(), 0) << "a call without the right ran";
  EXPECT_EQ(s.foreign.load(), 0) << "pages of unknown bytes";
  EXPECT_EQ(s.bad_errno.load(), 0) << "errnos the operations may not return";
  EXPECT_FALSE(s.over_bound.load())
      << "daemon VmRSS " << s.over_bound_rss.load() << " passed idle "
      << baseline_ << " + limit " << kLimit << " + reserve " << kReserve
      << " + base " << kBase << " during "
      << kPhaseName[s.over_bound_phase.load()];
  EXPECT_FALSE(s.daemon_lost.load());
  EXPECT_TRUE(alive) << "the daemon died";
  EXPECT_TRUE(all_exited) << "workers had to be killed at the deadline";
  workers.ExpectAllSucceeded();
  EXPECT_TRUE(emptied) << StatfsUsedBytes(mount_.path())
                       << " bytes used with every task removed";
#ifndef TASKFS_SANITIZED
  EXPECT_TRUE(came_down) << "VmRSS " << DaemonRss(daemon_)
                         << " with every task removed, idle " << baseline_;
#endif
}

}  // namespace
}  // namespace taskfs::testing
