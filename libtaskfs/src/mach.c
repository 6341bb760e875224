/*
 * libtaskfs: Mach's VM calls over a taskfs mount (<taskfs/mach.h>).
 *
 * Each call is: check the arguments Mach checks before any I/O, take a
 * reference to the handle, make one system call on the task's files (or a
 * loop of them for a transfer larger than one kernel request), and turn the
 * errno into a kern_return_t through <taskfs/errno_table.h>, the table the
 * daemon uses. Task names are judged by <taskfs/task_name.h>, the daemon's
 * rule, and the ioctls are <taskfs/ioctl.h>'s.
 */
#define _GNU_SOURCE

#include "taskfs/mach.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "core_parse.h"
#include "internal.h"
#include "taskfs/errno_table.h"
#include "taskfs/ioctl.h"
#include "taskfs/task_name.h"

/* mach_task_self(): a value no handle takes (handles have a generation of at
 * most kMaxGeneration in their top bits). */
#define TASKFS_TASK_SELF ((task_t)0xFFFFFFFFu)

/* A handle is (generation << kSlotBits) | (slot + 1): a closed handle's
 * number is not given out again until its slot's generation wraps. */
enum {
  kSlotBits = 20,
  kMaxSlots = (1 << kSlotBits) - 1,
  kMaxGeneration = 4094
};

/* One open task. Constant after construction but for refs, which the table
 * mutex guards. */
struct task_entry {
  char *dir;  /* the task directory, without a trailing slash */
  char *root; /* the mount root it lies in */
  char *name; /* its last component */
  int fd;     /* mem, O_RDWR if writable, else O_RDONLY */
  int writable;
  uint64_t page_size;
  uint64_t id; /* "id" of status: names the task on its mount only */
  int xnu;     /* the mount's flavor is xnu: any byte range (status) */
  dev_t dev;   /* mem's st_dev: each mount has a device of its own */
  int refs;    /* the table's (until closed) plus one per call in flight */
};

/* The handle table; g_mu guards every field below and each entry's refs.
 * No lock is held across a system call. */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static struct task_entry **g_slots;
static unsigned *g_generations;
static size_t g_capacity;

/* ---- errors ----------------------------------------------------------------
 */

static kern_return_t kern_from_errno(int error) {
#define TASKFS_KERN_ROW(kern, errno_value) \
  if (error == (errno_value)) return kern;
  TASKFS_ERRNO_TABLE(TASKFS_KERN_ROW)
#undef TASKFS_KERN_ROW
  return KERN_FAILURE;
}

/* Opening a file of a task: a task directory that is not there (or no longer
 * there) is KERN_INVALID_TASK. */
static kern_return_t kern_from_open_errno(int error) {
  if (error == ENOENT || error == ENOTDIR) return KERN_INVALID_TASK;
  return kern_from_errno(error);
}

const char *mach_error_string(kern_return_t error_value) {
  switch (error_value) {
    case KERN_SUCCESS:
      return "(os/kern) successful";
    case KERN_INVALID_ADDRESS:
      return "(os/kern) invalid address";
    case KERN_PROTECTION_FAILURE:
      return "(os/kern) protection failure";
    case KERN_NO_SPACE:
      return "(os/kern) no space available";
    case KERN_INVALID_ARGUMENT:
      return "(os/kern) invalid argument";
    case KERN_FAILURE:
      return "(os/kern) failure";
    case KERN_RESOURCE_SHORTAGE:
      return "(os/kern) resource shortage";
    case KERN_NAME_EXISTS:
      return "(os/kern) name exists";
    case KERN_INVALID_TASK:
      return "(os/kern) invalid task";
    /* The codes the macOS interface's <mach/mach_types.h> adds, XNU's text. */
    case 7:
      return "(os/kern) not receiver";
    case 8:
      return "(os/kern) no access";
    case 9:
      return "(os/kern) memory failure";
    case 10:
      return "(os/kern) memory error";
    case 11:
      return "(os/kern) already in set";
    case 12:
      return "(os/kern) not in set";
    case 14:
      return "(os/kern) aborted";
    case 15:
      return "(os/kern) invalid name";
    case 17:
      return "(os/kern) invalid right";
    case 18:
      return "(os/kern) invalid value";
    case 19:
      return "(os/kern) urefs overflow";
    case 20:
      return "(os/kern) invalid capability";
    case 21:
      return "(os/kern) right exists";
    case 22:
      return "(os/kern) invalid host";
    case 23:
      return "(os/kern) memory present";
    case 37:
      return "(os/kern) object terminated";
    case 46:
      return "(os/kern) service not supported";
    case 49:
      return "(os/kern) operation timed out";
    case 53:
      return "(os/kern) denied by security policy";
    case 56:
      return "(os/kern) result not found";
    default:
      return "(os/kern) unknown error code";
  }
}

/* ---- the reason of the last failure ----------------------------------------
 * Each thread keeps the errors line of its last failed call, asked of the
 * daemon (TASKFS_IOC_LAST_REASON) on the descriptor of the failing request
 * right after it failed, so another thread's or process's failure on the
 * same task is never taken for it. Every call starts by forgetting it. A
 * failure libtaskfs finds itself (an argument Mach checks before any I/O)
 * has a reason but no errors line. */

enum { kLineMax = sizeof(((struct taskfs_last_reason *)0)->line) };
static __thread char t_line[kLineMax];   /* the errors line, or "" */
static __thread char t_reason[kLineMax]; /* its REASON, or libtaskfs's own */

static void reason_clear(void) {
  t_line[0] = '\0';
  t_reason[0] = '\0';
}

/* A failure found before any request: why, with no errors line. */
static kern_return_t local_failure(kern_return_t kr, const char *why) {
  t_line[0] = '\0';
  const size_t n = strnlen(why, sizeof t_reason - 1);
  memcpy(t_reason, why, n);
  t_reason[n] = '\0';
  return kr;
}

