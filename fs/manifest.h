// Manifests: tasks declared at mount time (docs/reference.md §8).
#ifndef TASKFS_FS_MANIFEST_H_
#define TASKFS_FS_MANIFEST_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "vmcore/task.h"
#include "vmcore/vm_system.h"

namespace taskfs::fs {

// The most a manifest line may hold before its `#` comment (a comment may
// be any length): room for a `load` of a PATH_MAX path. Longer is an error
// of that line. With it, what the daemon holds while it reads a manifest is
// bounded whatever the file's size: 64 KiB of the file and one line.
inline constexpr std::size_t kMaxManifestLine = 8192;

// The demo used when no manifest is given, examples/demo.tasks (from the
// line after its note) as the build embedded it: a task with text (r-x), data
// (rw-) holding a greeting, a guard page (---), and a region inherited
// `share` by a forked child task.
std::string_view EmbeddedDemoManifest();

// Creates the embedded demo's tasks (its `load` line reads
// examples/greeting.txt as the build embedded it). Returns "" on success,
// else as ApplyManifest.
std::string ApplyEmbeddedDemo(
    vm::VmSystem& system,
    const std::function<void(const std::shared_ptr<vm::Task>&)>&
        on_task_created);

// Parses text (the contents of the file at path; path names it in errors
// and anchors relative `load` paths) and creates its tasks in system,
// calling on_task_created (may be null) for each. Returns "" on success,
// else one line "PATH:LINE: message". Stops at the first error; the lines
// before it stay done.
//
// Running out of memory is such an error, never an exception:
// on_task_created may throw std::bad_alloc (vm::LimitReached when the
// memory limit refuses what the file system keeps for a task), and a
// refusal names the limit ("task failed: KERN_RESOURCE_SHORTAGE: memory
// limit N bytes: ..."; max_tasks likewise).
//
// `load ADDR FILE` needs a regular file (fstat of the opened file, which is
// then read: "FILE: not a regular file" for a device, FIFO or socket, and
// for a file that reads past its size, as those of /proc do). Before it
// reads a byte it checks that the file fits: every page it touches
// allocated (KERN_INVALID_ADDRESS), and no more pages than the memory
// limit holds (KERN_RESOURCE_SHORTAGE). It then reads the file in pieces
// of 1 MiB, each written into the task before the next is read; a piece
// the limit refuses ends the load there.
std::string ApplyManifest(
    vm::VmSystem& system, std::string_view path, std::string_view text,
    const std::function<void(const std::shared_ptr<vm::Task>&)>&
        on_task_created);

// Reads the file at path and applies it as it reads it, in pieces of
// 64 KiB; errors as ApplyManifest. A file that cannot be read, or is not a
// regular file (as for `load`), is "PATH: reason".
std::string LoadManifestFile(
    vm::VmSystem& system, const std::string& path,
    const std::function<void(const std::shared_ptr<vm::Task>&)>&
        on_task_created);

}  // namespace taskfs::fs

#endif  // TASKFS_FS_MANIFEST_H_
