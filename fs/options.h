// The daemon's command line (docs/reference.md §3): taskfs's own -o options,
// the mount(8) form with a SOURCE, and the standard FUSE options, which are
// passed through to libfuse.
#ifndef TASKFS_FS_OPTIONS_H_
#define TASKFS_FS_OPTIONS_H_

#include <fuse_lowlevel.h>
#include <spdlog/common.h>

#include <string>

#include "vmcore/vm_system.h"

namespace taskfs::fs {

struct Options {
  vm::VmConfig vm;
  // Where the tasks come from: the embedded demo, no tasks, or a manifest.
  enum class Tasks { kDemo, kNone, kManifest } tasks = Tasks::kDemo;
  std::string manifest;  // an absolute path, for kManifest
  std::string mountpoint;
  // -o state=DIR (an absolute path; empty: none) and -o save_interval=N
  // (seconds; 0: save at unmount only). docs/reference.md §10.
  std::string state_dir;
  unsigned save_interval = 0;
  spdlog::level::level_enum log_level = spdlog::level::info;
  bool foreground = false;
  bool single_thread = false;
  bool clone_fd = false;
  unsigned max_idle_threads = 10;
  unsigned max_threads = 10;
  // What is left for fuse_session_new: FUSE's own mount options, plus
  // default_permissions, fsname and subtype. Owned; freed by the destructor.
  fuse_args fuse = FUSE_ARGS_INIT(0, nullptr);

  Options() = default;
  ~Options() { fuse_opt_free_args(&fuse); }
  Options(const Options&) = delete;
  Options& operator=(const Options&) = delete;
};

enum class ParseOutcome { kRun, kHelp, kVersion, kError };

// Parses argv into *options. kError comes with *error: one line naming the
// problem (no trailing newline). kHelp/kVersion: print and exit 0.
ParseOutcome ParseOptions(int argc, char** argv, Options* options,
                          std::string* error);

// How many threads serve requests at once, the most that can each hold a
// read reply's pins: 1 with -s, else -o max_threads (10 when not given).
unsigned WorkerThreads(const Options& options);

// Prints --help: usage, taskfs's options, then libfuse's.
void PrintHelp(const char* program);

}  // namespace taskfs::fs

#endif  // TASKFS_FS_OPTIONS_H_
