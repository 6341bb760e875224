/*
 * libtaskfs's macOS interface (<mach/mach.h> of include/taskfs-mach,
 * docs/reference.md §9): XNU's mach_vm_* calls, task_for_pid and their
 * company, on the handles of the classic interface (mach.c). Calls whose
 * signature is the classic one's go through it; the rest reach a handle's
 * open mem through taskfs_with_task() and make their own system calls, so
 * that every rule about arguments is the daemon's (classic or XNU flavor):
 * the library refuses nothing the daemon would take.
 */
#define _GNU_SOURCE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mach/mach.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "taskfs/ioctl.h"

_Static_assert(sizeof(mach_vm_address_t) == sizeof(vm_address_t),
               "the macOS interface needs a 64-bit system");

/* ---- helpers ---------------------------------------------------------------
 */

/* A range beyond what off_t holds lies outside every taskfs address space. */
static int beyond_off_t(uint64_t address, uint64_t size) {
  return address > (uint64_t)INT64_MAX || size > (uint64_t)INT64_MAX - address;
}

/* The errno of a failed system call on mem as a kern_return_t. */
static kern_return_t kern_errno(void) { return taskfs_kern_from_errno(errno); }

/* A copy of the view (its page size, id, device), for calls that need them
 * before any I/O; its fd and dir are not to be used after. */
static kern_return_t get_view(const struct taskfs_task_view *view, void *arg) {
  *(struct taskfs_task_view *)arg = *view;
  return KERN_SUCCESS;
}

/* ---- reading and writing -------------------------------------------------
 */

struct transfer {
  uint64_t address;
  char *buf;
  uint64_t size;
};

/* pread of the whole transfer; a read the daemon ends early (its later
 * request failed) is continued, so the next pread reports the failure. */
static kern_return_t read_all(const struct taskfs_task_view *view, void *arg) {
  const struct transfer *t = arg;
  uint64_t done = 0;
  while (done < t->size) {
    const ssize_t n = pread(view->fd, t->buf + done, t->size - done,
                            (off_t)(t->address + done));
    if (n > 0) {
      done += (uint64_t)n;
    } else if (n == 0) {
      return KERN_INVALID_ADDRESS; /* the end of the address space */
    } else if (errno != EINTR) {
      return kern_errno();
    }
  }
  return KERN_SUCCESS;
}

static kern_return_t write_all(const struct taskfs_task_view *view, void *arg) {
  const struct transfer *t = arg;
  uint64_t done = 0;
  while (done < t->size) {
    const ssize_t n = pwrite(view->fd, t->buf + done, t->size - done,
                             (off_t)(t->address + done));
    if (n > 0) {
      done += (uint64_t)n;
    } else if (n == 0) {
      return KERN_FAILURE;
    } else if (errno != EINTR) {
      return kern_errno();
    }
  }
  return KERN_SUCCESS;
}

kern_return_t mach_vm_read_overwrite(vm_map_read_t target_task,
                                     mach_vm_address_t address,
                                     mach_vm_size_t size,
                                     mach_vm_address_t data,
                                     mach_vm_size_t *outsize) {
  if (outsize == NULL) return KERN_INVALID_ARGUMENT;
  if (size != 0 && beyond_off_t(address, size)) return KERN_INVALID_ADDRESS;
  struct transfer t = {address, (char *)(uintptr_t)data, size};
  const kern_return_t kr = taskfs_with_task(target_task, 0, read_all, &t);
  if (kr == KERN_SUCCESS) *outsize = size;
  return kr;
}

kern_return_t vm_read_overwrite(vm_map_read_t target_task, vm_address_t address,
                                vm_size_t size, vm_address_t data,
                                vm_size_t *outsize) {
  mach_vm_size_t out = 0;
  const kern_return_t kr = mach_vm_read_overwrite(
      target_task, address, size, data, outsize == NULL ? NULL : &out);
  if (kr == KERN_SUCCESS) *outsize = (vm_size_t)out;
  return kr;
}

kern_return_t mach_vm_read(vm_map_read_t target_task, mach_vm_address_t address,
                           mach_vm_size_t size, vm_offset_t *data,
                           mach_msg_type_number_t *dataCnt) {
  if (data == NULL || dataCnt == NULL) return KERN_INVALID_ARGUMENT;
  if (size > UINT_MAX) return KERN_INVALID_ARGUMENT;
  struct taskfs_task_view v;
  kern_return_t kr = taskfs_with_task(target_task, 0, get_view, &v);
  if (kr != KERN_SUCCESS) return kr;
  const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
  if (size == 0 || (address % page == 0 && size % page == 0 &&
                    address % v.page_size == 0 && size % v.page_size == 0)) {
    /* Whole pages, or none (the classic call applies the flavor's rule to
     * an empty read, which reaches no daemon): the classic call, with its
     * reuse of buffers. */
    return vm_read(target_task, (vm_address_t)address, (vm_size_t)size, data,
                   dataCnt);
  }
  if (beyond_off_t(address, size)) return KERN_INVALID_ADDRESS;
  /* As XNU's: the data keeps its offset within a page. */
  const uint64_t offset = address % page;
  const size_t map_len = (size_t)((offset + size + page - 1) / page * page);
  char *map = mmap(NULL, map_len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED) return KERN_NO_SPACE;
  struct transfer t = {address, map + offset, size};
  kr = taskfs_with_task(target_task, 0, read_all, &t);
  if (kr != KERN_SUCCESS) {
    munmap(map, map_len);
    return kr;
  }
  *data = (vm_offset_t)(map + offset);
  *dataCnt = (mach_msg_type_number_t)size;
  return KERN_SUCCESS;
}

