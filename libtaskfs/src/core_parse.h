/* The one C reader of ELF64 core files for restore (docs/reference.md
 * §10.2), compiled into libtaskfs and into the daemon (a manifest's `core`
 * line). Standard C and POSIX only. */
#ifndef TASKFS_LIBTASKFS_CORE_PARSE_H_
#define TASKFS_LIBTASKFS_CORE_PARSE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One PT_LOAD: [address, address + memsz) holds the file's
 * [offset, offset + filesz), then zeros. prot from p_flags; max_prot and
 * inheritance from the TASKFS note, else VM_PROT_ALL and VM_INHERIT_COPY. */
struct taskfs_core_segment {
  uint64_t index; /* its place among the file's PT_LOADs */
  uint64_t offset;
  uint64_t address;
  uint64_t filesz;
  uint64_t memsz;
  uint32_t prot;
  uint32_t max_prot;
  uint32_t inheritance;
};

/* Reads the core file open at fd. On success returns 0 with *out a
 * malloc'd array of *count segments ascending by address (free() it).
 * A malformed core returns -1 with what is wrong and where ("segment 3:
 * ...") in error (error_size bytes, NUL-terminated); a failed read, -1 with
 * errno's text there and errno set; out of memory, -1 and ENOMEM. */
int taskfs_core_parse(int fd, struct taskfs_core_segment** out, size_t* count,
                      char* error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif /* TASKFS_LIBTASKFS_CORE_PARSE_H_ */
