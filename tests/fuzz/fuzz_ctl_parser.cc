// Fuzz target: the command grammar shared by ctl writes and manifests
// (fs/ctl_command.h, fs/manifest.h; docs/reference.md §6, §8). Any bytes in;
// out comes a clean error or a command, and running it gives a well-formed
// result.
//
// Input: a first line choosing the mode, then the text. A first byte `m`
// ("manifest\n...") applies the text as a manifest to a fresh system; anything
// else ("ctl\n...") runs it as one ctl write: line by line, parsed with the
// ctl grammar and run on a task until a line fails, as the daemon does.
//
// Checked for every line of a ctl write:
//   - an error is one line of printable ASCII;
//   - a blank or comment-only line, and only that, parses as empty;
//   - the ctl grammar never yields a manifest-only command, and the manifest
//     grammar accepts every ctl line as the same command;
//   - a command printed back in canonical form parses as the same command;
//   - the result line is "ok", the address of `allocate anywhere`, or
//     "error KERN_..." naming the code returned;
//   - the task's regions stay well formed.
// For a manifest: the result is "" or one line "PATH:LINE: message" naming a
// line of the text.
#include <unistd.h>

#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fs/ctl_command.h"
#include "fs/manifest.h"
#include "tests/vmcore/take_result.h"
#include "vmcore/kern_return.h"
#include "vmcore/task.h"
#include "vmcore/vm_system.h"
#include "vmcore/vm_types.h"
#include "vmcore/vm_user.h"

