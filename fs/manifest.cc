#include "fs/manifest.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <new>
#include <utility>
#include <vector>

#include "fs/ctl_command.h"
#include "fs/embedded_demo.h"  // generated from examples/ (fs/CMakeLists.txt)
#include "fs/line_assembler.h"
#include "taskfs/task_name.h"
#include "vmcore/failure_reason.h"
#include "vmcore/limit_reached.h"
#include "vmcore/vm_user.h"

namespace taskfs::fs {
namespace {

// The demo, examples/demo.tasks and examples/greeting.txt as the build
// embedded them. Its addresses are multiples of 64 KiB so that it works with
// every page size.
using embedded::kDemoGreeting;
using embedded::kDemoManifest;

// What the daemon holds while it reads a manifest: one piece of the file
// and the command part of one line (a comment may be any length: it is
// dropped as it is read). A `load` holds one piece of its file at a time.
constexpr std::size_t kReadPiece = 64 * 1024;
constexpr std::size_t kLoadPiece = 1024 * 1024;

using OnTaskCreated = std::function<void(const std::shared_ptr<vm::Task>&)>;

// A file read front to back through one descriptor, so that what is checked
// (fstat: a regular file, its size) is what is read. The size is known
// before any byte is read, and the file must end exactly there: a file that
// reads past its size (the files of /proc and /sys, whose st_size is 0) is
// no regular file, and one that ends early changed while it was read.
class SizedFile {
 public:
  SizedFile() = default;
  ~SizedFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  SizedFile(const SizedFile&) = delete;
  SizedFile& operator=(const SizedFile&) = delete;

  // Opens path; "" or "SHOWN: reason". Never blocks on a FIFO: O_NONBLOCK
  // opens it at once, and fstat then refuses it.
  std::string Open(const std::string& path, std::string_view shown) {
    shown_ = std::string(shown);
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd_ < 0) return Error(std::strerror(errno));
    struct stat st;
    if (::fstat(fd_, &st) != 0) return Error(std::strerror(errno));
    if (S_ISDIR(st.st_mode)) return Error(std::strerror(EISDIR));
    if (!S_ISREG(st.st_mode)) return Error("not a regular file");
    size_ = static_cast<std::uint64_t>(st.st_size);
    return "";
  }

  std::uint64_t size() const { return size_; }
  std::uint64_t left() const { return size_ - read_; }

  // Reads the next n bytes, n <= left(); "" or "SHOWN: reason".
  std::string Read(char* out, std::size_t n) {
    while (n != 0) {
      const ssize_t got = ::read(fd_, out, n);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return Error(std::strerror(errno));
      if (got == 0) {
        return Error(fmt::format(
            "ended after {} of its {} bytes (changed while being read)", read_,
            size_));
      }
      out += got;
      n -= static_cast<std::size_t>(got);
      read_ += static_cast<std::uint64_t>(got);
    }
    return "";
  }

  // Once left() is 0: "" if the file ends there, else "SHOWN: reason".
  std::string CheckEnd() {
    char byte;
    ssize_t got;
    do {
      got = ::read(fd_, &byte, 1);
    } while (got < 0 && errno == EINTR);
    if (got == 0) return "";
    return Error(fmt::format(
        "not a regular file (it reads past its size of {} bytes)", size_));
  }

 private:
  std::string Error(std::string_view reason) const {
    return shown_ + ": " + std::string(reason);
  }

  int fd_ = -1;
  std::string shown_;
  std::uint64_t size_ = 0;
  std::uint64_t read_ = 0;
};

// Where a `load` takes its bytes from: a file, or bytes built into the
// daemon (the demo's greeting).
class LoadSource {
 public:
  // "" or "SHOWN: reason".
  std::string OpenFile(const std::string& path, std::string_view shown) {
    from_file_ = true;
    return file_.Open(path, shown);
  }
  void SetBytes(std::string_view bytes) { bytes_ = bytes; }

  std::uint64_t size() const {
    return from_file_ ? file_.size() : bytes_.size();
  }
  // Reads the next n bytes; "" or the error.
  std::string Read(char* out, std::size_t n) {
    if (from_file_) return file_.Read(out, n);
    std::memcpy(out, bytes_.data(), n);
    bytes_.remove_prefix(n);
    return "";
  }
  // After size() bytes: "" or the error.
  std::string CheckEnd() { return from_file_ ? file_.CheckEnd() : ""; }

