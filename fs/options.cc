#include "fs/options.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "fs/mount_table.h"
#include "fs/number.h"

namespace taskfs::fs {
namespace {

// A string the C library allocated with malloc, freed with free.
struct FreeDeleter {
  void operator()(char* p) const noexcept { std::free(p); }
};
using MallocedString = std::unique_ptr<char, FreeDeleter>;

// taskfs's own -o options, as fuse_opt_parse fills them in: it gives each
// value (malloc'd) to a char* of this struct.
struct RawOptions {
  char* page_size = nullptr;
  char* address_bits = nullptr;
  char* tasks = nullptr;
  char* memory_limit = nullptr;
  char* max_tasks = nullptr;
  char* log_level = nullptr;
  char* flavor = nullptr;
  char* state = nullptr;
  char* save_interval = nullptr;
  // fuse_opt_parse hands the same pointer to the option proc. The first
  // three non-option arguments (a third is already an error), and how many
  // there were: argv never grows what the daemon keeps.
  std::vector<std::string> positional;
  std::size_t positional_count = 0;

  // Owners of the values fuse_opt_parse set, to take once, right after it:
  // the char*s stay readable while they live, and they free them.
  std::array<MallocedString, 9> TakeOwnership() const {
    return {MallocedString(page_size),    MallocedString(address_bits),
            MallocedString(tasks),        MallocedString(memory_limit),
            MallocedString(max_tasks),    MallocedString(log_level),
            MallocedString(flavor),       MallocedString(state),
            MallocedString(save_interval)};
  }
};

#define TASKFS_OPT(templ, field) \
  { templ, offsetof(RawOptions, field), 0 }
const fuse_opt kOptionSpec[] = {
    TASKFS_OPT("page_size=%s", page_size),
    TASKFS_OPT("address_bits=%s", address_bits),
    TASKFS_OPT("tasks=%s", tasks),
    TASKFS_OPT("memory_limit=%s", memory_limit),
    TASKFS_OPT("max_tasks=%s", max_tasks),
    TASKFS_OPT("log_level=%s", log_level),
    TASKFS_OPT("flavor=%s", flavor),
    TASKFS_OPT("state=%s", state),
    TASKFS_OPT("save_interval=%s", save_interval),
    FUSE_OPT_END,
};
#undef TASKFS_OPT

// Collects the non-option arguments (SOURCE, MOUNTPOINT); keeps the rest.
int CollectPositional(void* data, const char* arg, int key, fuse_args*) {
  if (key == FUSE_OPT_KEY_NONOPT) {
    RawOptions* raw = static_cast<RawOptions*>(data);
    if (raw->positional.size() < 3) raw->positional.push_back(arg);
    ++raw->positional_count;
    return 0;
  }
  return 1;
}

// ParseNumber (fs/number.h) for an option's value.
bool ParseOptionNumber(const char* text, NumberForm form, std::uint64_t* out) {
  const ParsedNumber n = ParseNumber(text, form);
  if (n.ok()) *out = n.value;
  return n.ok();
}

// An option's value as an error quotes it: at most 64 bytes, and a byte
// that is not printable ASCII as \xNN, so that the error stays one short
// line whatever the value holds (a newline, 100 KiB of it).
std::string Quoted(std::string_view value) {
  constexpr std::size_t kMax = 64;
  std::string out = "'";
  for (const char ch : value.substr(0, kMax)) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += ch;
    }
  }
  if (value.size() > kMax) out += "...";
  out += '\'';
  return out;
}

std::string AbsolutePath(const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  char cwd[PATH_MAX];
  if (::getcwd(cwd, sizeof cwd) == nullptr) return path;
  return std::string(cwd) + "/" + path;
}

std::uint64_t HalfOfPhysicalMemory() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return std::uint64_t{1} << 30;
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page) /
         2;
}