namespace taskfs::fuzz {
namespace {

using fs::Command;
using fs::Grammar;
using fs::ParseCommand;
using fs::ParseResult;

[[noreturn]] void Fail(std::string_view what, std::string_view line,
                       std::string_view detail) {
  std::fprintf(stderr, "\n%.*s\n  line: '%.*s'\n  %.*s\n",
               static_cast<int>(what.size()), what.data(),
               static_cast<int>(line.size()), line.data(),
               static_cast<int>(detail.size()), detail.data());
  std::abort();
}

vm::VmConfig SmallConfig() {
  return {.page_size = 4096,
          .address_bits = 24,
          .memory_limit = 256 * 4096,
          .max_tasks = 8};
}

bool Printable(std::string_view text) {
  for (char c : text) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

bool SameCommand(const Command& a, const Command& b) {
  return a.op == b.op && a.address == b.address && a.size == b.size &&
         a.dest == b.dest && a.prot == b.prot &&
         a.set_maximum == b.set_maximum && a.inheritance == b.inheritance &&
         a.dst_alloc == b.dst_alloc && a.src_destroy == b.src_destroy &&
         a.byte == b.byte && a.name == b.name;
}

std::string Num(std::uint64_t value) {
  char buffer[24];
  std::snprintf(buffer, sizeof buffer, "0x%" PRIx64, value);
  return buffer;
}

std::string Prot(vm::vm_prot_t prot) {
  std::string text = "---";
  if ((prot & vm::VM_PROT_READ) != 0) text[0] = 'r';
  if ((prot & vm::VM_PROT_WRITE) != 0) text[1] = 'w';
  if ((prot & vm::VM_PROT_EXECUTE) != 0) text[2] = 'x';
  return text;
}

// The command in canonical form: hex numbers, no suffixes, single spaces.
std::string Canonical(const Command& c) {
  using Op = Command::Op;
  const std::string range = Num(c.address) + " " + Num(c.size);
  switch (c.op) {
    case Op::kAllocate:
      return "allocate " + range;
    case Op::kAllocateAnywhere:
      return "allocate anywhere " + Num(c.size);
    case Op::kDeallocate:
      return "deallocate " + range;
    case Op::kProtect:
      return "protect " + range + (c.set_maximum ? " max " : " ") +
             Prot(c.prot);
    case Op::kInherit: {
      static const char* const kNames[] = {"share", "copy", "none"};
      return "inherit " + range + " " +
             (c.inheritance < 3 ? kNames[c.inheritance] : "?");
    }
    case Op::kCopy:
      return "copy " + range + " " + Num(c.dest);
    case Op::kCopyFrom:
      return "copy-from " + c.name + " " + range + " " + Num(c.dest) +
             (c.dst_alloc ? " alloc" : "") + (c.src_destroy ? " destroy" : "");
    case Op::kFork:
      return "fork " + c.name;
    case Op::kRemap:
      return "remap " + c.name + " " + range + " " +
             (c.anywhere ? std::string("anywhere") : Num(c.dest)) +
             (c.copy ? " copy" : " share");
    case Op::kTask:
      return "task " + c.name;
    case Op::kFill:
      return "fill " + range + " " + Num(c.byte);
    case Op::kLoad:
      return "load " + Num(c.address) + " " + c.name;
  }
  return "?";
}

// True if the line holds nothing but blanks and perhaps a comment.
bool BlankLine(std::string_view line) {
  for (char c : line) {
    if (c == '#') return true;
    if (c != ' ' && c != '\t' && c != '\r') return false;
  }
  return true;
}

void CheckParse(std::string_view line, const ParseResult& parsed) {
  if (!parsed.ok) {
    if (parsed.error.empty() || !Printable(parsed.error)) {
      Fail("a parse error is not one line of printable text", line,
           "error: '" + parsed.error + "'");
    }
    if (BlankLine(line)) Fail("a blank line fails to parse", line, "");
    return;
  }
  if (parsed.empty != BlankLine(line)) {
    Fail(parsed.empty ? "a command parses as empty"
                      : "a blank line parses as a command",
         line, "");
  }
  if (parsed.empty) return;
  const Command& c = parsed.command;
  if (c.op == Command::Op::kTask || c.op == Command::Op::kFill ||
      c.op == Command::Op::kLoad) {
    Fail("the ctl grammar accepts a manifest-only command", line, "");
  }
  const ParseResult as_manifest = ParseCommand(line, Grammar::kManifest);
  if (!as_manifest.ok || !SameCommand(as_manifest.command, c)) {
    Fail("the manifest grammar reads a ctl line differently", line,
         "manifest: " +
             (as_manifest.ok ? Canonical(as_manifest.command)
                             : as_manifest.error) +
             ", ctl: " + Canonical(c));
  }
  const std::string canonical = Canonical(c);
  const ParseResult again = ParseCommand(canonical, Grammar::kCtl);
  if (!again.ok || !SameCommand(again.command, c)) {
    Fail("a command printed back parses differently", line,
         "printed: '" + canonical + "', parsed back: " +
             (again.ok ? Canonical(again.command) : again.error));
  }
}

void CheckResult(std::string_view line, const Command& c, vm::KernReturn kr,
                 const std::string& result) {
  std::string expected;
  if (kr != vm::KERN_SUCCESS) {
    expected = "error " + std::string(vm::KernReturnName(kr));
    if (vm::KernReturnName(kr) == "KERN_UNKNOWN") {
      Fail("a command returns an unknown code", line, expected);
    }
  } else if (c.op != Command::Op::kAllocateAnywhere) {
    expected = "ok";
  } else {
    if (result.size() < 3 || result.compare(0, 2, "0x") != 0) {
      Fail("allocate anywhere gives no address", line, result);
    }
    const std::uint64_t address = std::strtoull(result.c_str(), nullptr, 16);
    if (address >= (std::uint64_t{1} << SmallConfig().address_bits) ||
        address % SmallConfig().page_size != 0) {
      Fail("allocate anywhere gives a bad address", line, result);
    }
    expected = Num(address);
  }
  if (result != expected) {
    Fail("a command's result line is wrong", line,
         "result '" + result + "', expected '" + expected + "'");
  }
}

// Regions ascending, disjoint, page-aligned, inside the address space, with
// current protection within the maximum and a defined inheritance.
void CheckRegions(std::string_view line, vm::Task& task) {
  std::vector<vm::RegionInfo> regions;
  if (vm::Take(vm::vm_region_list(task), &regions) != vm::KERN_SUCCESS) return;
  const vm::VmSystem& system = task.system();
  vm::vm_address_t previous_end = 0;
  for (const vm::RegionInfo& r : regions) {
    const bool ok = r.size != 0 && r.start >= previous_end &&
                    r.start % system.page_size() == 0 &&
                    r.size % system.page_size() == 0 &&
                    r.size <= system.address_limit() - r.start &&
                    (r.protection & ~r.max_protection) == 0 &&
                    (r.max_protection & ~vm::VM_PROT_ALL) == 0 &&
                    r.inheritance <= vm::VM_INHERIT_NONE;
    if (!ok) Fail("the task's regions are malformed afterwards", line, "");
    previous_end = r.start + r.size;
  }
}

// One ctl write on task "a" of a system that also holds task "b".
void RunCtl(std::string_view text) {
  vm::VmSystem system(SmallConfig());
  std::shared_ptr<vm::Task> a, b;
  vm::Take(vm::task_create(system, "a"), &a);
  vm::Take(vm::task_create(system, "b"), &b);
  vm::vm_address_t address = 0x10000;
  vm::vm_allocate(*b, &address, 0x4000, false);
  fs::ExecContext context;
  context.system = &system;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    const ParseResult parsed = ParseCommand(line, Grammar::kCtl);
    CheckParse(line, parsed);
    if (!parsed.ok) return;
    if (parsed.empty) continue;
    std::string result;
    const vm::KernReturn kr =
        fs::ExecuteCommand(parsed.command, *a, context, &result);
    CheckResult(line, parsed.command, kr, result);
    CheckRegions(line, *a);
    if (kr != vm::KERN_SUCCESS) return;
  }
}

// A directory holding greeting.txt for `load` lines, removed at exit.
class ManifestDir {
 public:
  ManifestDir() {
    char pattern[] = "/tmp/taskfs-fuzz-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    dir_ = pattern;
    std::ofstream(dir_ / "greeting.txt") << "Hello from taskfs!\n";
  }
  ~ManifestDir() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  ManifestDir(const ManifestDir&) = delete;
  ManifestDir& operator=(const ManifestDir&) = delete;

