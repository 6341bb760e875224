/*
 * rand_read: random 4 KiB reads, the small-request figure of
 * bench/perf_compare.py.
 *
 *   rand_read FILE BASE SIZE COUNT [SEED]
 *
 * Opens FILE read-only and makes COUNT preads of 4096 bytes, each at a
 * page-aligned offset drawn uniformly from [BASE, BASE + SIZE), into one
 * page-aligned buffer (so a direct-I/O FUSE file sees one 4 KiB request per
 * read). BASE and SIZE are decimal or 0x hex bytes; BASE must be page-aligned
 * and SIZE at least one page. Prints one line on stdout:
 *
 *   reads_per_second R seconds S reads N
 *
 * and exits 0; a failed or short read ends it with a message on stderr and
 * exit status 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { kReadSize = 4096 };

static int parse_u64(const char* text, uint64_t* out) {
  char* end = NULL;
  errno = 0;
  if (text[0] == '-' || text[0] == '+') return 0;
  const unsigned long long v = strtoull(text, &end, 0);
  if (errno != 0 || end == text || *end != '\0') return 0;
  *out = v;
  return 1;
}

/* splitmix64: a small, seeded, good-enough generator. */
static uint64_t next_random(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
  uint64_t base, size, count, seed = 1;
  if (argc < 5 || argc > 6 || !parse_u64(argv[2], &base) ||
      !parse_u64(argv[3], &size) || !parse_u64(argv[4], &count) ||
      (argc == 6 && !parse_u64(argv[5], &seed))) {
    fprintf(stderr, "usage: %s FILE BASE SIZE COUNT [SEED]\n", argv[0]);
    return 2;
  }
  if (base % kReadSize != 0 || size < kReadSize) {
    fprintf(stderr, "rand_read: BASE must be page-aligned, SIZE >= 4096\n");
    return 2;
  }
  const int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "rand_read: %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  void* buf = NULL;
  if (posix_memalign(&buf, kReadSize, kReadSize) != 0) {
    fprintf(stderr, "rand_read: out of memory\n");
    return 1;
  }
  memset(buf, 0, kReadSize);
  const uint64_t pages = size / kReadSize;
  uint64_t state = seed;

  const double start = now_seconds();
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t off = base + (next_random(&state) % pages) * kReadSize;
    const ssize_t n = pread(fd, buf, kReadSize, (off_t)off);
    if (n != kReadSize) {
      fprintf(stderr, "rand_read: pread at 0x%llx: %s\n",
              (unsigned long long)off, n < 0 ? strerror(errno) : "short read");
      return 1;
    }
  }
  const double seconds = now_seconds() - start;

  printf("reads_per_second %.1f seconds %.6f reads %llu\n",
         seconds > 0 ? (double)count / seconds : 0.0, seconds,
         (unsigned long long)count);
  free(buf);
  close(fd);
  return 0;
}
