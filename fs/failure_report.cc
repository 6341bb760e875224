#include "fs/failure_report.h"

#include <fmt/format.h>

#include "vmcore/failure_reason.h"

namespace taskfs::fs {
namespace {

spdlog::level::level_enum LevelOf(vm::KernReturn kr) {
  return kr == vm::KERN_FAILURE ? spdlog::level::warn : spdlog::level::debug;
}

}  // namespace

void FailureReport::Log(const Failure& failure, std::string_view task) const {
  const spdlog::level::level_enum level = LevelOf(failure.kr);
  if (!log_.should_log(level)) return;
  if (!failure.why.empty()) {
    log_.log(level, "{} {}: {}: {}", failure.verb, task, failure.why,
             vm::KernReturnName(failure.kr));
  } else {
    log_.log(level, "{} {} 0x{:x}+0x{:x}: {}", failure.verb, task,
             failure.address, failure.size, vm::KernReturnName(failure.kr));
  }
}

std::uint64_t FailureReport::Record(const OpenFile& file, ErrorLog& log,
                                    vm::KernReturn kr,
                                    std::string_view operation,
                                    std::string* line) {
  return log.Record(file.opener.uid, operation, kr, vm::LastFailureReason(),
                    line);
}

template <typename Operation>
void FailureReport::InSource(const OpenFile& file, vm::Task& source,
                             vm::KernReturn kr,
                             const Operation& operation) const noexcept {
  TaskNode node;
  if (&source == file.task.get() || !nodes_.Find(source.id(), &node)) return;
  try {
    Record(file, *node.errors, kr, operation());
  } catch (const std::bad_alloc&) {
  }
}

void FailureReport::Source(const OpenFile& file, vm::Task& source,
                           const MapCopyArgs& args,
                           vm::KernReturn kr) const noexcept {
  InSource(file, source, kr, [&] {
    return fmt::format("vm_map_copy {:#x} {:#x} into task id {} at {:#x}{}{}",
                       args.src, args.size, file.task->id(), args.dst,
                       args.dst_alloc ? " alloc" : "",
                       args.src_destroy ? " destroy" : "");
  });
}

void FailureReport::Source(const OpenFile& file, vm::Task& source,
                           const RemapArgs& args,
                           vm::KernReturn kr) const noexcept {
  InSource(file, source, kr, [&] {
    return fmt::format("vm_remap {:#x} {:#x} into task id {} {} {}", args.src,
                       args.size, file.task->id(),
                       args.anywhere ? std::string("anywhere")
                                     : fmt::format("at {:#x}", args.target),
                       args.copy ? "copy" : "share");
  });
}

void FailureReport::Untracked(std::string_view verb, std::string_view name,
                              vm::KernReturn kr) const {
  const spdlog::level::level_enum level = LevelOf(kr);
  if (!log_.should_log(level)) return;
  log_.log(level, "{} {}: {}", verb, name, vm::KernReturnName(kr));
}

}  // namespace taskfs::fs