  std::string manifest_path() const { return dir_ / "fuzz.tasks"; }

 private:
  std::filesystem::path dir_;
};

void RunManifest(std::string_view text) {
  static const ManifestDir dir;
  const std::string path = dir.manifest_path();
  vm::VmSystem system(SmallConfig());
  const std::string error =
      fs::ApplyManifest(system, path, text, /*on_task_created=*/nullptr);
  if (error.empty()) return;
  // PATH:LINE: message, LINE a line of the text.
  const std::string prefix = path + ":";
  std::size_t lines = 1;
  for (char c : text) lines += c == '\n';
  char* end = nullptr;
  const unsigned long line =
      error.compare(0, prefix.size(), prefix) == 0
          ? std::strtoul(error.c_str() + prefix.size(), &end, 10)
          : 0;
  if (line < 1 || line > lines || end == nullptr ||
      std::string_view(end).substr(0, 2) != ": " ||
      std::string_view(end).size() <= 2 ||
      error.find('\n') != std::string::npos) {
    Fail("a manifest error is not one line PATH:LINE: message", "", error);
  }
}

}  // namespace
}  // namespace taskfs::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = all.find('\n');
  const std::string_view text = newline == std::string_view::npos
                                    ? std::string_view()
                                    : all.substr(newline + 1);
  if (!all.empty() && all[0] == 'm') {
    taskfs::fuzz::RunManifest(text);
  } else {
    taskfs::fuzz::RunCtl(text);
  }
  return 0;
}
