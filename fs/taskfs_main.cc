// taskfs: mounts a VM system of emulated Mach tasks (docs/reference.md §3).
#include <fmt/format.h>
#include <fuse_lowlevel.h>
#include <malloc.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>
#include <syslog.h>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>

#include "fs/fuse_channel.h"
#include "fs/manifest.h"
#include "fs/options.h"
#include "fs/state_dir.h"
#include "fs/taskfs_fs.h"
#include "vmcore/limit_reached.h"
#include "vmcore/vm_system.h"

namespace {

using taskfs::fs::Options;

int Fail(const std::string& message) {
  std::fprintf(stderr, "taskfs: %s\n", message.c_str());
  return 1;
}

std::shared_ptr<spdlog::logger> MakeLogger(const Options& options) {
  std::shared_ptr<spdlog::logger> log;
  if (options.foreground) {
    log = spdlog::stderr_logger_mt("taskfs");
    log->set_pattern("%Y-%m-%d %H:%M:%S.%e taskfs[%P] %l: %v");
  } else {
    // In the background stderr is /dev/null: log to syslog instead.
    log = spdlog::syslog_logger_mt("taskfs", "taskfs", LOG_PID);
    log->set_pattern("%l: %v");
  }
  log->set_level(options.log_level);
  log->flush_on(spdlog::level::warn);
  return log;
}

// The memory limit bounds what the daemon holds (docs/reference.md §3); for its
// resident memory to follow, freed heap must go back to the system: one arena
// per two threads' worth of work instead of glibc's 8 per core (each keeps what
// its threads freed), and blocks of 128 KiB or more (page-table arrays,
// maps snapshots) mapped on their own, so freeing them unmaps them. What a
// request costs stays as it was: those blocks are rare.
void BoundTheHeap() {
  mallopt(M_ARENA_MAX, 2);
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  mallopt(M_TRIM_THRESHOLD, 128 * 1024);
}

// Whether resident memory is this process's own: under a sanitizer it also
// holds shadow memory and freed blocks in quarantine, which charging the
// heap's overhang would take for fragmentation and refuse users for.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

// Creates the tasks the options name: "" or the one-line error. Running
// out of memory is such an error, never an abort: a manifest (the demo
// too) reports a refusal of the memory limit on its line (fs/manifest.h),
// and this is the net under it for anything else the limit refuses while
// the daemon starts.
std::string CreateTasks(const Options& options, taskfs::vm::VmSystem& system,
                        taskfs::fs::TaskFs& fs) {
  const auto add = [&fs](const std::shared_ptr<taskfs::vm::Task>& task) {
    fs.AddTask(task, fs.daemon_uid(), fs.daemon_gid());
  };
  try {
    switch (options.tasks) {
      case Options::Tasks::kDemo:
        return taskfs::fs::ApplyEmbeddedDemo(system, add);
      case Options::Tasks::kManifest:
        return taskfs::fs::LoadManifestFile(system, options.manifest, add);
      case Options::Tasks::kNone:
        break;
    }
  } catch (const taskfs::vm::LimitReached& limit) {
    return fmt::format(
        "memory_limit={} is too small to start: {} bytes in use, {} more "
        "needed",
        limit.limit(), limit.used(), limit.asked());
  } catch (const std::bad_alloc&) {
    return "out of memory while creating the tasks";
  }
  return "";
}

// Saves every task to state and logs how it went: true if it is on disk.
bool SaveAndLog(taskfs::fs::StateDir& state, taskfs::fs::TaskFs& fs) {
  const auto began = std::chrono::steady_clock::now();
  std::uint64_t bytes = 0;
  std::string warning;
  const std::string error = state.Save(fs, &bytes, &warning);
  if (!error.empty()) {
    fs.log().error("{}", error);
    return false;
  }
  if (!warning.empty()) fs.log().warn("{}", warning);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - began)
                      .count();
  fs.log().info("saved {} tasks to {} ({} bytes in {} ms)", fs.TaskCount(),
                state.path(), bytes, ms);
  return true;
}