/* The request just made on fd by this thread failed: takes its errors line
 * (SEQ uid UID OPERATION: KERN_NAME: REASON) and REASON. errno is kept. */
static void reason_fetch(int fd) {
  const int saved = errno;
  struct taskfs_last_reason last;
  memset(&last, 0, sizeof last);
  reason_clear();
  if (ioctl(fd, TASKFS_IOC_LAST_REASON, &last) == 0 && last.seq != 0) {
    last.line[sizeof last.line - 1] = '\0';
    memcpy(t_line, last.line, sizeof t_line);
    /* The last ": KERN_" ends OPERATION, as Python's parser has it. */
    const char *kern = NULL;
    for (const char *p = strstr(t_line, ": KERN_"); p != NULL;
         p = strstr(p + 1, ": KERN_")) {
      kern = p;
    }
    const char *reason = kern != NULL ? strstr(kern + 2, ": ") : NULL;
    if (reason != NULL) snprintf(t_reason, sizeof t_reason, "%s", reason + 2);
  }
  errno = saved;
}

const char *taskfs_last_reason(void) { return t_reason; }

kern_return_t taskfs_last_error_line(char *buf, size_t size) {
  if (buf == NULL || size == 0) return KERN_INVALID_ARGUMENT;
  const size_t len = strlen(t_line);
  const size_t n = len < size ? len : size - 1;
  memcpy(buf, t_line, n);
  buf[n] = '\0';
  return n == len ? KERN_SUCCESS : KERN_NO_SPACE;
}

/* ---- paths -----------------------------------------------------------------
 */

/* dir + "/" + leaf in a new string; NULL if out of memory. */
static char *join(const char *dir, const char *leaf) {
  char *out = NULL;
  return asprintf(&out, "%s/%s", dir, leaf) < 0 ? NULL : out;
}

/* Reads DIR/status, DIR relative to dir_fd (AT_FDCWD: as given), into
 * text; 0 on success, -1 if it cannot. */
int taskfs_read_status(int dir_fd, const char *dir, char text[4096]) {
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/status", dir) >= (int)sizeof path) {
    return -1;
  }
  const int fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n;
  do {
    n = pread(fd, text, 4095, 0);
  } while (n < 0 && errno == EINTR);
  close(fd);
  if (n <= 0) return -1;
  text[n] = '\0';
  return 0;
}

/* The number after key (with its ": ") at the start of a line of text; 0
 * if no line has it. */
uint64_t taskfs_status_number(const char *text, const char *key) {
  const size_t length = strlen(key);
  for (const char *line = text; line != NULL && *line != '\0';) {
    if (strncmp(line, key, length) == 0) {
      return strtoull(line + length, NULL, 10);
    }
    line = strchr(line, '\n');
    if (line != NULL) ++line;
  }
  return 0;
}

/* The "id" of DIR/status, and whether its flavor is xnu; 0 if it cannot be
 * read. */
static uint64_t read_task_id(const char *dir, int *xnu) {
  char text[4096];
  *xnu = 0;
  if (taskfs_read_status(AT_FDCWD, dir, text) != 0) return 0;
  *xnu = strstr(text, "\nflavor: xnu\n") != NULL;
  return taskfs_status_number(text, "id: ");
}

/* The number of key (with its ": ") in DIR/status; 0 if it cannot. */
static uint64_t read_status_number(const char *dir, const char *key) {
  char text[4096];
  if (taskfs_read_status(AT_FDCWD, dir, text) != 0) return 0;
  return taskfs_status_number(text, key);
}

/* ---- the handle table ------------------------------------------------------
 */

static void free_entry(struct task_entry *e) {
  if (e == NULL) return;
  if (e->fd >= 0) close(e->fd);
  free(e->dir);
  free(e->root);
  free(e->name);
  free(e);
}

/* Takes a reference to task's entry. KERN_INVALID_ARGUMENT for
 * mach_task_self(), KERN_INVALID_TASK for anything that is not open. */
static kern_return_t acquire(task_t task, struct task_entry **out) {
  if (task == TASKFS_TASK_SELF) {
    return local_failure(KERN_INVALID_ARGUMENT,
                         "mach_task_self() is not a taskfs task");
  }
  const size_t slot = (size_t)(task & kMaxSlots);
  const unsigned generation = task >> kSlotBits;
  kern_return_t kr = KERN_INVALID_TASK;
  pthread_mutex_lock(&g_mu);
  if (slot >= 1 && slot - 1 < g_capacity && g_slots[slot - 1] != NULL &&
      g_generations[slot - 1] == generation) {
    *out = g_slots[slot - 1];
    (*out)->refs++;
    kr = KERN_SUCCESS;
  }
  pthread_mutex_unlock(&g_mu);
  if (kr != KERN_SUCCESS) local_failure(kr, "not an open task handle");
  return kr;
}

static void release(struct task_entry *e) {
  pthread_mutex_lock(&g_mu);
  const int left = --e->refs;
  pthread_mutex_unlock(&g_mu);
  if (left == 0) free_entry(e);
}

/* Puts e in a free slot and returns its handle; TASK_NULL if none. */
static task_t insert(struct task_entry *e) {
  task_t handle = TASK_NULL;
  pthread_mutex_lock(&g_mu);
  size_t slot = 0;
  while (slot < g_capacity && g_slots[slot] != NULL) ++slot;
  if (slot == g_capacity && g_capacity < kMaxSlots) {
    size_t capacity = g_capacity == 0 ? 16 : g_capacity * 2;
    if (capacity > kMaxSlots) capacity = kMaxSlots;
    struct task_entry **slots = realloc(g_slots, capacity * sizeof *slots);
    if (slots != NULL) g_slots = slots;
    unsigned *generations =
        slots != NULL ? realloc(g_generations, capacity * sizeof *generations)
                      : NULL;
    if (generations != NULL) {
      g_generations = generations;
      for (size_t i = g_capacity; i < capacity; ++i) {
        g_slots[i] = NULL;
        g_generations[i] = 0;
      }
      g_capacity = capacity;
    }
  }
  if (slot < g_capacity) {
    g_slots[slot] = e;
    handle = (task_t)((g_generations[slot] << kSlotBits) | (slot + 1));
  }
  pthread_mutex_unlock(&g_mu);
  return handle;
}

