/*
 * region_walk: list a taskfs task's regions with TASKFS_IOC_VM_REGION.
 *
 * Usage: region_walk [--allocate SIZE] MEMFILE
 *
 * Prints one line per region in the format of the task's maps file
 *
 *     0000000000400000-0000000000410000 r-x/rwx copy
 *
 * by asking vm_region for the region holding (or else the first one above)
 * an address, starting at 0 and continuing at the end of each region found,
 * until the ioctl fails with ENOMEM (KERN_NO_SPACE: no region above). So the
 * output equals `cat MEMFILE/../maps`.
 *
 * With --allocate SIZE it first allocates SIZE bytes anywhere with
 * TASKFS_IOC_VM_ALLOCATE (SIZE takes K, M, G suffixes) and reports the
 * address on stderr, so stdout stays a copy of maps.
 *
 * Build: cc -Wall -Werror -I include -o region_walk examples/region_walk.c
 * (or with no -I once taskfs is installed: the header is <taskfs/ioctl.h>).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "taskfs/ioctl.h"

static void prot_string(uint32_t prot, char out[4]) {
  out[0] = (prot & TASKFS_VM_PROT_READ) ? 'r' : '-';
  out[1] = (prot & TASKFS_VM_PROT_WRITE) ? 'w' : '-';
  out[2] = (prot & TASKFS_VM_PROT_EXECUTE) ? 'x' : '-';
  out[3] = '\0';
}

static const char *inheritance_name(uint32_t inheritance) {
  switch (inheritance) {
    case TASKFS_VM_INHERIT_SHARE:
      return "share";
    case TASKFS_VM_INHERIT_COPY:
      return "copy";
    case TASKFS_VM_INHERIT_NONE:
      return "none";
    default:
      return "?";
  }
}

/* Parses "65536", "0x10000", "64K", "1M", "2G"; 0 on error. */
static uint64_t parse_size(const char *text) {
  char *end = NULL;
  errno = 0;
  uint64_t value = strtoull(text, &end, 0);
  if (errno != 0 || end == text || text[0] == '-') return 0;
  int shift = 0;
  if (*end == 'K' || *end == 'k') shift = 10;
  if (*end == 'M' || *end == 'm') shift = 20;
  if (*end == 'G' || *end == 'g') shift = 30;
  if (shift != 0) ++end;
  if (*end != '\0' || value > (UINT64_MAX >> shift)) return 0;
  return value << shift;
}

static int usage(void) {
  fprintf(stderr, "usage: region_walk [--allocate SIZE] MEMFILE\n");
  return 2;
}

int main(int argc, char **argv) {
  uint64_t allocate = 0;
  int arg = 1;
  if (arg < argc && strcmp(argv[arg], "--allocate") == 0) {
    if (arg + 1 >= argc || (allocate = parse_size(argv[arg + 1])) == 0) {
      return usage();
    }
    arg += 2;
  }
  if (arg + 1 != argc) return usage();
  const char *path = argv[arg];

  /* vm_region only reads; vm_allocate needs the file open for writing. */
  int fd = open(path, allocate != 0 ? O_RDWR : O_RDONLY);
  if (fd < 0) {
    fprintf(stderr, "region_walk: %s: %s\n", path, strerror(errno));
    return 1;
  }

  if (allocate != 0) {
    struct taskfs_vm_allocate a;
    memset(&a, 0, sizeof a);
    a.size = allocate;
    a.flags = TASKFS_VM_ALLOCATE_ANYWHERE;
    if (ioctl(fd, TASKFS_IOC_VM_ALLOCATE, &a) != 0) {
      fprintf(stderr, "region_walk: vm_allocate(%" PRIu64 " bytes): %s\n",
              allocate, strerror(errno));
      close(fd);
      return 1;
    }
    /* vm_allocate takes whole pages: the region is the size rounded up to
     * the task's page size, which st_blksize of mem gives. */
    struct stat st;
    uint64_t page = fstat(fd, &st) == 0 && st.st_blksize > 0
                        ? (uint64_t)st.st_blksize
                        : 4096;
    uint64_t rounded = (a.size + page - 1) / page * page;
    fprintf(stderr, "allocated 0x%" PRIx64 "-0x%" PRIx64 "\n", a.address,
            a.address + rounded);
  }

  uint64_t address = 0;
  for (;;) {
    struct taskfs_vm_region r;
    memset(&r, 0, sizeof r);
    r.address = address;
    if (ioctl(fd, TASKFS_IOC_VM_REGION, &r) != 0) {
      if (errno == ENOMEM) break; /* KERN_NO_SPACE: no region at or above */
      fprintf(stderr, "region_walk: vm_region(0x%" PRIx64 "): %s\n", address,
              strerror(errno));
      close(fd);
      return 1;
    }
    char prot[4], max_prot[4];
    prot_string(r.prot, prot);
    prot_string(r.max_prot, max_prot);
    printf("%016" PRIx64 "-%016" PRIx64 " %s/%s %s\n", r.address,
           r.address + r.size, prot, max_prot, inheritance_name(r.inheritance));
    address = r.address + r.size;
    if (r.size == 0 || address < r.address) break; /* the very top */
  }
  close(fd);
  return fflush(stdout) == 0 ? 0 : 1;
}