kern_return_t mach_vm_write(vm_map_t target_task, mach_vm_address_t address,
                            vm_offset_t data, mach_msg_type_number_t dataCnt) {
  if (dataCnt != 0 && beyond_off_t(address, dataCnt)) {
    return KERN_INVALID_ADDRESS;
  }
  struct transfer t = {address, (char *)data, dataCnt};
  return taskfs_with_task(target_task, dataCnt != 0, write_all, &t);
}

/* ---- vm_read_list ----------------------------------------------------------
 * As XNU's mach_vm_read_list: each entry with a size is read into new memory
 * of this process (the data keeps its offset within a page, as
 * mach_vm_read's does), whose address replaces the entry's; an entry that
 * fails, and an empty one, become address 0 and size 0, and the list goes
 * on. The call returns the result of the last entry with a size, KERN_SUCCESS
 * if none has one. The entries go to the daemon TASKFS_IOC_VM_READ_LIST at a
 * time, as many in one ioctl as fit TASKFS_READ_LIST_MAX entries and
 * TASKFS_READ_LIST_DATA bytes; an entry larger than that on its own is read
 * by pread, as mach_vm_read reads. */

_Static_assert(sizeof(struct vm_read_entry) ==
                       sizeof(struct mach_vm_read_entry) &&
                   offsetof(struct vm_read_entry, size) ==
                       offsetof(struct mach_vm_read_entry, size),
               "vm_read_entry and mach_vm_read_entry share a layout");

struct read_list {
  struct mach_vm_read_entry *list;
  natural_t count;
  struct taskfs_vm_read_list *batch; /* the ioctl's argument */
  kern_return_t result;
};

/* New memory holding size bytes at address's offset within a page (freed
 * by mach_vm_deallocate(mach_task_self(), data, size)); NULL if none. */