// Applies the taskfs options; "" or the reason.
std::string ApplyRaw(const RawOptions& raw, Options* o) {
  std::uint64_t value = 0;
  if (raw.page_size != nullptr) {
    if (!ParseOptionNumber(raw.page_size, NumberForm::kPlain, &value)) {
      return "bad page_size " + Quoted(raw.page_size);
    }
    o->vm.page_size = value;
  }
  if (raw.address_bits != nullptr) {
    if (!ParseOptionNumber(raw.address_bits, NumberForm::kPlain, &value) ||
        value > 64) {
      return "bad address_bits " + Quoted(raw.address_bits);
    }
    o->vm.address_bits = static_cast<unsigned>(value);
  }
  o->vm.memory_limit = HalfOfPhysicalMemory();
  if (raw.memory_limit != nullptr) {
    if (!ParseOptionNumber(raw.memory_limit, NumberForm::kSize, &value) ||
        value == 0) {
      return "bad memory_limit " + Quoted(raw.memory_limit) +
             " (want a positive size such as 512M or 2G)";
    }
    o->vm.memory_limit = value;
  }
  if (raw.max_tasks != nullptr) {
    if (!ParseOptionNumber(raw.max_tasks, NumberForm::kPlain, &value) ||
        value == 0) {
      return "bad max_tasks " + Quoted(raw.max_tasks) +
             " (want a positive number)";
    }
    o->vm.max_tasks = value;
  }
  if (raw.log_level != nullptr) {
    // spdlog's names: trace, debug, info, warning or warn, error or err,
    // critical, off. Any other name is off to from_str.
    const std::string level = raw.log_level;
    o->log_level = spdlog::level::from_str(level);
    if (o->log_level == spdlog::level::off && level != "off") {
      return "bad log_level " + Quoted(raw.log_level) +
             " (want trace, debug, info, warn, error or off)";
    }
  }
  if (raw.flavor != nullptr) {
    const std::string_view flavor = raw.flavor;
    if (flavor == "classic") {
      o->vm.flavor = vm::Flavor::kClassic;
    } else if (flavor == "xnu") {
      o->vm.flavor = vm::Flavor::kXnu;
    } else {
      return "bad flavor " + Quoted(raw.flavor) + " (want classic or xnu)";
    }
  }
  if (raw.state != nullptr) {
    if (raw.state[0] == '\0') return "bad state='': want a directory";
    o->state_dir = AbsolutePath(raw.state);
  }
  if (raw.save_interval != nullptr) {
    if (!ParseOptionNumber(raw.save_interval, NumberForm::kPlain, &value) ||
        value == 0 || value > 1000000000) {
      return "bad save_interval " + Quoted(raw.save_interval) +
             " (want a positive number of seconds)";
    }
    if (raw.state == nullptr) return "save_interval= needs state=DIR";
    o->save_interval = static_cast<unsigned>(value);
  }
  const std::string invalid = vm::VmSystem::ValidateConfig(o->vm);
  if (!invalid.empty()) return invalid;
  if (raw.tasks != nullptr) {
    if (std::string_view(raw.tasks) == "none") {
      o->tasks = Options::Tasks::kNone;
    } else if (raw.tasks[0] == '\0') {
      return "bad tasks='': want a manifest file or none";
    } else {
      o->tasks = Options::Tasks::kManifest;
      o->manifest = AbsolutePath(raw.tasks);
    }
  }
  return "";
}

// SOURCE (mount(8) form) and MOUNTPOINT.
std::string ApplyPositional(const std::vector<std::string>& positional,
                            std::size_t count, bool tasks_option, Options* o) {
  if (positional.empty()) return "no mountpoint given (see taskfs --help)";
  if (count > 2) {
    return "too many arguments: " + Quoted(positional[2]) +
           (count > 3 ? fmt::format(" and {} more", count - 3) : "") +
           " (see taskfs --help)";
  }
  o->mountpoint = positional.back();
  if (positional.size() == 2) {
    const std::string& source = positional[0];
    if (tasks_option) {
      return "both a SOURCE ('" + source + "') and -o tasks= given";
    }
    if (source == "none" || source == "taskfs") {
      o->tasks = Options::Tasks::kNone;
    } else {
      o->tasks = Options::Tasks::kManifest;
      o->manifest = AbsolutePath(source);
    }
  }
  const std::string& mountpoint = o->mountpoint;
  struct stat st;
  if (::stat(mountpoint.c_str(), &st) != 0) {
    if (errno == ENOTCONN) {
      return "mountpoint " + mountpoint +
             ": a dead FUSE mount (its daemon is gone); clear it with "
             "'fusermount3 -u " +
             mountpoint + "'";
    }
    return "mountpoint " + mountpoint + ": " + std::strerror(errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    return "mountpoint " + mountpoint + ": " + std::strerror(ENOTDIR);
  }
  // A second mount would hide the first one's files (and its daemon's
  // tasks) without a word.
  char real[PATH_MAX];
  if (::realpath(mountpoint.c_str(), real) != nullptr) {
    if (const std::optional<std::string> type = CurrentMountTypeAt(real)) {
      return "mountpoint " + mountpoint + ": already a mount (" + *type +
             "); unmount it first or choose another directory";
    }
  }
  o->mountpoint = AbsolutePath(mountpoint);
  return "";
}

}  // namespace

