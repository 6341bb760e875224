#include "fs/ctl_stream.h"

#include <fmt/format.h>

#include <mutex>
#include <utility>

#include "fs/error_log.h"
#include "vmcore/failure_reason.h"

namespace taskfs::fs {

vm::KernReturn CtlStream::Run(Lines lines, std::string* result, bool* ran) {
  Line line;
  while (lines.Next(&line)) {
    ParseResult parsed;
    if (line.status != Line::Status::kOk) {
      parsed.error = std::string(line.error());
    } else {
      parsed = ParseCommand(line.text, Grammar::kCtl);
    }
    // The errors file's operation: the line as written, cut as its field is.
    const std::string_view written =
        line.text.substr(0, ErrorLog::kMaxField + 1);
    const auto operation = [written] { return fmt::format("ctl {}", written); };
    if (!parsed.ok) {
      vm::SetFailureReason(parsed.error);
      report_.Task(file_, {"ctl", vm::KERN_INVALID_ARGUMENT, parsed.error},
                   operation);
      *result = "error KERN_INVALID_ARGUMENT";
      *ran = true;
      return vm::KERN_INVALID_ARGUMENT;
    }
    if (parsed.empty) continue;
    const vm::KernReturn kr =
        ExecuteCommand(parsed.command, *file_.task, context_, result);
    *ran = true;
    if (kr != vm::KERN_SUCCESS) {
      report_.Task(file_,
                   {"ctl", kr, parsed.command.address, parsed.command.size},
                   operation);
      return kr;
    }
  }
  return vm::KERN_SUCCESS;
}

void CtlStream::StoreResult(const std::string& result) {
  std::lock_guard lock(file_.mu);
  file_.text = result;
  file_.text.push_back('\n');
  file_.ctl_cursor = 0;
  // A result line is short: kCtlLineBytes of the file's charge covers it.
}

// The assembler is taken out of the file while the lines run, and goes back
// only if they all succeed: a failing write drops the cut line it kept.
vm::KernReturn CtlStream::Write(std::string_view buf) {
  LineAssembler lines(kMaxCtlLine);
  {
    std::lock_guard lock(file_.mu);
    std::swap(lines, file_.ctl_lines);
  }
  std::string result;
  bool ran = false;
  const vm::KernReturn kr = Run(lines.Feed(buf), &result, &ran);
  if (ran) StoreResult(result);
  if (kr != vm::KERN_SUCCESS) return kr;
  if (!lines.pending().empty()) {
    std::lock_guard lock(file_.mu);
    file_.ctl_lines = std::move(lines);
  }
  return vm::KERN_SUCCESS;
}

vm::KernReturn CtlStream::Flush() {
  LineAssembler lines(kMaxCtlLine);
  {
    std::lock_guard lock(file_.mu);
    std::swap(lines, file_.ctl_lines);
  }
  if (lines.pending().empty()) return vm::KERN_SUCCESS;
  std::string result;
  bool ran = false;
  const vm::KernReturn kr = Run(lines.Finish(), &result, &ran);
  if (ran) StoreResult(result);
  return kr;
}

std::string CtlStream::Read(OpenFile& file, std::size_t size) {
  // The file position has moved past what was written: ctl's result line
  // is read from its own cursor, reset by each write, so that
  // `exec 3<>ctl; echo ... >&3; read r <&3` works.
  std::lock_guard lock(file.mu);
  std::string part =
      file.text.substr(std::min(file.ctl_cursor, file.text.size()), size);
  file.ctl_cursor += part.size();
  return part;
}

}  // namespace taskfs::fs