static char *read_list_buffer(uint64_t address, uint64_t size) {
  const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
  const uint64_t offset = address % page;
  if (size > SIZE_MAX - offset - page) return NULL;
  const size_t map_len = (size_t)((offset + size + page - 1) / page * page);
  char *map = mmap(NULL, map_len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return map == MAP_FAILED ? NULL : map + offset;
}

static void read_list_free(char *data, uint64_t size) {
  const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  const uintptr_t start = (uintptr_t)data / page * page;
  const uintptr_t end = ((uintptr_t)data + size + page - 1) / page * page;
  munmap((void *)start, end - start);
}

/* Why there is no memory for entry e: a range past the end of the task's
 * address space (mem's size) is KERN_INVALID_ADDRESS, as XNU's copyin
 * finds before any memory is asked for; any other, KERN_NO_SPACE. */
static kern_return_t read_list_no_memory(int fd,
                                         const struct mach_vm_read_entry *e) {
  struct stat st;
  if (fstat(fd, &st) == 0 && st.st_size >= 0) {
    const uint64_t end = (uint64_t)st.st_size;
    if (e->size > end || e->address > end - e->size) {
      return KERN_INVALID_ADDRESS;
    }
  }
  return KERN_NO_SPACE;
}

/* Entry e's result: on success its data (copied from, or NULL: read by
 * pread on fd) in new memory at e->address; else address and size 0. */
static kern_return_t read_list_entry(int fd, struct mach_vm_read_entry *e,
                                     kern_return_t kr, const uint8_t *from) {
  char *data = NULL;
  if (kr == KERN_SUCCESS) {
    data = read_list_buffer(e->address, e->size);
    if (data == NULL) kr = read_list_no_memory(fd, e);
  }
  if (kr == KERN_SUCCESS) {
    if (from != NULL) {
      memcpy(data, from, e->size);
    } else {
      const struct taskfs_task_view view = {fd, NULL, 0, 0, 0};
      struct transfer t = {e->address, data, e->size};
      kr = read_all(&view, &t);
    }
  }
  if (kr == KERN_SUCCESS) {
    e->address = (mach_vm_address_t)(uintptr_t)data;
    return kr;
  }
  if (data != NULL) read_list_free(data, e->size);
  e->address = 0;
  e->size = 0;
  return kr;
}

static kern_return_t read_list_run(const struct taskfs_task_view *view,
                                   void *arg) {
  struct read_list *call = arg;
  struct taskfs_vm_read_list *l = call->batch;
  natural_t i = 0;
  while (i < call->count) {
    struct mach_vm_read_entry *e = &call->list[i];
    if (e->size == 0) {
      e->address = 0;
      ++i;
      continue;
    }
    if (e->size > TASKFS_READ_LIST_DATA) { /* on its own */
      call->result =
          beyond_off_t(e->address, e->size)
              ? read_list_entry(view->fd, e, KERN_INVALID_ADDRESS, NULL)
              : read_list_entry(view->fd, e, KERN_SUCCESS, NULL);
      ++i;
      continue;
    }
    /* One ioctl: the entries from i that fit, empty ones passed over. */
    natural_t index[TASKFS_READ_LIST_MAX];
    uint32_t n = 0;
    uint64_t total = 0;
    natural_t j = i;
    memset(l, 0, offsetof(struct taskfs_vm_read_list, data));
    for (; j < call->count && n < TASKFS_READ_LIST_MAX; ++j) {
      struct mach_vm_read_entry *next = &call->list[j];
      if (next->size == 0) {
        next->address = 0;
        continue;
      }
      if (next->size > TASKFS_READ_LIST_DATA - total) break;
      l->entries[n].address = next->address;
      l->entries[n].size = next->size;
      index[n++] = j;
      total += next->size;
    }
    l->count = n;
    kern_return_t all = KERN_SUCCESS;
    if (ioctl(view->fd, TASKFS_IOC_VM_READ_LIST, l) != 0) all = kern_errno();
    uint64_t offset = 0;
    for (uint32_t k = 0; k < n; ++k) {
      const kern_return_t kr =
          all != KERN_SUCCESS ? all : (kern_return_t)l->entries[k].kern_return;
      call->result = read_list_entry(view->fd, &call->list[index[k]], kr,
                                     l->data + offset);
      offset += l->entries[k].size;
    }
    i = j;
  }
  return call->result;
}

kern_return_t mach_vm_read_list(vm_map_read_t target_task,
                                mach_vm_read_entry_t data_list,
                                natural_t count) {
  if (count > VM_MAP_ENTRY_MAX || (data_list == NULL && count != 0)) {
    return KERN_INVALID_ARGUMENT;
  }
  struct read_list call = {data_list, count, NULL, KERN_SUCCESS};
  call.batch = malloc(sizeof *call.batch);
  if (call.batch == NULL) return KERN_RESOURCE_SHORTAGE;
  const kern_return_t kr =
      taskfs_with_task(target_task, 0, read_list_run, &call);
  free(call.batch);
  return kr;
}

kern_return_t vm_read_list(vm_map_read_t target_task, vm_read_entry_t data_list,
                           natural_t count) {
  return mach_vm_read_list(target_task, (struct mach_vm_read_entry *)data_list,
                           count);
}

/* ---- the calls with classic signatures -------------------------------------
 */

/* mach_vm_allocate on mach_task_self(): zero-filled pages of the calling
 * process (mmap), freed by mach_vm_deallocate(mach_task_self()) (munmap, by
 * the classic vm_deallocate). */
static kern_return_t allocate_self(mach_vm_address_t *address,
                                   mach_vm_size_t size, int anywhere) {
  const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
  const uint64_t base = anywhere ? 0 : *address;
  if (size > UINT64_MAX - base - (page - 1)) return KERN_INVALID_ARGUMENT;
  const uint64_t start = base / page * page;
  const uint64_t end = (base + size + page - 1) / page * page;
  if (end == start) {
    if (anywhere) *address = 0;
    return KERN_SUCCESS;
  }
  void *p =
      mmap(anywhere ? NULL : (void *)(uintptr_t)start, end - start,
           PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | (anywhere ? 0 : MAP_FIXED_NOREPLACE),
           -1, 0);
  if (p == MAP_FAILED) return KERN_NO_SPACE;
  if (!anywhere && p != (void *)(uintptr_t)start) { /* an old kernel's hint */
    munmap(p, end - start);
    return KERN_NO_SPACE;
  }
  *address = (uintptr_t)p;
  return KERN_SUCCESS;
}

kern_return_t mach_vm_allocate(vm_map_t target, mach_vm_address_t *address,
                               mach_vm_size_t size, int flags) {
  if (address == NULL) return KERN_INVALID_ARGUMENT;
  /* The flags that only steer where or how memory comes (placement hints,
   * caching, a tag) are taken and have no effect; those that change what
   * the call does beyond that are not supported. */
  const unsigned taken = VM_FLAGS_ANYWHERE | VM_FLAGS_RANDOM_ADDR |
                         VM_FLAGS_NO_CACHE | VM_FLAGS_4GB_CHUNK |
                         VM_FLAGS_ALIAS_MASK;
  if (((unsigned)flags & ~taken) != 0) return KERN_INVALID_ARGUMENT;
  if (target == mach_task_self()) {
    return allocate_self(address, size, (flags & VM_FLAGS_ANYWHERE) != 0);
  }
  vm_address_t a = (vm_address_t)*address;
  const kern_return_t kr = vm_allocate(target, &a, (vm_size_t)size,
                                       (flags & VM_FLAGS_ANYWHERE) != 0);
  if (kr == KERN_SUCCESS) *address = a;
  return kr;
}

kern_return_t mach_vm_deallocate(vm_map_t target, mach_vm_address_t address,
                                 mach_vm_size_t size) {
  return vm_deallocate(target, (vm_address_t)address, (vm_size_t)size);
}

kern_return_t mach_vm_protect(vm_map_t target_task, mach_vm_address_t address,
                              mach_vm_size_t size, boolean_t set_maximum,
                              vm_prot_t new_protection) {
  if (target_task == mach_task_self()) {
    /* This process's pages: mprotect (no maximum is kept). */
    if (set_maximum) return KERN_SUCCESS;
    const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    const uint64_t start = address / page * page;
    if (size > UINT64_MAX - address - (page - 1)) return KERN_INVALID_ARGUMENT;
    const uint64_t end = (address + size + page - 1) / page * page;
    const int prot = ((new_protection & VM_PROT_READ) ? PROT_READ : 0) |
                     ((new_protection & VM_PROT_WRITE) ? PROT_WRITE : 0) |
                     ((new_protection & VM_PROT_EXECUTE) ? PROT_EXEC : 0);
    if (end == start) return KERN_SUCCESS;
    if (mprotect((void *)(uintptr_t)start, end - start, prot) == 0) {
      return KERN_SUCCESS;
    }
    return errno == ENOMEM ? KERN_INVALID_ADDRESS : KERN_PROTECTION_FAILURE;
  }
  return vm_protect(target_task, (vm_address_t)address, (vm_size_t)size,
                    set_maximum, new_protection);
}

kern_return_t mach_vm_inherit(vm_map_t target_task, mach_vm_address_t address,
                              mach_vm_size_t size,
                              vm_inherit_t new_inheritance) {
  return vm_inherit(target_task, (vm_address_t)address, (vm_size_t)size,
                    new_inheritance);
}

kern_return_t mach_vm_copy(vm_map_t target_task,
                           mach_vm_address_t source_address,
                           mach_vm_size_t size,
                           mach_vm_address_t dest_address) {
  return vm_copy(target_task, (vm_address_t)source_address, (vm_size_t)size,
                 (vm_address_t)dest_address);
}

/* ---- page states -----------------------------------------------------------
 */

/* What the page query tells of a range of pages. */
struct page_counts {
  uint64_t address, pages; /* in: the range */
  unsigned resident;       /* written pages */
  unsigned shared;         /* of those, shared ones */
  unsigned max_mappings;   /* the most addresses mapping one of them */
};

/* Regions larger than this are counted over their first kCountedPages. */
enum { kCountedPages = 1 << 20 };

static unsigned saturate(uint64_t n) { return n > UINT_MAX ? UINT_MAX : n; }

static kern_return_t count_pages(const struct taskfs_task_view *view,
                                 void *arg) {
  struct page_counts *c = arg;
  struct taskfs_vm_page_query *q = malloc(sizeof *q);
  if (q == NULL) return KERN_RESOURCE_SHORTAGE;
  uint64_t resident = 0, shared = 0;
  c->max_mappings = 0;
  const uint64_t pages = c->pages < kCountedPages ? c->pages : kCountedPages;
  kern_return_t kr = KERN_SUCCESS;
  for (uint64_t done = 0; done < pages && kr == KERN_SUCCESS;) {
    q->address = c->address + done * view->page_size;
    q->count = pages - done < TASKFS_PAGE_QUERY_MAX ? pages - done
                                                    : TASKFS_PAGE_QUERY_MAX;
    if (ioctl(view->fd, TASKFS_IOC_VM_PAGE_QUERY, q) != 0) {
      kr = kern_errno();
      break;
    }
    for (uint64_t i = 0; i < q->count; ++i) {
      const struct taskfs_page_state *s = &q->pages[i];
      if ((s->flags & TASKFS_PAGE_RESIDENT) == 0) continue;
      ++resident;
      if (s->flags & TASKFS_PAGE_SHARED) ++shared;
      if (s->mappings > c->max_mappings) c->max_mappings = s->mappings;
    }
    done += q->count;
  }
  free(q);
  c->resident = saturate(resident);
  c->shared = saturate(shared);
  return kr;
}

/* XNU's disposition of a page by its state: never written (or not
 * allocated) 0, written PRESENT | DIRTY; *ref_count the addresses mapping
 * its memory. */
static int disposition(const struct taskfs_page_state *s) {
  if ((s->flags & TASKFS_PAGE_RESIDENT) == 0) return 0;
  return VM_PAGE_QUERY_PAGE_PRESENT | VM_PAGE_QUERY_PAGE_DIRTY;
}

struct range_query {
  uint64_t address; /* the first page */
  uint64_t pages;
  int *out;
  int first_ref_count; /* the first page's mappings */
};

static kern_return_t query_pages(const struct taskfs_task_view *view,
                                 void *arg) {
  struct range_query *r = arg;
  struct taskfs_vm_page_query *q = malloc(sizeof *q);
  if (q == NULL) return KERN_RESOURCE_SHORTAGE;
  kern_return_t kr = KERN_SUCCESS;
  const uint64_t start = r->address / view->page_size * view->page_size;
  for (uint64_t done = 0; done < r->pages;) {
    q->address = start + done * view->page_size;
    q->count = r->pages - done < TASKFS_PAGE_QUERY_MAX ? r->pages - done
                                                       : TASKFS_PAGE_QUERY_MAX;
    if (ioctl(view->fd, TASKFS_IOC_VM_PAGE_QUERY, q) != 0) {
      kr = kern_errno();
      break;
    }
    if (done == 0) r->first_ref_count = (int)q->pages[0].mappings;
    for (uint64_t i = 0; i < q->count; ++i) {
      r->out[done + i] = disposition(&q->pages[i]);
    }
    done += q->count;
  }
  free(q);
  return kr;
}

kern_return_t mach_vm_page_query(vm_map_read_t target_map,
                                 mach_vm_offset_t offset,
                                 integer_t *disposition_out,
                                 integer_t *ref_count) {
  if (disposition_out == NULL || ref_count == NULL) {
    return KERN_INVALID_ARGUMENT;
  }
  int d = 0;
  struct range_query r = {offset, 1, &d, 0};
  const kern_return_t kr = taskfs_with_task(target_map, 0, query_pages, &r);
  if (kr != KERN_SUCCESS) return kr;
  *disposition_out = d;
  *ref_count = r.first_ref_count;
  return KERN_SUCCESS;
}

kern_return_t mach_vm_page_range_query(vm_map_read_t target_map,
                                       mach_vm_offset_t address,
                                       mach_vm_size_t size,
                                       mach_vm_address_t dispositions,
                                       mach_vm_size_t *dispositions_count) {
  if (dispositions_count == NULL) return KERN_INVALID_ARGUMENT;
  struct taskfs_task_view v;
  kern_return_t kr = taskfs_with_task(target_map, 0, get_view, &v);
  if (kr != KERN_SUCCESS) return kr;
  if (size > UINT64_MAX - address) return KERN_INVALID_ARGUMENT;
  const uint64_t start = address / v.page_size * v.page_size;
  const uint64_t last = address + size;
  if (last > UINT64_MAX - (v.page_size - 1)) return KERN_INVALID_ARGUMENT;
  const uint64_t end = (last + v.page_size - 1) / v.page_size * v.page_size;
  if (*dispositions_count == 0 || end == start) return KERN_SUCCESS;
  uint64_t pages = (end - start) / v.page_size;
  if (pages > *dispositions_count) pages = *dispositions_count;
  struct range_query r = {start, pages, (int *)(uintptr_t)dispositions, 0};
  kr = taskfs_with_task(target_map, 0, query_pages, &r);
  if (kr == KERN_SUCCESS) *dispositions_count = pages;
  return kr;
}

/* ---- regions ---------------------------------------------------------------
 */

/* One region and what its pages hold. */
struct region {
  struct taskfs_vm_region r;
  struct page_counts counts;
  int counted; /* counts filled */
};

static kern_return_t find_region(const struct taskfs_task_view *view,
                                 void *arg) {
  struct region *g = arg;
  if (ioctl(view->fd, TASKFS_IOC_VM_REGION, &g->r) != 0) {
    /* No region at or above the address: XNU's code for it. */
    return errno == ENOMEM ? KERN_INVALID_ADDRESS : kern_errno();
  }
  if (!g->counted) return KERN_SUCCESS;
  g->counts.address = g->r.address;
  g->counts.pages = g->r.size / view->page_size;
  return count_pages(view, &g->counts);
}

/* XNU's share mode: SM_EMPTY if no page is written; SM_SHARED if written
 * pages are shared and the region is inherited share; SM_COW if they are
 * shared otherwise (a copy not yet written, or memory a remap shares: the
 * page states do not tell them apart); SM_PRIVATE if none is shared. */
static unsigned char share_mode(const struct region *g) {
  if (g->counts.resident == 0) return SM_EMPTY;
  if (g->counts.shared == 0) return SM_PRIVATE;
  return g->r.inheritance == VM_INHERIT_SHARE ? SM_SHARED : SM_COW;
}

/* The ref_count of the extended, top and submap flavors. */
static unsigned ref_count(const struct region *g) {
  return g->counts.resident == 0 ? 0 : g->counts.max_mappings;
}

static kern_return_t region_info(vm_map_read_t task, uint64_t *address,
                                 uint64_t *size, vm_region_flavor_t flavor,
                                 vm_region_info_t info,
                                 mach_msg_type_number_t *count,
                                 mach_port_t *object_name) {
  if (address == NULL || size == NULL || info == NULL || count == NULL) {
    return KERN_INVALID_ARGUMENT;
  }
  mach_msg_type_number_t need;
  switch (flavor) {
    case VM_REGION_BASIC_INFO:
      need = VM_REGION_BASIC_INFO_COUNT;
      break;
    case VM_REGION_BASIC_INFO_64:
      need = VM_REGION_BASIC_INFO_COUNT_64;
      break;
    case VM_REGION_EXTENDED_INFO:
      need = VM_REGION_EXTENDED_INFO_COUNT;
      break;
    case VM_REGION_TOP_INFO:
      need = VM_REGION_TOP_INFO_COUNT;
      break;
    default:
      return KERN_INVALID_ARGUMENT;
  }
  if (*count < need) return KERN_INVALID_ARGUMENT;
  struct region g;
  memset(&g, 0, sizeof g);
  g.r.address = *address;
  g.counted = flavor == VM_REGION_EXTENDED_INFO || flavor == VM_REGION_TOP_INFO;
  const kern_return_t kr = taskfs_with_task(task, 0, find_region, &g);
  if (kr != KERN_SUCCESS) return kr;
  const int shared = g.r.inheritance == VM_INHERIT_SHARE;
  switch (flavor) {
    case VM_REGION_BASIC_INFO: {
      vm_region_basic_info_data_t b;
      memset(&b, 0, sizeof b);
      b.protection = (vm_prot_t)g.r.prot;
      b.max_protection = (vm_prot_t)g.r.max_prot;
      b.inheritance = g.r.inheritance;
      b.shared = shared;
      b.behavior = VM_BEHAVIOR_DEFAULT;
      memcpy(info, &b, sizeof b);
      break;
    }
    case VM_REGION_BASIC_INFO_64: {
      vm_region_basic_info_data_64_t b;
      memset(&b, 0, sizeof b);
      b.protection = (vm_prot_t)g.r.prot;
      b.max_protection = (vm_prot_t)g.r.max_prot;
      b.inheritance = g.r.inheritance;
      b.shared = shared;
      b.behavior = VM_BEHAVIOR_DEFAULT;
      memcpy(info, &b, sizeof b);
      break;
    }
    case VM_REGION_EXTENDED_INFO: {
      vm_region_extended_info_data_t e;
      memset(&e, 0, sizeof e);
      e.protection = (vm_prot_t)g.r.prot;
      e.pages_resident = g.counts.resident;
      e.pages_dirtied = g.counts.resident;
      e.ref_count = ref_count(&g);
      e.share_mode = share_mode(&g);
      memcpy(info, &e, sizeof e);
      break;
    }
    default: { /* VM_REGION_TOP_INFO */
      vm_region_top_info_data_t t;
      memset(&t, 0, sizeof t);
      t.ref_count = ref_count(&g);
      t.private_pages_resident = g.counts.resident - g.counts.shared;
      t.shared_pages_resident = g.counts.shared;
      t.share_mode = share_mode(&g);
      memcpy(info, &t, sizeof t);
      break;
    }
  }
  *address = g.r.address;
  *size = g.r.size;
  *count = need;
  if (object_name != NULL) *object_name = MACH_PORT_NULL;
  return KERN_SUCCESS;
}

kern_return_t mach_vm_region(vm_map_read_t target_task,
                             mach_vm_address_t *address, mach_vm_size_t *size,
                             vm_region_flavor_t flavor, vm_region_info_t info,
                             mach_msg_type_number_t *infoCnt,
                             mach_port_t *object_name) {
  return region_info(target_task, address, size, flavor, info, infoCnt,
                     object_name);
}

kern_return_t vm_region_64(vm_map_read_t target_task, vm_address_t *address,
                           vm_size_t *size, vm_region_flavor_t flavor,
                           vm_region_info_t info,
                           mach_msg_type_number_t *infoCnt,
                           mach_port_t *object_name) {
  if (address == NULL || size == NULL) return KERN_INVALID_ARGUMENT;
  uint64_t a = *address, s = 0;
  const kern_return_t kr =
      region_info(target_task, &a, &s, flavor, info, infoCnt, object_name);
  if (kr != KERN_SUCCESS) return kr;
  *address = (vm_address_t)a;
  *size = (vm_size_t)s;
  return KERN_SUCCESS;
}

kern_return_t taskfs_xnu_vm_region(vm_map_read_t target_task,
                                   vm_address_t *address, vm_size_t *size,
                                   vm_region_flavor_t flavor,
                                   vm_region_info_t info,
                                   mach_msg_type_number_t *infoCnt,
                                   mach_port_t *object_name) {
  return vm_region_64(target_task, address, size, flavor, info, infoCnt,
                      object_name);
}

kern_return_t mach_vm_region_recurse(vm_map_read_t target_task,
                                     mach_vm_address_t *address,
                                     mach_vm_size_t *size,
                                     natural_t *nesting_depth,
                                     vm_region_recurse_info_t info,
                                     mach_msg_type_number_t *infoCnt) {
  if (address == NULL || size == NULL || nesting_depth == NULL ||
      info == NULL || infoCnt == NULL) {
    return KERN_INVALID_ARGUMENT;
  }
  /* As XNU: the count names the struct (the short one, or the full one of
   * version 0, 1 or 2 by how much of it fits). */
  mach_msg_type_number_t count;
  const int short_info = *infoCnt == VM_REGION_SUBMAP_SHORT_INFO_COUNT_64;
  if (short_info) {
    count = VM_REGION_SUBMAP_SHORT_INFO_COUNT_64;
  } else if (*infoCnt >= VM_REGION_SUBMAP_INFO_V2_COUNT_64) {
    count = VM_REGION_SUBMAP_INFO_V2_COUNT_64;
  } else if (*infoCnt >= VM_REGION_SUBMAP_INFO_V1_COUNT_64) {
    count = VM_REGION_SUBMAP_INFO_V1_COUNT_64;
  } else if (*infoCnt >= VM_REGION_SUBMAP_INFO_V0_COUNT_64) {
    count = VM_REGION_SUBMAP_INFO_V0_COUNT_64;
  } else {
    return KERN_INVALID_ARGUMENT;
  }
  struct region g;
  memset(&g, 0, sizeof g);
  g.r.address = *address;
  g.counted = !short_info;
  const kern_return_t kr = taskfs_with_task(target_task, 0, find_region, &g);
  if (kr != KERN_SUCCESS) return kr;
  if (short_info) {
    vm_region_submap_short_info_data_64_t s;
    memset(&s, 0, sizeof s);
    s.protection = (vm_prot_t)g.r.prot;
    s.max_protection = (vm_prot_t)g.r.max_prot;
    s.inheritance = g.r.inheritance;
    s.behavior = VM_BEHAVIOR_DEFAULT;
    /* The short flavor reads no page states: shared by inheritance only. */
    s.share_mode = g.r.inheritance == VM_INHERIT_SHARE ? SM_SHARED : SM_PRIVATE;
    memcpy(info, &s, sizeof s);
  } else {
    vm_region_submap_info_data_64_t s;
    memset(&s, 0, sizeof s);
    s.protection = (vm_prot_t)g.r.prot;
    s.max_protection = (vm_prot_t)g.r.max_prot;
    s.inheritance = g.r.inheritance;
    s.pages_resident = g.counts.resident;
    s.pages_dirtied = g.counts.resident;
    s.ref_count = ref_count(&g);
    s.share_mode = share_mode(&g);
    s.behavior = VM_BEHAVIOR_DEFAULT;
    memcpy(info, &s, (size_t)count * sizeof(natural_t));
  }
  *address = g.r.address;
  *size = g.r.size;
  *nesting_depth = 0;
  *infoCnt = count;
  return KERN_SUCCESS;
}

kern_return_t vm_region_recurse_64(vm_map_read_t target_task,
                                   vm_address_t *address, vm_size_t *size,
                                   natural_t *nesting_depth,
                                   vm_region_recurse_info_t info,
                                   mach_msg_type_number_t *infoCnt) {
  if (address == NULL || size == NULL) return KERN_INVALID_ARGUMENT;
  uint64_t a = *address, s = 0;
  const kern_return_t kr =
      mach_vm_region_recurse(target_task, &a, &s, nesting_depth, info, infoCnt);
  if (kr != KERN_SUCCESS) return kr;
  *address = (vm_address_t)a;
  *size = (vm_size_t)s;
  return KERN_SUCCESS;
}

/* ---- remap (libtaskfs's taskfs_vm_remap) -----------------------------------
 */

kern_return_t mach_vm_remap(vm_map_t target_task,
                            mach_vm_address_t *target_address,
                            mach_vm_size_t size, mach_vm_offset_t mask,
                            int flags, vm_map_read_t src_task,
                            mach_vm_address_t src_address, boolean_t copy,
                            vm_prot_t *cur_protection,
                            vm_prot_t *max_protection,
                            vm_inherit_t inheritance) {
  if (target_address == NULL || cur_protection == NULL ||
      max_protection == NULL) {
    return KERN_INVALID_ARGUMENT;
  }
  /* Where the new mapping goes: anywhere or fixed, and whether the address
   * returned is the data's (the source's offset in its page kept). A tag,
   * a random placement and no-cache are taken and change nothing;
   * overwriting mappings and the codesigning and media flags are not
   * supported. */
  const unsigned taken = VM_FLAGS_ANYWHERE | VM_FLAGS_RANDOM_ADDR |
                         VM_FLAGS_RETURN_DATA_ADDR | VM_FLAGS_ALIAS_MASK;
  if (((unsigned)flags & ~taken) != 0) return KERN_INVALID_ARGUMENT;
  struct taskfs_task_view v;
  kern_return_t kr = taskfs_with_task(src_task, 0, get_view, &v);
  if (kr != KERN_SUCCESS) return kr;
  /* An alignment beyond the page's is not supported. */
  if ((mask & ~(mach_vm_offset_t)(v.page_size - 1)) != 0) {
    return KERN_INVALID_ARGUMENT;
  }
  /* The pages the bytes [src_address, src_address + size) touch. */
  const uint64_t in_page = src_address % v.page_size;
  if (size == 0 || size > UINT64_MAX - in_page) return KERN_INVALID_ARGUMENT;
  const uint64_t offset = (flags & VM_FLAGS_RETURN_DATA_ADDR) ? in_page : 0;
  vm_address_t a = (vm_address_t)*target_address;
  kr = taskfs_vm_remap(target_task, &a, (vm_size_t)(size + in_page),
                       (flags & VM_FLAGS_ANYWHERE) != 0, src_task,
                       (vm_address_t)src_address, copy, cur_protection,
                       max_protection, inheritance);
  if (kr == KERN_SUCCESS) *target_address = a + offset;
  return kr;
}

/* ---- hints: checked, no effect ---------------------------------------------
 */

struct whole_range {
  uint64_t address, size;
};

/* KERN_INVALID_ADDRESS unless every page of [trunc(address),
 * round(address + size)) is allocated (lseek's SEEK_HOLE finds the first
 * one that is not). */
static kern_return_t check_allocated(const struct taskfs_task_view *view,
                                     void *arg) {
  const struct whole_range *w = arg;
  const uint64_t start = w->address / view->page_size * view->page_size;
  const uint64_t end = w->address + w->size;
  if (beyond_off_t(start, end - start)) return KERN_INVALID_ADDRESS;
  const off_t hole = lseek(view->fd, (off_t)start, SEEK_HOLE);
  if (hole < 0) return errno == ENXIO ? KERN_INVALID_ADDRESS : kern_errno();
  return (uint64_t)hole < end ? KERN_INVALID_ADDRESS : KERN_SUCCESS;
}

/* Size 0: only the task is checked. */
static kern_return_t check_range(task_t task, uint64_t address, uint64_t size) {
  struct taskfs_task_view v;
  if (size == 0) return taskfs_with_task(task, 0, get_view, &v);
  struct whole_range w = {address, size};
  return taskfs_with_task(task, 0, check_allocated, &w);
}

kern_return_t mach_vm_behavior_set(vm_map_t target_task,
                                   mach_vm_address_t address,
                                   mach_vm_size_t size,
                                   vm_behavior_t new_behavior) {
  if (size > UINT64_MAX - address) return KERN_NO_SPACE;
  if (new_behavior < VM_BEHAVIOR_DEFAULT || new_behavior > VM_BEHAVIOR_ZERO) {
    return KERN_INVALID_ARGUMENT;
  }
  return check_range(target_task, address, size);
}

kern_return_t mach_vm_msync(vm_map_t target_task, mach_vm_address_t address,
                            mach_vm_size_t size, vm_sync_t sync_flags) {
  if ((sync_flags & VM_SYNC_ASYNCHRONOUS) &&
      (sync_flags & VM_SYNC_SYNCHRONOUS)) {
    return KERN_INVALID_ARGUMENT;
  }
  if (size > UINT64_MAX - address) return KERN_INVALID_ADDRESS;
  return check_range(target_task, address, size);
}

/* ---- tasks and ports -------------------------------------------------------
 */

/* The "id" of DIR/status; 0 if it cannot be read. */
static uint64_t status_id(int dir_fd, const char *name) {
  char text[4096];
  if (taskfs_read_status(dir_fd, name, text) != 0) return 0;
  return taskfs_status_number(text, "id: ");
}

kern_return_t task_for_pid(mach_port_name_t target_tport, int pid,
                           mach_port_name_t *t) {
  if (t == NULL || target_tport != mach_task_self() || pid <= 0) {
    return KERN_FAILURE;
  }
  const char *mount = getenv("TASKFS_MOUNT");
  if (mount == NULL || mount[0] == '\0') mount = "/mnt/taskfs";
  DIR *dir = opendir(mount);
  if (dir == NULL) return KERN_FAILURE;
  char *found = NULL;
  for (struct dirent *d; found == NULL && (d = readdir(dir)) != NULL;) {
    if (d->d_name[0] == '.' || strcmp(d->d_name, "host_page_size") == 0) {
      continue;
    }
    if (status_id(dirfd(dir), d->d_name) == (uint64_t)pid &&
        asprintf(&found, "%s/%s", mount, d->d_name) < 0) {
      found = NULL;
      break;
    }
  }
  closedir(dir);
  if (found == NULL) return KERN_FAILURE;
  task_t task = TASK_NULL;
  const kern_return_t kr = taskfs_task_open(found, &task);
  free(found);
  if (kr != KERN_SUCCESS) return KERN_FAILURE;
  *t = task;
  return KERN_SUCCESS;
}

kern_return_t pid_for_task(mach_port_name_t t, int *x) {
  if (x == NULL) return KERN_FAILURE;
  if (t == mach_task_self()) {
    *x = (int)getpid();
    return KERN_SUCCESS;
  }
  struct taskfs_task_view v;
  if (taskfs_with_task(t, 0, get_view, &v) != KERN_SUCCESS || v.id > INT_MAX) {
    *x = -1;
    return KERN_FAILURE;
  }
  *x = (int)v.id;
  return KERN_SUCCESS;
}

kern_return_t mach_port_deallocate(ipc_space_t task, mach_port_name_t name) {
  if (task != mach_task_self()) return KERN_INVALID_TASK;
  if (!MACH_PORT_VALID(name) || name == mach_task_self()) return KERN_SUCCESS;
  return taskfs_task_close(name) == KERN_SUCCESS ? KERN_SUCCESS
                                                 : KERN_INVALID_NAME;
}

/* Suspend counts, by task (mount device and id), for this process. */
struct suspension {
  dev_t dev;
  uint64_t id;
  unsigned count;
};
static pthread_mutex_t g_suspend_mu = PTHREAD_MUTEX_INITIALIZER;
static struct suspension *g_suspended; /* entries with count > 0 */
static size_t g_suspended_len, g_suspended_cap;

/* Adds delta (+1 or -1) to the task's count: KERN_FAILURE to resume a task
 * that is not suspended, as XNU. */
static kern_return_t suspend_count(task_t task, int delta) {
  struct taskfs_task_view v;
  const kern_return_t kr = taskfs_with_task(task, 0, get_view, &v);
  if (kr != KERN_SUCCESS) return kr;
  kern_return_t result = KERN_SUCCESS;
  pthread_mutex_lock(&g_suspend_mu);
  size_t i = 0;
  while (i < g_suspended_len &&
         (g_suspended[i].dev != v.dev || g_suspended[i].id != v.id)) {
    ++i;
  }
  if (delta < 0) {
    if (i == g_suspended_len) {
      result = KERN_FAILURE;
    } else if (--g_suspended[i].count == 0) {
      g_suspended[i] = g_suspended[--g_suspended_len];
    }
  } else if (i < g_suspended_len) {
    if (g_suspended[i].count == UINT_MAX) {
      result = KERN_RESOURCE_SHORTAGE;
    } else {
      ++g_suspended[i].count;
    }
  } else {
    if (g_suspended_len == g_suspended_cap) {
      const size_t cap = g_suspended_cap == 0 ? 8 : g_suspended_cap * 2;
      struct suspension *grown = realloc(g_suspended, cap * sizeof *grown);
      if (grown != NULL) {
        g_suspended = grown;
        g_suspended_cap = cap;
      }
    }
    if (g_suspended_len < g_suspended_cap) {
      g_suspended[g_suspended_len++] = (struct suspension){v.dev, v.id, 1};
    } else {
      result = KERN_RESOURCE_SHORTAGE;
    }
  }
  pthread_mutex_unlock(&g_suspend_mu);
  return result;
}

kern_return_t task_suspend(task_read_t target_task) {
  return suspend_count(target_task, +1);
}

kern_return_t task_resume(task_read_t target_task) {
  return suspend_count(target_task, -1);
}

void mach_error(const char *str, mach_error_t error_value) {
  fprintf(stderr, "%s %s (0x%x)\n", str != NULL ? str : "",
          mach_error_string(error_value), (unsigned)error_value);
}