 private:
  bool from_file_ = false;
  SizedFile file_;
  std::string_view bytes_;
};

// Sets *source to the file a `load` line names: "" or "NAME: reason".
using LoadOpener =
    std::function<std::string(const std::string& name, LoadSource* source)>;

std::string Located(std::string_view path, std::size_t line,
                    const std::string& message) {
  return fmt::format("{}:{}: {}", path, line, message);
}

// Text a user wrote, cut short for an error line.
std::string QuotedName(std::string_view s) { return Quoted(s, 64); }

// "VERB failed: KERN_NAME". A shortage also names the limit that refused
// it (the memory limit and what it held, or max_tasks): the manifest may be
// right and the mount's options too small for it.
std::string Failed(std::string_view what, vm::KernReturn kr) {
  std::string message =
      std::string(what) + " failed: " + std::string(vm::KernReturnName(kr));
  if (kr == vm::KERN_RESOURCE_SHORTAGE && !vm::LastFailureReason().empty()) {
    message += ": " + std::string(vm::LastFailureReason());
  }
  return message;
}

std::string_view Verb(const Command& c) {
  using Op = Command::Op;
  switch (c.op) {
    case Op::kAllocate:
    case Op::kAllocateAnywhere:
      return "allocate";
    case Op::kDeallocate:
      return "deallocate";
    case Op::kProtect:
      return "protect";
    case Op::kInherit:
      return "inherit";
    case Op::kCopy:
      return "copy";
    case Op::kCopyFrom:
      return "copy-from";
    case Op::kFork:
      return "fork";
    case Op::kRemap:
      return "remap";
    case Op::kTask:
      return "task";
    case Op::kFill:
      return "fill";
    case Op::kLoad:
      return "load";
  }
  return "command";
}

// Loads source at address, reading no byte of it before the whole file is
// known to fit: every page it touches must be allocated, and must fit in
// the memory limit, since each will hold memory. Then it goes into the task
// one piece at a time, so the daemon holds one piece of the file, not the
// file. A piece the limit refuses (the pages of earlier lines count too)
// ends it; the pieces before it stay loaded, as the lines before a failing
// line stay done.
std::string Load(vm::VmSystem& system, vm::Task& task, const Command& c,
                 LoadSource& source) {
  const std::uint64_t size = source.size();
  if (size != 0) {
    const vm::KernResult<vm::vm_address_t> hole =
        vm::vm_find_hole(task, c.address);
    if (!hole.ok()) return Failed("load", hole.code());
    if (hole.value() <= c.address || size > hole.value() - c.address) {
      const std::string where =
          hole.value() <= c.address
              ? fmt::format("{:#x} is not allocated", c.address)
              : fmt::format("{:#x} is allocated only up to {:#x}", c.address,
                            hole.value());
      return fmt::format(
          "load failed: KERN_INVALID_ADDRESS: {} holds {} bytes, and {}",
          QuotedName(c.name), size, where);
    }
    // No overflow: size fits below the address limit (at most 2^62).
    const std::uint64_t page = system.page_size();
    const std::uint64_t pages = (c.address % page + size + page - 1) / page;
    const std::uint64_t limit = system.config().memory_limit;
    if (limit != 0 && pages > limit / page) {
      return fmt::format(
          "load failed: KERN_RESOURCE_SHORTAGE: {} holds {} bytes, {} pages "
          "of {}; memory limit {} bytes holds at most {}",
          QuotedName(c.name), size, pages, page, limit, limit / page);
    }
  }
  std::vector<char> piece(std::min<std::uint64_t>(size, kLoadPiece));
  for (std::uint64_t done = 0; done < size;) {
    const std::size_t n = static_cast<std::size_t>(
        std::min<std::uint64_t>(piece.size(), size - done));
    if (std::string error = source.Read(piece.data(), n); !error.empty()) {
      return "load: " + error;
    }
    const vm::KernReturn kr =
        vm::vm_load(task, c.address + done, piece.data(), n);
    if (kr != vm::KERN_SUCCESS) return Failed("load", kr);
    done += n;
  }
  if (std::string error = source.CheckEnd(); !error.empty()) {
    return "load: " + error;
  }
  return "";
}

// Runs one parsed line; "" or the message for the error.
std::string RunLine(vm::VmSystem& system, const Command& c,
                    std::shared_ptr<vm::Task>* current,
                    const OnTaskCreated& on_task_created,
                    const LoadOpener& open_load) {
  using Op = Command::Op;
  if (c.op == Op::kTask) {
    if (!vm::VmSystem::ValidTaskName(c.name)) {
      return fmt::format("bad task name {} ({})", QuotedName(c.name),
                         TASKFS_TASK_NAME_RULE);
    }
    vm::KernResult<std::shared_ptr<vm::Task>> created =
        vm::task_create(system, c.name);
    const vm::KernReturn kr = created.code();
    if (kr == vm::KERN_NAME_EXISTS)
      return "task '" + c.name + "' already exists";
    if (kr != vm::KERN_SUCCESS) return Failed("task", kr);
    *current = std::move(created).value();
    if (on_task_created) on_task_created(*current);
    return "";
  }
  if (*current == nullptr) return "no task yet: start with 'task NAME'";
  vm::Task& task = **current;
  vm::KernReturn kr;
  if (c.op == Op::kFill) {
    kr = vm::vm_fill(task, c.address, c.size, c.byte);
  } else if (c.op == Op::kLoad) {
    LoadSource source;
    if (std::string error = open_load(c.name, &source); !error.empty()) {
      return "load: " + error;
    }
    return Load(system, task, c, source);
  } else {
    ExecContext context;
    context.system = &system;
    context.on_task_created = on_task_created;
    std::string result;
    kr = ExecuteCommand(c, task, context, &result);
  }
  return kr == vm::KERN_SUCCESS ? "" : Failed(Verb(c), kr);
}

// RunLine, with running out of memory as an error of the line like any
// other: the task records the file system keeps for a new task (its node
// and errors file, made by on_task_created) are charged against the memory
// limit and throw when it refuses them, and a manifest's error must be a
// line, never an abort.
std::string RunLineGuarded(vm::VmSystem& system, const Command& c,
                           std::shared_ptr<vm::Task>* current,
                           const OnTaskCreated& on_task_created,
                           const LoadOpener& open_load) {
  try {
    return RunLine(system, c, current, on_task_created, open_load);
  } catch (const vm::LimitReached& limit) {
    return fmt::format(
        "{} failed: KERN_RESOURCE_SHORTAGE: memory limit {} bytes: {} in use, "
        "the call needs {} more",
        Verb(c), limit.limit(), limit.used(), limit.asked());
  } catch (const std::bad_alloc&) {
    return std::string(Verb(c)) +
           " failed: KERN_RESOURCE_SHORTAGE: out of memory";
  }
}

// The lines of a manifest as it is read in pieces, split as fs::Lines
// splits a text ("a\n" is one line, "a\n\nb" three), keeping of each
// line only what comes before its `#` comment: that part may be at most
// kMaxManifestLine bytes (else the line is kTooLong), the comment any
// length. A NUL byte anywhere makes the line kNulByte.
class ManifestLines {
 public:
  // Feeds the next piece of the text; calls on_line for each line it
  // completes, and stops at the first for which on_line returns false
  // (then returns false).
  template <typename OnLine>
  bool Feed(std::string_view piece, OnLine&& on_line) {
    while (!piece.empty()) {
      const std::size_t end = piece.find('\n');
      Take(piece.substr(0, end));
      if (end == std::string_view::npos) break;
      piece.remove_prefix(end + 1);
      if (!Emit(on_line)) return false;
    }
    return true;
  }
  // The end of the text: the last line, if it had no newline.
  template <typename OnLine>
  bool Finish(OnLine&& on_line) {
    return !started_ || Emit(on_line);
  }

