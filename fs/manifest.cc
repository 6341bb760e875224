#include "fs/manifest.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <new>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "fs/ctl_command.h"
#include "fs/line_assembler.h"
#include "vmcore/failure_reason.h"
#include "vmcore/memory_budget.h"
#include "vmcore/vm_user.h"

namespace taskfs::fs {
namespace {

// Addresses are multiples of 64 KiB so the demo works with every page size.
constexpr std::string_view kDemoManifest = R"(# The taskfs demo: a small program-like task and a child forked from it.
task demo
allocate 0x400000 64K            # text
fill 0x400000 64K 0xc3
protect 0x400000 64K r-x
allocate 0x600000 64K            # data, holding a greeting
load 0x600000 greeting.txt
allocate 0x610000 64K            # guard
protect 0x610000 64K ---
allocate 0x700000 64K            # memory shared with the child
inherit 0x700000 64K share
fork child
)";

constexpr std::string_view kDemoGreeting =
    "Hello from taskfs! This is the data region of task demo.\n";

using OnTaskCreated =
    std::function<void(const std::shared_ptr<vm::Task>&)>;

// Reads the file a `load` line names; false with *error set if it cannot.
using FileReader = std::function<bool(const std::string& name,
                                      std::string* contents,
                                      std::string* error)>;

std::string Located(std::string_view path, std::size_t line,
                    const std::string& message) {
  return std::string(path) + ":" + std::to_string(line) + ": " + message;
}

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
    case Op::kAllocate: case Op::kAllocateAnywhere: return "allocate";
    case Op::kDeallocate: return "deallocate";
    case Op::kProtect: return "protect";
    case Op::kInherit: return "inherit";
    case Op::kCopy: return "copy";
    case Op::kCopyFrom: return "copy-from";
    case Op::kFork: return "fork";
    case Op::kTask: return "task";
    case Op::kFill: return "fill";
    case Op::kLoad: return "load";
  }
  return "command";
}

// Runs one parsed line; "" or the message for the error.
std::string RunLine(vm::VmSystem& system, const Command& c,
                    std::shared_ptr<vm::Task>* current,
                    const OnTaskCreated& on_task_created,
                    const FileReader& read_file) {
  using Op = Command::Op;
  if (c.op == Op::kTask) {
    if (!vm::VmSystem::ValidTaskName(c.name)) {
      return "bad task name '" + c.name +
             "' (1 to 64 of A-Z a-z 0-9 . _ -, not starting with '.')";
    }
    vm::KernResult<std::shared_ptr<vm::Task>> created =
        vm::task_create(system, c.name);
    const vm::KernReturn kr = created.code();
    if (kr == vm::KERN_NAME_EXISTS) return "task '" + c.name + "' already exists";
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
    std::string contents, error;
    if (!read_file(c.name, &contents, &error)) return "load: " + error;
    kr = vm::vm_load(task, c.address, contents.data(), contents.size());
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
                           const FileReader& read_file) {
  try {
    return RunLine(system, c, current, on_task_created, read_file);
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

std::string Apply(vm::VmSystem& system, std::string_view path,
                  std::string_view text, const OnTaskCreated& on_task_created,
                  const FileReader& read_file) {
  std::shared_ptr<vm::Task> current;
  std::size_t line_number = 0;
  // A manifest's lines have no length limit; ctl's do.
  Lines lines(text);
  Line line;
  while (lines.Next(&line)) {
    ++line_number;
    if (line.status != Line::Status::kOk) {
      return Located(path, line_number, std::string(line.error()));
    }
    const ParseResult parsed = ParseCommand(line.text, Grammar::kManifest);
    if (!parsed.ok) return Located(path, line_number, parsed.error);
    if (parsed.empty) continue;
    const std::string error = RunLineGuarded(system, parsed.command, &current,
                                             on_task_created, read_file);
    if (!error.empty()) return Located(path, line_number, error);
  }
  return "";
}

std::string Directory(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

// Reads a regular file whole: false with "NAME: reason" otherwise.
bool ReadRegularFile(const std::string& path, const std::string& shown,
                     std::string* contents, std::string* error) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    *error = shown + ": " + std::strerror(errno);
    return false;
  }
  if (S_ISDIR(st.st_mode)) {
    *error = shown + ": " + std::strerror(EISDIR);
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    *error = shown + ": not a regular file";
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = shown + ": " + std::strerror(errno);
    return false;
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) {
    *error = shown + ": read error";
    return false;
  }
  *contents = std::move(buffer).str();
  return true;
}

}  // namespace

std::string_view EmbeddedDemoManifest() { return kDemoManifest; }

std::string ApplyEmbeddedDemo(vm::VmSystem& system,
                              const OnTaskCreated& on_task_created) {
  const FileReader embedded = [](const std::string& name, std::string* contents,
                                 std::string* error) {
    if (name != "greeting.txt") {
      *error = name + ": " + std::strerror(ENOENT);
      return false;
    }
    *contents = std::string(kDemoGreeting);
    return true;
  };
  return Apply(system, "<embedded demo>", kDemoManifest, on_task_created,
               embedded);
}

std::string ApplyManifest(vm::VmSystem& system, std::string_view path,
                          std::string_view text,
                          const OnTaskCreated& on_task_created) {
  const std::string base = Directory(std::string(path));
  const FileReader from_disk = [&base](const std::string& name,
                                       std::string* contents,
                                       std::string* error) {
    const std::string full = name.front() == '/' ? name : base + "/" + name;
    return ReadRegularFile(full, name, contents, error);
  };
  return Apply(system, path, text, on_task_created, from_disk);
}

std::string LoadManifestFile(vm::VmSystem& system, const std::string& path,
                             const OnTaskCreated& on_task_created) {
  std::string text, error;
  if (!ReadRegularFile(path, path, &text, &error)) return error;
  return ApplyManifest(system, path, text, on_task_created);
}

}  // namespace taskfs::fs