kern_return_t taskfs_task_open(const char *task_dir, task_t *task) {
  reason_clear();
  if (task_dir == NULL || task == NULL || task_dir[0] == '\0') {
    return KERN_INVALID_ARGUMENT;
  }
  struct task_entry *e = calloc(1, sizeof *e);
  if (e == NULL) return KERN_RESOURCE_SHORTAGE;
  e->fd = -1;
  e->refs = 1;
  e->dir = strdup(task_dir);
  if (e->dir == NULL) {
    free_entry(e);
    return KERN_RESOURCE_SHORTAGE;
  }
  size_t len = strlen(e->dir);
  while (len > 1 && e->dir[len - 1] == '/') e->dir[--len] = '\0';
  const char *slash = strrchr(e->dir, '/');
  e->name = strdup(slash != NULL ? slash + 1 : e->dir);
  e->root = slash == NULL     ? strdup(".")
            : slash == e->dir ? strdup("/")
                              : strndup(e->dir, (size_t)(slash - e->dir));
  char *mem = join(e->dir, "mem");
  if (e->name == NULL || e->root == NULL || mem == NULL) {
    free(mem);
    free_entry(e);
    return KERN_RESOURCE_SHORTAGE;
  }
  e->fd = open(mem, O_RDWR | O_CLOEXEC);
  e->writable = e->fd >= 0;
  if (e->fd < 0 && (errno == EACCES || errno == EPERM || errno == EROFS)) {
    e->fd = open(mem, O_RDONLY | O_CLOEXEC);
  }
  const int open_error = errno;
  free(mem);
  if (e->fd < 0) {
    free_entry(e);
    return kern_from_open_errno(open_error);
  }
  struct stat st;
  if (fstat(e->fd, &st) != 0 || st.st_blksize <= 0) {
    free_entry(e);
    return KERN_INVALID_TASK;
  }
  e->page_size = (uint64_t)st.st_blksize;
  e->dev = st.st_dev;
  e->id = read_task_id(e->dir, &e->xnu);
  if (e->id == 0) {
    free_entry(e);
    return KERN_INVALID_TASK;
  }
  *task = insert(e);
  if (*task == TASK_NULL) {
    free_entry(e);
    return KERN_RESOURCE_SHORTAGE;
  }
  return KERN_SUCCESS;
}

kern_return_t taskfs_task_close(task_t task) {
  reason_clear();
  if (task == TASKFS_TASK_SELF) return KERN_INVALID_ARGUMENT;
  const size_t slot = (size_t)(task & kMaxSlots);
  const unsigned generation = task >> kSlotBits;
  struct task_entry *e = NULL;
  int left = -1;
  pthread_mutex_lock(&g_mu);
  if (slot >= 1 && slot - 1 < g_capacity && g_slots[slot - 1] != NULL &&
      g_generations[slot - 1] == generation) {
    e = g_slots[slot - 1];
    g_slots[slot - 1] = NULL;
    g_generations[slot - 1] = generation >= kMaxGeneration ? 0 : generation + 1;
    left = --e->refs;
  }
  pthread_mutex_unlock(&g_mu);
  if (e == NULL) return KERN_INVALID_TASK;
  if (left == 0) free_entry(e);
  return KERN_SUCCESS;
}

task_t mach_task_self(void) { return TASKFS_TASK_SELF; }

/* ---- vm_read's memory ------------------------------------------------------
 * vm_read returns new memory, and memory the kernel has never touched costs a
 * page fault and a zeroed page per page on the first write: fresh 1 MiB
 * buffers halve the throughput of a read loop. So vm_deallocate(
 * mach_task_self()) of a buffer that vm_read handed out (one of the last
 * kRecent of at most kKeepBytes) keeps it, up to kKeep of them, made
 * inaccessible (PROT_NONE, so a use after the deallocation faults as it would
 * after munmap), and the next vm_read of that size takes it back. Anything
 * else is unmapped. g_buffer_mu guards both lists; no system call is made
 * under it.
 *
 * A buffer of kHuge / 2 bytes or more is the start of a mapping of whole
 * kHuge (2 MiB) blocks, aligned and backed by transparent huge pages where
 * the system has them: then taking a kept buffer back and keeping it again
 * change one page-table entry each instead of one per 4 KiB page (2 against
 * 11 us for 1 MiB, measured), and reading into it misses the TLB once. The
 * rest of the mapping past the buffer (its tail) is nobody's but this
 * file's: it goes with the buffer, when the whole buffer has been
 * deallocated, or when the buffer leaves the list of recent ones. */
enum { kKeep = 4, kKeepBytes = 4 << 20, kRecent = 64, kHuge = 2 << 20 };
struct buffer {
  void *addr;
  size_t len;       /* what vm_read handed out */
  size_t map_len;   /* what is mapped from addr: len, or whole kHuge blocks */
  size_t remaining; /* of len, what has not been deallocated yet */
};
static pthread_mutex_t g_buffer_mu = PTHREAD_MUTEX_INITIALIZER;
static struct buffer g_kept[kKeep];     /* deallocated, PROT_NONE */
static struct buffer g_recent[kRecent]; /* handed out by vm_read */
static unsigned g_recent_next;