 private:
  void Take(std::string_view part) {
    if (part.empty()) return;
    started_ = true;
    if (part.find('\0') != std::string_view::npos) nul_ = true;
    if (in_comment_) return;
    const std::size_t hash = part.find('#');
    const std::string_view command = part.substr(0, hash);
    if (too_long_ || command.size() > kMaxManifestLine - text_.size()) {
      too_long_ = true;
    } else {
      text_.append(command);
    }
    if (hash != std::string_view::npos) in_comment_ = true;
  }

  template <typename OnLine>
  bool Emit(OnLine&& on_line) {
    Line line;
    line.text = text_;
    line.status = too_long_ ? Line::Status::kTooLong
                  : nul_    ? Line::Status::kNulByte
                            : Line::Status::kOk;
    const bool go_on = on_line(line);
    text_.clear();
    started_ = in_comment_ = too_long_ = nul_ = false;
    return go_on;
  }

  std::string text_;  // the command part of the current line
  bool started_ = false;
  bool in_comment_ = false;
  bool too_long_ = false;
  bool nul_ = false;
};

// Runs a manifest's lines in order, as ManifestLines hands them over, and
// keeps the first error as "PATH:LINE: message".
class Applier {
 public:
  Applier(vm::VmSystem& system, std::string_view path,
          const OnTaskCreated& on_task_created, const LoadOpener& open_load)
      : system_(system),
        path_(path),
        on_task_created_(on_task_created),
        open_load_(open_load) {}