// -o save_interval: a thread that saves every interval until Stop.
class SaveTimer {
 public:
  SaveTimer(taskfs::fs::StateDir& state, taskfs::fs::TaskFs& fs,
            unsigned seconds)
      : thread_([this, &state, &fs, seconds] { Run(state, fs, seconds); }) {}
  ~SaveTimer() { Stop(); }
  SaveTimer(const SaveTimer&) = delete;
  SaveTimer& operator=(const SaveTimer&) = delete;

  // Waits for a save under way, if any.
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run(taskfs::fs::StateDir& state, taskfs::fs::TaskFs& fs,
           unsigned seconds) {
    std::unique_lock lock(mu_);
    for (;;) {
      if (wake_.wait_for(lock, std::chrono::seconds(seconds),
                         [this] { return stop_; })) {
        return;
      }
      lock.unlock();
      SaveAndLog(state, fs);
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;   // guarded by mu_
  std::thread thread_;  // last: it runs on the members above
};

// Once the loop has ended: SIGINT, SIGTERM and SIGHUP only noted, so that
// no signal stops the last save half-way (the daemon exits once it ends).
void NoteSignal(int) {}

void KeepSignalsFromTheSave() {
  struct sigaction action {};
  action.sa_handler = NoteSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (const int sig : {SIGINT, SIGTERM, SIGHUP}) {
    ::sigaction(sig, &action, nullptr);
  }
}

struct SessionDeleter {
  void operator()(fuse_session* se) const { fuse_session_destroy(se); }
};

}  // namespace

int main(int argc, char** argv) {
  BoundTheHeap();
  Options options;
  std::string error;
  switch (taskfs::fs::ParseOptions(argc, argv, &options, &error)) {
    case taskfs::fs::ParseOutcome::kHelp:
      taskfs::fs::PrintHelp(argv[0]);
      return 0;
    case taskfs::fs::ParseOutcome::kVersion:
      std::printf("taskfs %s (libfuse %s)\n", TASKFS_VERSION,
                  fuse_pkgversion());
      return 0;
    case taskfs::fs::ParseOutcome::kError:
      return Fail(error);
    case taskfs::fs::ParseOutcome::kRun:
      break;
  }

  // DIR opened, checked and locked once, before any other work: the
  // daemon keeps it for its life.
  std::unique_ptr<taskfs::fs::StateDir> state;
  if (!options.state_dir.empty()) {
    state = taskfs::fs::StateDir::Open(options.state_dir, &error);
    if (state == nullptr) return Fail(error);
  }

  std::shared_ptr<spdlog::logger> log = MakeLogger(options);
  const taskfs::fs::RequestLimits limits =
      taskfs::fs::RequestLimitsForThisHost(options.vm.page_size);
  // The only pins are read replies on their way to the kernel, one request
  // at most for each thread: a write at the limit copies what they pin from
  // this reserve rather than be refused.
  const unsigned threads = taskfs::fs::WorkerThreads(options);
  options.vm.pin_reserve = std::uint64_t{threads} * limits.max_bytes;
  // The heap is this process's and this is its one VmSystem: what
  // fragmentation keeps resident is charged to the limit too
  // (docs/reference.md §3.2).
  options.vm.charge_heap_overhang = !kSanitized;
  // What is resident and charged to nobody before any of it is overhang:
  // each worker thread's request buffer (one request and its header, kept
  // by libfuse once used) and 8 MiB for the rest of the daemon's own.
  options.vm.heap_overhang_allowance =
      (std::uint64_t{8} << 20) +
      std::uint64_t{threads} * (limits.max_bytes + (64 << 10));
  taskfs::vm::VmSystem system(options.vm);
  taskfs::fs::TaskFs fs(system, log, limits.max_bytes);
  // The kernel's read requests are cut at the same size as its writes.
  const std::string max_read = fmt::format("max_read={}", limits.max_bytes);
  fuse_opt_add_arg(&options.fuse, "-o");
  fuse_opt_add_arg(&options.fuse, max_read.c_str());

  // The session first: it rejects unknown FUSE options before any work.
  std::unique_ptr<fuse_session, SessionDeleter> session(
      fuse_session_new(&options.fuse, &taskfs::fs::TaskFs::Operations(),
                       sizeof(fuse_lowlevel_ops), &fs));
  if (session == nullptr) return 1;  // libfuse has printed why

  // A save present wins over tasks= (and the demo): it is what the tasks
  // became.
  bool found = false;
  if (state != nullptr) {
    const auto began = std::chrono::steady_clock::now();
    std::size_t restored = 0;
    error = state->Load(fs, &restored, &found);
    if (!error.empty()) return Fail(error);
    if (found) {
      log->info(
          "restored {} tasks from {} in {} ms; the tasks option is not loaded",
          restored, state->path(),
          std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::steady_clock::now() - began)
              .count());
    }
  }
  if (!found) {
    error = CreateTasks(options, system, fs);
    if (!error.empty()) return Fail(error);
  }