static size_t mapping_len(size_t len) {
  if (len < kHuge / 2 || len > kKeepBytes) return len;
  return (len + kHuge - 1) / kHuge * kHuge;
}

/* A new mapping of map_len bytes, aligned to kHuge when it is whole kHuge
 * blocks; NULL if there is no room. */
static void *map_new(size_t map_len) {
  if (map_len % kHuge != 0) {
    void *p = mmap(NULL, map_len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
  }
  char *p = mmap(NULL, map_len + kHuge, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  char *aligned =
      (char *)(((uintptr_t)p + kHuge - 1) & ~(uintptr_t)(kHuge - 1));
  if (aligned > p) munmap(p, (size_t)(aligned - p));
  char *end = p + map_len + kHuge;
  if (end > aligned + map_len)
    munmap(aligned + map_len, (size_t)(end - (aligned + map_len)));
  madvise(aligned, map_len, MADV_HUGEPAGE); /* a hint: fine if refused */
  return aligned;
}

/* len bytes of read-write memory of this process, at the start of a mapping
 * of mapping_len(len) bytes; NULL if there is no room. */
static void *buffer_get(size_t len) {
  const size_t map_len = mapping_len(len);
  void *kept = NULL;
  if (len <= kKeepBytes) {
    pthread_mutex_lock(&g_buffer_mu);
    for (int i = 0; i < kKeep && kept == NULL; ++i) {
      if (g_kept[i].addr != NULL && g_kept[i].len == len) {
        kept = g_kept[i].addr;
        g_kept[i].addr = NULL;
      }
    }
    pthread_mutex_unlock(&g_buffer_mu);
  }
  if (kept != NULL) {
    if (mprotect(kept, map_len, PROT_READ | PROT_WRITE) == 0) return kept;
    munmap(kept, map_len);
  }
  return map_new(map_len);
}

/* Unmaps a buffer buffer_get made that vm_read is not handing out. */
static void buffer_drop(void *addr, size_t len) {
  munmap(addr, mapping_len(len));
}

static void buffer_handed_out(void *addr, size_t len) {
  if (len > kKeepBytes) return;
  pthread_mutex_lock(&g_buffer_mu);
  struct buffer *slot = &g_recent[g_recent_next++ % kRecent];
  const struct buffer gone = *slot;
  *slot = (struct buffer){addr, len, mapping_len(len), len};
  pthread_mutex_unlock(&g_buffer_mu);
  /* A buffer no longer followed keeps only what vm_read handed out. */
  if (gone.addr != NULL && gone.map_len > gone.len) {
    munmap((char *)gone.addr + gone.len, gone.map_len - gone.len);
  }
}

/* Frees [addr, addr + len) of vm_read's memory: keeps it for reuse if it is
 * a whole buffer vm_read handed out and there is room (then it is
 * PROT_NONE), else unmaps it, and a buffer's tail with the last of it.
 * Returns 0 or an errno. */
static int buffer_free(void *addr, size_t len) {
  struct buffer found = {0};
  int whole = 0;
  void *tail = NULL;
  size_t tail_len = 0;
  pthread_mutex_lock(&g_buffer_mu);
  /* The buffer that starts at addr first: an entry of a buffer freed in
   * part may still span an address the system has since handed out again. */
  int at = -1;
  for (int i = 0; i < kRecent && at < 0; ++i) {
    if (g_recent[i].addr == addr) at = i;
  }
  for (int i = 0; i < kRecent && at < 0; ++i) {
    const struct buffer *b = &g_recent[i];
    if (b->addr != NULL && (char *)addr > (char *)b->addr &&
        (char *)addr < (char *)b->addr + b->len) {
      at = i;
    }
  }
  if (at >= 0) {
    struct buffer *b = &g_recent[at];
    found = *b;
    whole = addr == b->addr && len == b->len && b->remaining == b->len;
    const size_t in = (size_t)((char *)b->addr + b->len - (char *)addr);
    const size_t freed = len < in ? len : in;
    b->remaining -= freed < b->remaining ? freed : b->remaining;
    if (whole || b->remaining == 0) {
      if (!whole && b->map_len > b->len) {
        tail = (char *)b->addr + b->len;
        tail_len = b->map_len - b->len;
      }
      b->addr = NULL;
    }
  }
  pthread_mutex_unlock(&g_buffer_mu);
  if (whole && mprotect(addr, found.map_len, PROT_NONE) == 0) {
    int kept = 0;
    pthread_mutex_lock(&g_buffer_mu);
    for (int i = 0; i < kKeep && !kept; ++i) {
      if (g_kept[i].addr == NULL) {
        g_kept[i] = found;
        kept = 1;
      }
    }
    pthread_mutex_unlock(&g_buffer_mu);
    if (kept) return 0;
  }
  if (whole) len = found.map_len; /* the buffer and its tail */
  if (tail != NULL) munmap(tail, tail_len);
  return munmap(addr, len) == 0 ? 0 : errno;
}

/* ---- I/O helpers -----------------------------------------------------------
 */

/* The descriptor for a call that changes memory: the handle's own if it is
 * read-write; otherwise mem opened read-write for this call (*own, to be
 * closed), so a refusal is the kernel's EACCES. */
static kern_return_t write_fd(const struct task_entry *e, int *fd, int *own) {
  *own = -1;
  if (e->writable) {
    *fd = e->fd;
    return KERN_SUCCESS;
  }
  char *mem = join(e->dir, "mem");
  if (mem == NULL) return KERN_RESOURCE_SHORTAGE;
  *own = open(mem, O_RDWR | O_CLOEXEC);
  const int error = errno;
  free(mem);
  if (*own < 0) return kern_from_open_errno(error);
  *fd = *own;
  return KERN_SUCCESS;
}

/* One ioctl on task's mem. Not retried on EINTR: a changing ioctl may have
 * been done. */
static kern_return_t mem_ioctl(task_t task, unsigned long command, void *arg,
                               int changes) {
  struct task_entry *e;
  kern_return_t kr = acquire(task, &e);
  if (kr != KERN_SUCCESS) return kr;
  int fd = e->fd, own = -1;
  if (changes) kr = write_fd(e, &fd, &own);
  if (kr == KERN_SUCCESS) {
    if (ioctl(fd, command, arg) != 0) {
      kr = kern_from_errno(errno);
      reason_fetch(fd);
    }
  }
  if (own >= 0) close(own);
  release(e);
  return kr;
}

/* Writes one command line (with its newline) to the task's ctl. */
static kern_return_t write_ctl(const struct task_entry *e, const char *line) {
  char *ctl = join(e->dir, "ctl");
  if (ctl == NULL) return KERN_RESOURCE_SHORTAGE;
  const int fd = open(ctl, O_WRONLY | O_CLOEXEC);
  const int open_error = errno;
  free(ctl);
  if (fd < 0) return kern_from_open_errno(open_error);
  const size_t len = strlen(line);
  const ssize_t n = write(fd, line, len);
  kern_return_t kr = n == (ssize_t)len ? KERN_SUCCESS
                     : n < 0           ? kern_from_errno(errno)
                                       : KERN_FAILURE;
  if (n < 0) reason_fetch(fd);
  if (close(fd) != 0 && kr == KERN_SUCCESS) kr = kern_from_errno(errno);
  return kr;
}

/* Mach's bounds rule for a file offset: a range beyond what off_t holds is
 * outside every taskfs address space (at most 2^62 bytes). */
static int beyond_off_t(vm_address_t address, vm_size_t size) {
  return (uint64_t)address > (uint64_t)INT64_MAX ||
         (uint64_t)size > (uint64_t)INT64_MAX - (uint64_t)address;
}

/* ---- Mach's calls ----------------------------------------------------------
 */

kern_return_t vm_allocate(task_t target_task, vm_address_t *address,
                          vm_size_t size, boolean_t anywhere) {
  reason_clear();
  if (address == NULL) return KERN_INVALID_ARGUMENT;
  struct taskfs_vm_allocate a;
  memset(&a, 0, sizeof a);
  a.address = *address;
  a.size = size;
  a.flags = anywhere ? TASKFS_VM_ALLOCATE_ANYWHERE : 0;
  const kern_return_t kr =
      mem_ioctl(target_task, TASKFS_IOC_VM_ALLOCATE, &a, 1);
  if (kr == KERN_SUCCESS) *address = (vm_address_t)a.address;
  return kr;
}

kern_return_t vm_deallocate(task_t target_task, vm_address_t address,
                            vm_size_t size) {
  reason_clear();
  if (target_task == TASKFS_TASK_SELF) {
    /* vm_read's memory: whole pages of this process. */
    if (size == 0) return KERN_SUCCESS;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t start = address & ~(page - 1);
    if (size > UINTPTR_MAX - address || address + size > UINTPTR_MAX - page) {
      return KERN_INVALID_ARGUMENT;
    }
    const uintptr_t end = (address + size + page - 1) & ~(page - 1);
    const int error = buffer_free((void *)start, end - start);
    return error == 0 ? KERN_SUCCESS : kern_from_errno(error);
  }
  struct taskfs_vm_deallocate d = {address, size};
  return mem_ioctl(target_task, TASKFS_IOC_VM_DEALLOCATE, &d, 1);
}

kern_return_t vm_protect(task_t target_task, vm_address_t address,
                         vm_size_t size, boolean_t set_maximum,
                         vm_prot_t new_protection) {
  reason_clear();
  struct taskfs_vm_protect p;
  memset(&p, 0, sizeof p);
  p.address = address;
  p.size = size;
  p.set_maximum = set_maximum ? 1u : 0u;
  p.prot = (uint32_t)new_protection;
  return mem_ioctl(target_task, TASKFS_IOC_VM_PROTECT, &p, 1);
}

kern_return_t vm_inherit(task_t target_task, vm_address_t address,
                         vm_size_t size, vm_inherit_t new_inheritance) {
  reason_clear();
  struct taskfs_vm_inherit i;
  memset(&i, 0, sizeof i);
  i.address = address;
  i.size = size;
  i.inheritance = new_inheritance;
  return mem_ioctl(target_task, TASKFS_IOC_VM_INHERIT, &i, 1);
}

kern_return_t vm_read(task_t target_task, vm_address_t address, vm_size_t size,
                      vm_offset_t *data, mach_msg_type_number_t *data_count) {
  reason_clear();
  if (data == NULL || data_count == NULL) return KERN_INVALID_ARGUMENT;
  struct task_entry *e;
  kern_return_t kr = acquire(target_task, &e);
  if (kr != KERN_SUCCESS) return kr;
  /* On an XNU mount any byte range; a size over UINT_MAX does not fit the
   * count, as in XNU. */
  if ((!e->xnu && (address % e->page_size != 0 || size % e->page_size != 0)) ||
      size > UINT_MAX) {
    kr = local_failure(KERN_INVALID_ARGUMENT,
                       "address or size is not a page multiple, or size "
                       "is 4 GiB or more");
  } else if (size == 0) {
    *data = 0; /* passed the argument checks: succeeds, does nothing */
    *data_count = 0;
  } else if (beyond_off_t(address, size)) {
    kr = KERN_INVALID_ADDRESS;
  } else {
    char *buf = buffer_get(size);
    if (buf == NULL) {
      kr = KERN_NO_SPACE;
    } else {
      /* The daemon answers in requests of at most 512 KiB: a later one that
       * fails ends the pread short, and the next pread reports it. */
      size_t done = 0;
      while (done < size && kr == KERN_SUCCESS) {
        const ssize_t n =
            pread(e->fd, buf + done, size - done, (off_t)(address + done));
        if (n > 0) {
          done += (size_t)n;
        } else if (n == 0) {
          /* end of the address space */
          kr = local_failure(KERN_INVALID_ADDRESS,
                             "past the end of the address space");
        } else if (errno != EINTR) {
          kr = kern_from_errno(errno);
          reason_fetch(e->fd);
        }
      }
      if (kr == KERN_SUCCESS) {
        buffer_handed_out(buf, size);
        *data = (vm_offset_t)buf;
        *data_count = (mach_msg_type_number_t)size;
      } else {
        buffer_drop(buf, size);
      }
    }
  }
  release(e);
  return kr;
}

kern_return_t vm_write(task_t target_task, vm_address_t address,
                       vm_offset_t data, mach_msg_type_number_t data_count) {
  reason_clear();
  /* Unaligned data is judged first, before the task (classic Mach); on an
   * XNU mount any data, address and size are fine, as in XNU. */
  const int unaligned_data = data % (vm_offset_t)sysconf(_SC_PAGESIZE) != 0;
  struct task_entry *e;
  kern_return_t kr = acquire(target_task, &e);
  if (kr != KERN_SUCCESS) {
    return unaligned_data ? local_failure(KERN_INVALID_ARGUMENT,
                                          "data is not page-aligned")
                          : kr;
  }
  int fd = e->fd, own = -1;
  if (!e->xnu && (unaligned_data || address % e->page_size != 0 ||
                  data_count % e->page_size != 0)) {
    kr = local_failure(KERN_INVALID_ARGUMENT,
                       "data, address or size is not a page multiple");
  } else if (data_count != 0 && beyond_off_t(address, data_count)) {
    kr = KERN_INVALID_ADDRESS;
  } else if (data_count != 0) {
    kr = write_fd(e, &fd, &own);
  }
  const char *buf = (const char *)data;
  size_t done = 0;
  while (kr == KERN_SUCCESS && done < data_count) {
    const ssize_t n =
        pwrite(fd, buf + done, data_count - done, (off_t)(address + done));
    if (n > 0) {
      done += (size_t)n;
    } else if (n == 0) {
      kr = KERN_FAILURE;
    } else if (errno != EINTR) {
      kr = kern_from_errno(errno);
      reason_fetch(fd);
    }
  }
  if (own >= 0) close(own);
  release(e);
  return kr;
}

kern_return_t vm_copy(task_t target_task, vm_address_t source_address,
                      vm_size_t count, vm_address_t dest_address) {
  reason_clear();
  struct taskfs_vm_copy c = {source_address, count, dest_address};
  return mem_ioctl(target_task, TASKFS_IOC_VM_COPY, &c, 1);
}

kern_return_t vm_region(task_t target_task, vm_address_t *address,
                        vm_size_t *size, vm_prot_t *protection,
                        vm_prot_t *max_protection, vm_inherit_t *inheritance,
                        boolean_t *shared, mach_port_t *object_name,
                        vm_offset_t *offset) {
  reason_clear();
  if (address == NULL || size == NULL || protection == NULL ||
      max_protection == NULL || inheritance == NULL || shared == NULL ||
      object_name == NULL || offset == NULL) {
    return KERN_INVALID_ARGUMENT;
  }
  struct taskfs_vm_region r;
  memset(&r, 0, sizeof r);
  r.address = *address;
  const kern_return_t kr = mem_ioctl(target_task, TASKFS_IOC_VM_REGION, &r, 0);
  if (kr != KERN_SUCCESS) return kr;
  *address = (vm_address_t)r.address;
  *size = (vm_size_t)r.size;
  *protection = (vm_prot_t)r.prot;
  *max_protection = (vm_prot_t)r.max_prot;
  *inheritance = r.inheritance;
  *shared = r.inheritance == VM_INHERIT_SHARE;
  *object_name = MACH_PORT_NULL;
  *offset = 0;
  return KERN_SUCCESS;
}

/* The id of src, by which an ioctl on dst names it. An id means something
 * only on dst's mount: a source on another mount would be whatever task has
 * that id there, so it is KERN_INVALID_TASK. */
static kern_return_t source_id(task_t dst, task_t src, uint64_t *id) {
  struct task_entry *e;
  kern_return_t kr = acquire(src, &e);
  if (kr != KERN_SUCCESS) return kr;
  *id = e->id;
  const dev_t src_dev = e->dev;
  release(e);
  kr = acquire(dst, &e);
  if (kr != KERN_SUCCESS) return kr;
  const int same_mount = e->dev == src_dev;
  release(e);
  if (!same_mount) {
    return local_failure(KERN_INVALID_TASK,
                         "the source task is on another mount");
  }
  return KERN_SUCCESS;
}

kern_return_t vm_map_copy(task_t dst_task, task_t src_task,
                          vm_address_t dst_addr, vm_size_t len,
                          vm_address_t src_addr, boolean_t dst_alloc,
                          boolean_t src_destroy) {
  reason_clear();
  uint64_t src_id;
  const kern_return_t kr = source_id(dst_task, src_task, &src_id);
  if (kr != KERN_SUCCESS) return kr;
  struct taskfs_vm_map_copy m;
  memset(&m, 0, sizeof m);
  m.src_task_id = src_id;
  m.src = src_addr;
  m.size = len;
  m.dst = dst_addr;
  m.flags = (dst_alloc ? TASKFS_VM_MAP_COPY_DST_ALLOC : 0u) |
            (src_destroy ? TASKFS_VM_MAP_COPY_SRC_DESTROY : 0u);
  return mem_ioctl(dst_task, TASKFS_IOC_VM_MAP_COPY, &m, 1);
}

kern_return_t taskfs_vm_remap(task_t target, vm_address_t *target_address,
                              vm_size_t size, boolean_t anywhere,
                              task_t src_task, vm_address_t src_address,
                              boolean_t copy, vm_prot_t *cur_protection,
                              vm_prot_t *max_protection,
                              vm_inherit_t inheritance) {
  reason_clear();
  if (target_address == NULL || cur_protection == NULL ||
      max_protection == NULL) {
    return local_failure(KERN_INVALID_ARGUMENT, "a result pointer is NULL");
  }
  uint64_t src_id;
  kern_return_t kr = source_id(target, src_task, &src_id);
  if (kr != KERN_SUCCESS) return kr;
  struct taskfs_vm_remap r;
  memset(&r, 0, sizeof r);
  r.src_task_id = src_id;
  r.src_address = src_address;
  r.size = size;
  r.target_address = *target_address;
  r.flags = (anywhere ? TASKFS_VM_REMAP_ANYWHERE : 0u) |
            (copy ? TASKFS_VM_REMAP_COPY : 0u);
  r.inheritance = inheritance;
  kr = mem_ioctl(target, TASKFS_IOC_VM_REMAP, &r, 1);
  if (kr != KERN_SUCCESS) return kr;
  *target_address = (vm_address_t)r.target_address;
  *cur_protection = (vm_prot_t)r.cur_protection;
  *max_protection = (vm_prot_t)r.max_protection;
  return KERN_SUCCESS;
}

/* mkdir ROOT/NAME, or `fork NAME` in parent's ctl. */
static kern_return_t make_task(const struct task_entry *parent,
                               const char *root, const char *name) {
  if (parent != NULL) {
    char *line = NULL;
    if (asprintf(&line, "fork %s\n", name) < 0) return KERN_RESOURCE_SHORTAGE;
    const kern_return_t kr = write_ctl(parent, line);
    free(line);
    return kr;
  }
  char *dir = join(root, name);
  if (dir == NULL) return KERN_RESOURCE_SHORTAGE;
  const int r = mkdir(dir, 0700);
  const int error = errno;
  free(dir);
  if (r == 0) return KERN_SUCCESS;
  /* No such mountpoint: the argument is wrong, there is no task to speak of. */
  if (error == ENOENT || error == ENOTDIR) return KERN_INVALID_ARGUMENT;
  return kern_from_errno(error);
}

/* Opens ROOT/NAME, a task just made. */
static kern_return_t open_new(const char *root, const char *name,
                              task_t *task) {
  char *dir = join(root, name);
  if (dir == NULL) return KERN_RESOURCE_SHORTAGE;
  const kern_return_t kr = taskfs_task_open(dir, task);
  free(dir);
  return kr;
}

/* A name the daemon could take (docs/reference.md §4), checked before the child
 * is made so that a bad one is KERN_INVALID_ARGUMENT whatever the path holds.
 */
static int valid_name(const char *name) {
  return taskfs_valid_task_name(name, strlen(name));
}

kern_return_t taskfs_task_create(const char *mountpoint, const char *name,
                                 task_t *task) {
  reason_clear();
  if (mountpoint == NULL || name == NULL || task == NULL || !valid_name(name)) {
    return KERN_INVALID_ARGUMENT;
  }
  const kern_return_t kr = make_task(NULL, mountpoint, name);
  return kr == KERN_SUCCESS ? open_new(mountpoint, name, task) : kr;
}

kern_return_t taskfs_task_fork(task_t parent, const char *name, task_t *child) {
  reason_clear();
  if (name == NULL || child == NULL) return KERN_INVALID_ARGUMENT;
  struct task_entry *e;
  kern_return_t kr = acquire(parent, &e);
  if (kr != KERN_SUCCESS) return kr;
  kr = valid_name(name) ? make_task(e, e->root, name) : KERN_INVALID_ARGUMENT;
  if (kr == KERN_SUCCESS) kr = open_new(e->root, name, child);
  release(e);
  return kr;
}

kern_return_t task_create(task_t parent_task, boolean_t inherit_memory,
                          task_t *child_task) {
  reason_clear();
  if (child_task == NULL) return KERN_INVALID_ARGUMENT;
  struct task_entry *e;
  kern_return_t kr = acquire(parent_task, &e);
  if (kr != KERN_SUCCESS) return kr;
  /* PARENT.N for the lowest N that is free; a name taken meanwhile by
   * someone else is EEXIST, and the next N is tried. */
  char name[TASKFS_TASK_NAME_MAX + 24];
  kr = KERN_NAME_EXISTS;
  for (unsigned long n = 1; kr == KERN_NAME_EXISTS && n <= 1000000; ++n) {
    snprintf(name, sizeof name, "%s.%lu", e->name, n);
    if (!valid_name(name)) {
      kr = KERN_INVALID_ARGUMENT; /* the parent's name is too long for more */
      break;
    }
    kr = make_task(inherit_memory ? e : NULL, e->root, name);
  }
  if (kr == KERN_SUCCESS) kr = open_new(e->root, name, child_task);
  release(e);
  return kr;
}

kern_return_t task_terminate(task_t target_task) {
  reason_clear();
  struct task_entry *e;
  kern_return_t kr = acquire(target_task, &e);
  if (kr != KERN_SUCCESS) return kr;
  /* The directory must still be this task, not a new one of the same name. */
  int xnu = 0;
  if (read_task_id(e->dir, &xnu) != e->id) {
    kr = KERN_INVALID_TASK;
  } else if (rmdir(e->dir) != 0) {
    kr = kern_from_open_errno(errno);
  }
  release(e);
  return kr;
}

/* ---- restore from a core file ----------------------------------------------
 */

/* Writes segment s of the core at fd into task, each run of pages holding
 * something but zeros in one vm_write. */
static kern_return_t restore_bytes(task_t task, int fd, uint64_t page,
                                   const struct taskfs_core_segment *s) {
  enum { kPiece = 1 << 20 };
  char *piece = mmap(NULL, kPiece, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (piece == MAP_FAILED) return KERN_RESOURCE_SHORTAGE;
  kern_return_t kr = KERN_SUCCESS;
  for (uint64_t done = 0; kr == KERN_SUCCESS && done < s->filesz;) {
    const uint64_t n = s->filesz - done < kPiece ? s->filesz - done : kPiece;
    memset(piece, 0, kPiece);
    for (uint64_t got = 0; kr == KERN_SUCCESS && got < n;) {
      const ssize_t r =
          pread(fd, piece + got, n - got, (off_t)(s->offset + done + got));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0)
        kr = KERN_FAILURE;
      else
        got += (uint64_t)r;
    }
    const uint64_t padded = (n + page - 1) / page * page;
    uint64_t run = padded; /* start of the current run, or none */
    for (uint64_t at = 0; kr == KERN_SUCCESS && at <= padded; at += page) {
      int data = 0;
      for (uint64_t i = at; at < padded && i < at + page && !data; ++i) {
        data = piece[i] != 0;
      }
      if (data && run == padded) run = at;
      if (!data && run != padded) {
        kr = vm_write(task, s->address + done + run, (vm_offset_t)(piece + run),
                      (mach_msg_type_number_t)(at - run));
        run = padded;
      }
    }
    done += n;
  }
  munmap(piece, kPiece);
  return kr;
}

kern_return_t taskfs_task_restore(task_t task, const char *core_path) {
  reason_clear();
  if (core_path == NULL)
    return local_failure(KERN_INVALID_ARGUMENT, "core_path is NULL");
  struct task_entry *e;
  kern_return_t kr = acquire(task, &e);
  if (kr != KERN_SUCCESS) return kr;
  const uint64_t page = e->page_size;
  const uint64_t bits = read_status_number(e->dir, "address_bits: ");
  release(e);
  if (bits == 0 || bits > 63) return KERN_INVALID_TASK;
  const uint64_t limit = (uint64_t)1 << bits;
  char error[512];
  const int fd = open(core_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(error, sizeof error, "%s: %s", core_path, strerror(errno));
    return local_failure(KERN_INVALID_ARGUMENT, error);
  }
  struct taskfs_core_segment *segs = NULL;
  size_t count = 0;
  if (taskfs_core_parse(fd, &segs, &count, error, sizeof error) != 0) {
    const kern_return_t code =
        errno == ENOMEM ? KERN_RESOURCE_SHORTAGE : KERN_INVALID_ARGUMENT;
    char why[kLineMax];
    snprintf(why, sizeof why, "%s: %s", core_path, error);
    close(fd);
    return local_failure(code, why);
  }
  /* Check everything before the first change: alignment, then the regions
   * in the way. Segments outside the address space are skipped. */
  size_t wanted = 0;
  for (size_t i = 0; i < count; ++i) {
    const struct taskfs_core_segment *s = &segs[i];
    if (s->memsz == 0 || s->address >= limit || s->memsz > limit - s->address)
      continue;
    if (s->address % page != 0 || s->memsz % page != 0) {
      kr = KERN_INVALID_ARGUMENT;
      break;
    }
    vm_address_t at = s->address;
    vm_size_t size;
    vm_prot_t prot, max_prot;
    vm_inherit_t inheritance;
    boolean_t shared;
    mach_port_t object;
    vm_offset_t offset;
    const kern_return_t found =
        vm_region(task, &at, &size, &prot, &max_prot, &inheritance, &shared,
                  &object, &offset);
    if (found == KERN_SUCCESS && at < s->address + s->memsz) {
      kr = KERN_NO_SPACE;
      break;
    }
    if (found != KERN_SUCCESS && found != KERN_NO_SPACE) {
      kr = found;
      break;
    }
    segs[wanted++] = *s;
  }
  size_t made = 0;
  for (size_t i = 0; kr == KERN_SUCCESS && i < wanted; ++i) {
    const struct taskfs_core_segment *s = &segs[i];
    vm_address_t at = s->address;
    kr = vm_allocate(task, &at, s->memsz, 0);
    if (kr != KERN_SUCCESS) break;
    ++made;
    kr = restore_bytes(task, fd, page, s);
    if (kr == KERN_SUCCESS)
      kr = vm_protect(task, s->address, s->memsz, 1, (vm_prot_t)s->max_prot);
    if (kr == KERN_SUCCESS)
      kr = vm_protect(task, s->address, s->memsz, 0, (vm_prot_t)s->prot);
    if (kr == KERN_SUCCESS)
      kr = vm_inherit(task, s->address, s->memsz, (vm_inherit_t)s->inheritance);
  }
  if (kr != KERN_SUCCESS) {
    for (size_t i = 0; i < made; ++i) {
      (void)vm_deallocate(task, segs[i].address, segs[i].memsz);
    }
  }
  free(segs);
  close(fd);
  return kr;
}

/* ---- for the macOS interface (internal.h) ----------------------------------
 */

kern_return_t taskfs_with_task(
    task_t task, int changes,
    kern_return_t (*fn)(const struct taskfs_task_view *view, void *arg),
    void *arg) {
  struct task_entry *e;
  kern_return_t kr = acquire(task, &e);
  if (kr != KERN_SUCCESS) return kr;
  int fd = e->fd, own = -1;
  if (changes) kr = write_fd(e, &fd, &own);
  if (kr == KERN_SUCCESS) {
    const struct taskfs_task_view view = {fd, e->dir, e->page_size, e->id,
                                          e->dev};
    kr = fn(&view, arg);
  }
  if (own >= 0) close(own);
  release(e);
  return kr;
}

kern_return_t taskfs_kern_from_errno(int error) {
  return kern_from_errno(error);
}
