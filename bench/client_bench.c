/*
 * client_bench: vm_read and vm_write of 1 MiB through libtaskfs against raw
 * pread and pwrite of the same task's mem file, in alternating runs.
 *
 * Usage: client_bench MOUNTPOINT [REPS] [MIB_PER_RUN]
 *
 * Makes a task bench-PID on the mount (removed at the end) with 64 MiB
 * written, then REPS (default 7) times, alternating which goes first: MIB
 * (default 1024) calls of 1 MiB each way, cycling through the 64 MiB. The
 * raw side preads into / pwrites from one page-aligned 1 MiB buffer; the
 * vm_read side gets new memory each call as Mach's vm_read does and frees
 * it with vm_deallocate(mach_task_self()), and vm_write writes from one
 * page-aligned buffer. Prints the median MiB/s of each and the ratio
 * libtaskfs / raw (a figure, not a test).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "taskfs/mach.h"

enum { kMiB = 1 << 20, kSpan = 64 };

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int compare(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, n, sizeof *v, compare);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static char *g_buf;
static int g_fd;
static task_t g_task;
static const vm_address_t kBase = 0x10000000;

/* Each returns MiB/s of `mib` calls of 1 MiB, or -1 on a failure. */
static double raw_read(int mib) {
  const double t0 = now();
  for (int i = 0; i < mib; ++i) {
    if (pread(g_fd, g_buf, kMiB, kBase + (off_t)(i % kSpan) * kMiB) != kMiB)
      return -1;
  }
  return mib / (now() - t0);
}
static double mach_read(int mib) {
  const double t0 = now();
  for (int i = 0; i < mib; ++i) {
    vm_offset_t data;
    mach_msg_type_number_t count;
    if (vm_read(g_task, kBase + (vm_address_t)(i % kSpan) * kMiB, kMiB, &data,
                &count) != KERN_SUCCESS) {
      return -1;
    }
    vm_deallocate(mach_task_self(), data, count);
  }
  return mib / (now() - t0);
}
static double raw_write(int mib) {
  const double t0 = now();
  for (int i = 0; i < mib; ++i) {
    if (pwrite(g_fd, g_buf, kMiB, kBase + (off_t)(i % kSpan) * kMiB) != kMiB)
      return -1;
  }
  return mib / (now() - t0);
}
static double mach_write(int mib) {
  const double t0 = now();
  for (int i = 0; i < mib; ++i) {
    if (vm_write(g_task, kBase + (vm_address_t)(i % kSpan) * kMiB,
                 (vm_offset_t)g_buf, kMiB) != KERN_SUCCESS) {
      return -1;
    }
  }
  return mib / (now() - t0);
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 4) {
    fprintf(stderr, "usage: client_bench MOUNTPOINT [REPS] [MIB_PER_RUN]\n");
    return 2;
  }
  const int reps = argc > 2 ? atoi(argv[2]) : 7;
  const int mib = argc > 3 ? atoi(argv[3]) : 1024;
  if (reps < 1 || reps > 100 || mib < 1) {
    fprintf(stderr, "client_bench: bad REPS or MIB_PER_RUN\n");
    return 2;
  }
  char name[64], mem[4096];
  snprintf(name, sizeof name, "bench-%d", (int)getpid());
  kern_return_t kr = taskfs_task_create(argv[1], name, &g_task);
  if (kr != KERN_SUCCESS) {
    fprintf(stderr, "client_bench: %s/%s: %s\n", argv[1], name,
            mach_error_string(kr));
    return 1;
  }
  snprintf(mem, sizeof mem, "%s/%s/mem", argv[1], name);
  g_fd = open(mem, O_RDWR);
  g_buf = mmap(NULL, kMiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
               -1, 0);
  vm_address_t base = kBase;
  int status = 1;
  if (g_fd < 0 || g_buf == MAP_FAILED ||
      vm_allocate(g_task, &base, (vm_size_t)kSpan * kMiB, FALSE) !=
          KERN_SUCCESS) {
    fprintf(stderr, "client_bench: setup failed\n");
    goto out;
  }
  memset(g_buf, 0x5a, kMiB);
  if (raw_write(kSpan) < 0) goto out; /* every page resident */

  double rr[100], mr[100], rw[100], mw[100];
  for (int r = 0; r < reps; ++r) {
    if (r % 2 == 0) {
      rr[r] = raw_read(mib);
      mr[r] = mach_read(mib);
      rw[r] = raw_write(mib);
      mw[r] = mach_write(mib);
    } else {
      mr[r] = mach_read(mib);
      rr[r] = raw_read(mib);
      mw[r] = mach_write(mib);
      rw[r] = raw_write(mib);
    }
    if (rr[r] < 0 || mr[r] < 0 || rw[r] < 0 || mw[r] < 0) {
      fprintf(stderr, "client_bench: a call failed in run %d\n", r + 1);
      goto out;
    }
    printf(
        "run %d: read raw %.0f vm_read %.0f, write raw %.0f vm_write %.0f "
        "MiB/s\n",
        r + 1, rr[r], mr[r], rw[r], mw[r]);
  }
  const double mrr = median(rr, reps), mmr = median(mr, reps);
  const double mrw = median(rw, reps), mmw = median(mw, reps);
  printf("median of %d runs of %d x 1 MiB:\n", reps, mib);
  printf("  read:  raw pread %.0f MiB/s, vm_read %.0f MiB/s, ratio %.3f\n", mrr,
         mmr, mmr / mrr);
  printf("  write: raw pwrite %.0f MiB/s, vm_write %.0f MiB/s, ratio %.3f\n",
         mrw, mmw, mmw / mrw);
  status = 0;
out:
  if (g_fd >= 0) close(g_fd);
  task_terminate(g_task);
  taskfs_task_close(g_task);
  return status;
}
