/*
 * hold_memory: the Linux side of bench/perf_compare.py.
 *
 *   hold_memory MIB
 *
 * Maps MIB MiB of anonymous memory, writes every page (so every page is
 * resident and private to this process, as a taskfs task's written range is),
 * prints "PID 0xADDRESS\n" on stdout and flushes, then waits until stdin
 * reaches end of file and exits 0. While it waits, /proc/PID/mem at ADDRESS
 * is the range a benchmark reads and writes for comparison with taskfs's mem.
 * Exits 1 with a message on stderr if the memory cannot be had.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s MIB\n", argv[0]);
    return 2;
  }
  char* end = NULL;
  errno = 0;
  const unsigned long long mib = strtoull(argv[1], &end, 10);
  if (errno != 0 || end == argv[1] || *end != '\0' || mib == 0 ||
      mib > (SIZE_MAX >> 20)) {
    fprintf(stderr, "hold_memory: bad size '%s' (MiB)\n", argv[1]);
    return 2;
  }
  const size_t size = (size_t)mib << 20;
  const long page = sysconf(_SC_PAGESIZE);
  unsigned char* buf = mmap(NULL, size, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buf == MAP_FAILED) {
    fprintf(stderr, "hold_memory: mmap %llu MiB: %s\n", mib, strerror(errno));
    return 1;
  }
  /* Every page written, with bytes that are not all zero. */
  for (size_t off = 0; off < size; off += (size_t)page) {
    memset(buf + off, (int)(0x5a ^ (off >> 12)), (size_t)page);
  }
  printf("%ld 0x%llx\n", (long)getpid(), (unsigned long long)(uintptr_t)buf);
  fflush(stdout);

  char sink[256];
  for (;;) {
    const ssize_t n = read(STDIN_FILENO, sink, sizeof sink);
    if (n == 0) break;
    if (n < 0 && errno != EINTR) break;
  }
  munmap(buf, size);
  return 0;
}