  if (fuse_set_signal_handlers(session.get()) != 0) {
    return Fail("cannot install signal handlers");
  }
  if (fuse_session_mount(session.get(), options.mountpoint.c_str()) != 0) {
    fuse_remove_signal_handlers(session.get());
    return Fail("cannot mount on " + options.mountpoint);
  }
  if (const int rc = taskfs::fs::UseRequestLimits(session.get(), limits);
      rc != 0) {
    fuse_session_unmount(session.get());
    fuse_remove_signal_handlers(session.get());
    return Fail(std::string("cannot set up /dev/fuse I/O: ") +
                std::strerror(-rc));
  }
  log->info(
      "mounted on {}: page size {}, address bits {}, memory limit {}, "
      "{} tasks loaded",
      options.mountpoint, system.page_size(), system.address_bits(),
      system.config().memory_limit, fs.TaskCount());
  // The manifest may have started the core's background threads; fork
  // copies none, so they end here and start again in the daemon.
  system.BeforeFork();
  fuse_daemonize(options.foreground ? 1 : 0);

  std::unique_ptr<SaveTimer> timer;
  if (state != nullptr && options.save_interval != 0) {
    timer = std::make_unique<SaveTimer>(*state, fs, options.save_interval);
  }
  int result;
  if (options.single_thread) {
    result = fuse_session_loop(session.get());
  } else {
    fuse_loop_config* config = fuse_loop_cfg_create();
    fuse_loop_cfg_set_clone_fd(config, options.clone_fd ? 1 : 0);
    // fuse_parse_cmdline leaves this out of range unless it is given.
    if (options.max_idle_threads <= 100000) {
      fuse_loop_cfg_set_idle_threads(config, options.max_idle_threads);
    }
    // The bound the pin reserve was sized for.
    fuse_loop_cfg_set_max_threads(config, threads);
    result = fuse_session_loop_mt(session.get(), config);
    fuse_loop_cfg_destroy(config);
  }
  // Before the wait for a timer's save: that one is kept whole too.
  if (state != nullptr) {
    KeepSignalsFromTheSave();
    log->info("saving; a signal now does not stop it");
  }
  if (timer != nullptr) timer->Stop();
  fuse_session_unmount(session.get());
  // Leaves the handlers above in place (it resets only its own).
  fuse_remove_signal_handlers(session.get());
  // The last save, after the last request: the daemon exits 0 only once it
  // is on disk.
  const bool saved = state == nullptr || SaveAndLog(*state, fs);
  // The loop returns the number of the signal that ended it, 0 after
  // fusermount3 -u, and a negative errno on a real failure.
  if (result < 0) {
    log->error("session ended with error: {}", std::strerror(-result));
    return 1;
  }
  log->info("unmounted {}", options.mountpoint);
  return saved ? 0 : 1;
}