  // The callback of ManifestLines: runs one line; false once one failed.
  bool operator()(const Line& line) {
    ++line_number_;
    if (line.status == Line::Status::kTooLong) {
      return Done(
          fmt::format("line too long (more than {} bytes before its comment)",
                      kMaxManifestLine));
    }
    if (line.status != Line::Status::kOk) {
      return Done(std::string(line.error()));
    }
    const ParseResult parsed = ParseCommand(line.text, Grammar::kManifest);
    if (!parsed.ok) return Done(parsed.error);
    if (parsed.empty) return true;
    return Done(RunLineGuarded(system_, parsed.command, &current_,
                               on_task_created_, open_load_));
  }

  const std::string& error() const { return error_; }

 private:
  // A line's outcome: true to go on ("" is success), else the error kept.
  bool Done(const std::string& message) {
    if (message.empty()) return true;
    error_ = Located(path_, line_number_, message);
    return false;
  }

  vm::VmSystem& system_;
  std::string_view path_;
  const OnTaskCreated& on_task_created_;
  const LoadOpener& open_load_;
  std::shared_ptr<vm::Task> current_;
  std::size_t line_number_ = 0;
  std::string error_;
};

std::string ApplyText(vm::VmSystem& system, std::string_view path,
                      std::string_view text,
                      const OnTaskCreated& on_task_created,
                      const LoadOpener& open_load) {
  Applier apply(system, path, on_task_created, open_load);
  ManifestLines lines;
  if (lines.Feed(text, apply)) lines.Finish(apply);
  return apply.error();
}

// Opens a `load` file of the manifest at path: an absolute name as it is,
// a relative one in the manifest's directory.
LoadOpener FromDisk(std::string_view path) {
  return [base = std::filesystem::path(path).parent_path()](
             const std::string& name, LoadSource* source) {
    return source->OpenFile((base / name).string(), name);
  };
}

}  // namespace

std::string_view EmbeddedDemoManifest() { return kDemoManifest; }

std::string ApplyEmbeddedDemo(vm::VmSystem& system,
                              const OnTaskCreated& on_task_created) {
  const LoadOpener embedded = [](const std::string& name, LoadSource* source) {
    if (name != "greeting.txt") return name + ": " + std::strerror(ENOENT);
    source->SetBytes(kDemoGreeting);
    return std::string();
  };
  return ApplyText(system, "<embedded demo>", kDemoManifest, on_task_created,
                   embedded);
}

std::string ApplyManifest(vm::VmSystem& system, std::string_view path,
                          std::string_view text,
                          const OnTaskCreated& on_task_created) {
  return ApplyText(system, path, text, on_task_created, FromDisk(path));
}

std::string LoadManifestFile(vm::VmSystem& system, const std::string& path,
                             const OnTaskCreated& on_task_created) {
  SizedFile file;
  if (std::string error = file.Open(path, path); !error.empty()) return error;
  const LoadOpener open_load = FromDisk(path);
  Applier apply(system, path, on_task_created, open_load);
  ManifestLines lines;
  std::vector<char> piece(kReadPiece);
  while (file.left() != 0) {
    const std::size_t n = static_cast<std::size_t>(
        std::min<std::uint64_t>(piece.size(), file.left()));
    if (std::string error = file.Read(piece.data(), n); !error.empty()) {
      return error;
    }
    if (!lines.Feed(std::string_view(piece.data(), n), apply)) {
      return apply.error();
    }
  }
  // A file that reads on past its size is refused before its last line
  // runs: what it holds is not what fstat said.
  if (std::string error = file.CheckEnd(); !error.empty()) return error;
  lines.Finish(apply);
  return apply.error();
}

}  // namespace taskfs::fs
