/*
 * region_walk_mach: region_walk.c written to Mach's interface with libtaskfs.
 *
 * Usage: region_walk_mach [--allocate SIZE] TASK_DIR
 *
 * Prints one line per region of the task in the format of its maps file
 *
 *     0000000000400000-0000000000410000 r-x/rwx copy
 *
 * by calling vm_region for the region holding (or else the first one above)
 * an address, from 0 and then from the end of each region found, until it
 * returns KERN_NO_SPACE (no region above). So the output equals
 * `cat TASK_DIR/maps`, as region_walk's does. TASK_DIR may also be given as
 * its mem file.
 *
 * With --allocate SIZE it first calls vm_allocate(anywhere) for SIZE bytes
 * (SIZE takes K, M, G suffixes) and reports the page-rounded range on
 * stderr, so stdout stays a copy of maps.
 *
 * Build: cc -Wall -Werror -o region_walk_mach examples/region_walk_mach.c \
 *            $(pkg-config --cflags --libs taskfs)
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <taskfs/mach.h>

static void prot_string(vm_prot_t prot, char out[4]) {
  out[0] = (prot & VM_PROT_READ) ? 'r' : '-';
  out[1] = (prot & VM_PROT_WRITE) ? 'w' : '-';
  out[2] = (prot & VM_PROT_EXECUTE) ? 'x' : '-';
  out[3] = '\0';
}

static const char *inheritance_name(vm_inherit_t inheritance) {
  switch (inheritance) {
    case VM_INHERIT_SHARE:
      return "share";
    case VM_INHERIT_COPY:
      return "copy";
    case VM_INHERIT_NONE:
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

/* The task's page size, from the page_size line of its status file. */
static uint64_t page_size(const char *task_dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/status", task_dir);
  FILE *f = fopen(path, "r");
  char line[256];
  uint64_t page = 4096;
  while (f != NULL && fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, "page_size: ", 11) == 0)
      page = strtoull(line + 11, NULL, 10);
  }
  if (f != NULL) fclose(f);
  return page;
}

static int usage(void) {
  fprintf(stderr, "usage: region_walk_mach [--allocate SIZE] TASK_DIR\n");
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
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", argv[arg]);
  size_t len = strlen(dir);
  if (len >= 4 && strcmp(dir + len - 4, "/mem") == 0) dir[len - 4] = '\0';

  task_t task;
  kern_return_t kr = taskfs_task_open(dir, &task);
  if (kr != KERN_SUCCESS) {
    fprintf(stderr, "region_walk_mach: %s: %s\n", dir, mach_error_string(kr));
    return 1;
  }

  if (allocate != 0) {
    vm_address_t address = 0;
    kr = vm_allocate(task, &address, (vm_size_t)allocate, TRUE);
    if (kr != KERN_SUCCESS) {
      fprintf(stderr, "region_walk_mach: vm_allocate(%llu bytes): %s\n",
              (unsigned long long)allocate, mach_error_string(kr));
      taskfs_task_close(task);
      return 1;
    }
    /* vm_allocate takes whole pages of the task. */
    const uint64_t page = page_size(dir);
    const uint64_t rounded = (allocate + page - 1) / page * page;
    fprintf(stderr, "allocated 0x%llx-0x%llx\n", (unsigned long long)address,
            (unsigned long long)(address + rounded));
  }

  vm_address_t address = 0;
  for (;;) {
    vm_size_t size = 0;
    vm_prot_t prot, max_prot;
    vm_inherit_t inheritance;
    boolean_t shared;
    mach_port_t object_name;
    vm_offset_t offset;
    kr = vm_region(task, &address, &size, &prot, &max_prot, &inheritance,
                   &shared, &object_name, &offset);
    if (kr == KERN_NO_SPACE) break; /* no region at or above address */
    if (kr != KERN_SUCCESS) {
      fprintf(stderr, "region_walk_mach: vm_region(0x%llx): %s\n",
              (unsigned long long)address, mach_error_string(kr));
      taskfs_task_close(task);
      return 1;
    }
    char p[4], m[4];
    prot_string(prot, p);
    prot_string(max_prot, m);
    printf("%016llx-%016llx %s/%s %s\n", (unsigned long long)address,
           (unsigned long long)(address + size), p, m,
           inheritance_name(inheritance));
    if (size == 0 || address + size < address) break; /* the very top */
    address += size;
  }
  taskfs_task_close(task);
  return fflush(stdout) == 0 ? 0 : 1;
}