ParseOutcome ParseOptions(int argc, char** argv, Options* o,
                          std::string* error) {
  fuse_args args = FUSE_ARGS_INIT(argc, argv);
  RawOptions raw;
  const int parsed =
      fuse_opt_parse(&args, &raw, kOptionSpec, CollectPositional);
  const std::array<MallocedString, 9> raw_values = raw.TakeOwnership();
  if (parsed != 0) {
    fuse_opt_free_args(&args);
    *error = "bad command line (see taskfs --help)";
    return ParseOutcome::kError;
  }
  // The standard options: -f, -d, -s, -h, -V, clone_fd, max_idle_threads.
  fuse_cmdline_opts cmdline;
  std::memset(&cmdline, 0, sizeof cmdline);
  const int cmdline_parsed = fuse_parse_cmdline(&args, &cmdline);
  // None: the positional arguments were taken.
  const MallocedString no_mountpoint(cmdline.mountpoint);
  if (cmdline_parsed != 0) {
    fuse_opt_free_args(&args);
    *error = "bad command line (see taskfs --help)";
    return ParseOutcome::kError;
  }
  fuse_opt_free_args(&o->fuse);
  o->fuse = args;
  if (cmdline.show_help) return ParseOutcome::kHelp;
  if (cmdline.show_version) return ParseOutcome::kVersion;
  o->foreground = cmdline.foreground != 0 || cmdline.debug != 0;
  o->single_thread = cmdline.singlethread != 0;
  o->clone_fd = cmdline.clone_fd != 0;
  o->max_idle_threads = cmdline.max_idle_threads;
  o->max_threads = cmdline.max_threads;
  *error = ApplyRaw(raw, o);
  if (error->empty()) {
    *error = ApplyPositional(raw.positional, raw.positional_count,
                             raw.tasks != nullptr, o);
  }
  if (!error->empty()) return ParseOutcome::kError;

  const std::string fsname =
      "-ofsname=" + (o->tasks == Options::Tasks::kManifest
                         ? o->manifest
                         : std::string("taskfs"));
  for (const std::string& extra : {std::string("-odefault_permissions"),
                                   std::string("-osubtype=taskfs"), fsname}) {
    if (fuse_opt_add_arg(&o->fuse, extra.c_str()) != 0) {
      *error = "out of memory";
      return ParseOutcome::kError;
    }
  }
  return ParseOutcome::kRun;
}

unsigned WorkerThreads(const Options& options) {
  if (options.single_thread) return 1;
  // fuse_parse_cmdline gives 10 unless -o max_threads= says otherwise; the
  // loop's own default, for a value it would not take, is 10 too.
  constexpr unsigned kLoopDefault = 10;
  constexpr unsigned kLoopMost = 100000;
  return options.max_threads >= 1 && options.max_threads <= kLoopMost
             ? options.max_threads
             : kLoopDefault;
}

void PrintHelp(const char* program) {
  std::printf(
      "usage: %s [options] MOUNTPOINT\n"
      "       %s SOURCE MOUNTPOINT -o OPTIONS    (mount(8) form; SOURCE is a\n"
      "                                           manifest or \"none\")\n"
      "\n"
      "Shows emulated Mach tasks as directories; each task's mem file is its\n"
      "address space. See taskfs(1).\n"
      "\n"
      "taskfs options:\n"
      "    -o page_size=N         page size, a power of two 4096..65536 "
      "(4096)\n"
      "    -o address_bits=N      address space is [0, 2^N), N 24..62 (47)\n"
      "    -o tasks=FILE|none     load tasks from a manifest; none: no tasks\n"
      "                           (default: the embedded demo)\n"
      "    -o memory_limit=BYTES  cap on pages and their tables, K/M/G/T "
      "suffixes\n"
      "                           (half of physical memory)\n"
      "    -o max_tasks=N         cap on live tasks (1024)\n"
      "    -o log_level=L         trace, debug, info, warn, error, off (info)\n"
      "    -o flavor=F            classic: page-aligned "
      "vm_read/vm_write/vm_copy;\n"
      "                           xnu: XNU's rules, any byte range (classic)\n"
      "    -o state=DIR           keep the tasks across unmount and restart "
      "in\n"
      "                           DIR (mode 0700, the daemon's user's)\n"
      "    -o save_interval=N     with state=, also save every N seconds\n"
      "\n",
      program, program);
  std::fflush(stdout);
  fuse_cmdline_help();
  fuse_lowlevel_help();
}

}  // namespace taskfs::fs
