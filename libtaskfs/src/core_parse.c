#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pread */
#endif
#include "core_parse.h"

#include <elf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "taskfs/vm_attributes.h"

#define TASKFS_NOTE_TYPE 0x54460001u

static int Bad(char* error, size_t size, const char* format, ...) {
  va_list args;
  va_start(args, format);
  vsnprintf(error, size, format, args);
  va_end(args);
  errno = EINVAL;
  return -1;
}

/* Reads [offset, offset + n) into buf: 0, or -1 with the error written. */
static int ReadAt(int fd, uint64_t file_size, void* buf, uint64_t n,
                  uint64_t offset, const char* what, char* error, size_t size) {
  if (offset > file_size || n > file_size - offset) {
    return Bad(error, size,
               "%s [%#llx, %#llx) lies beyond the end of the file (%#llx "
               "bytes)",
               what, (unsigned long long)offset,
               (unsigned long long)(offset + n), (unsigned long long)file_size);
  }
  uint64_t done = 0;
  while (done < n) {
    ssize_t got =
        pread(fd, (char*)buf + done, n - done, (off_t)(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      int saved = got < 0 ? errno : EIO;
      snprintf(error, size, "%s: %s", what, strerror(saved));
      errno = saved;
      return -1;
    }
    done += (uint64_t)got;
  }
  return 0;
}

static uint32_t ProtOf(uint32_t flags) {
  return ((flags & PF_R) ? TASKFS_VM_PROT_READ : 0) |
         ((flags & PF_W) ? TASKFS_VM_PROT_WRITE : 0) |
         ((flags & PF_X) ? TASKFS_VM_PROT_EXECUTE : 0);
}

static int ByAddress(const void* a, const void* b) {
  const struct taskfs_core_segment* x = a;
  const struct taskfs_core_segment* y = b;
  return x->address < y->address ? -1 : x->address > y->address;
}

/* Applies the TASKFS note in notes (n bytes) to segs, if it holds one. */
static int ApplyNote(const unsigned char* notes, uint64_t n,
                     struct taskfs_core_segment* segs, size_t count,
                     char* error, size_t size) {
  uint64_t at = 0;
  while (at + sizeof(Elf64_Nhdr) <= n) {
    Elf64_Nhdr nh;
    memcpy(&nh, notes + at, sizeof nh);
    uint64_t name_at = at + sizeof nh;
    uint64_t desc_at = name_at + (((uint64_t)nh.n_namesz + 3) & ~3ull);
    uint64_t next = desc_at + (((uint64_t)nh.n_descsz + 3) & ~3ull);
    if (next > n) break;
    if (nh.n_namesz == 7 && memcmp(notes + name_at, "TASKFS", 7) == 0 &&
        nh.n_type == TASKFS_NOTE_TYPE) {
      uint64_t regions = 0;
      if (nh.n_descsz < 24) return Bad(error, size, "TASKFS note: truncated");
      memcpy(&regions, notes + desc_at + 16, 8);
      if (regions != count || nh.n_descsz < 24 + 24 * (uint64_t)count) {
        return Bad(error, size, "TASKFS note: %llu regions for %zu segments",
                   (unsigned long long)regions, count);
      }
      for (size_t i = 0; i < count; ++i) {
        const unsigned char* r = notes + desc_at + 24 + 24 * i;
        uint64_t start, length;
        memcpy(&start, r, 8);
        memcpy(&length, r + 8, 8);
        if (start != segs[i].address || length != segs[i].memsz) {
          return Bad(error, size,
                     "segment %zu: the TASKFS note says %#llx+%#llx", i,
                     (unsigned long long)start, (unsigned long long)length);
        }
        memcpy(&segs[i].max_prot, r + 16, 4);
        memcpy(&segs[i].inheritance, r + 20, 4);
      }
    }
    at = next;
  }
  return 0;
}

int taskfs_core_parse(int fd, struct taskfs_core_segment** out, size_t* count,
                      char* error, size_t size) {
  *out = NULL;
  *count = 0;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    snprintf(error, size, "%s", strerror(errno));
    return -1;
  }
  const uint64_t file_size = (uint64_t)st.st_size;
  Elf64_Ehdr eh;
  if (file_size < sizeof eh) {
    return Bad(error, size, "truncated: %llu bytes, shorter than an ELF header",
               (unsigned long long)file_size);
  }
  if (ReadAt(fd, file_size, &eh, sizeof eh, 0, "the ELF header", error, size))
    return -1;
  if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
    return Bad(error, size, "bad magic: not an ELF file");
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
    return Bad(error, size, "not a little-endian ELF64 file");
  if (eh.e_type != ET_CORE)
    return Bad(error, size, "e_type %u is not ET_CORE (4)", eh.e_type);
  if (eh.e_phentsize != sizeof(Elf64_Phdr))
    return Bad(error, size, "e_phentsize %u is not %zu", eh.e_phentsize,
               sizeof(Elf64_Phdr));
  uint64_t phnum = eh.e_phnum;
  if (phnum == PN_XNUM) {
    Elf64_Shdr sh;
    if (ReadAt(fd, file_size, &sh, sizeof sh, eh.e_shoff, "section header 0",
               error, size))
      return -1;
    phnum = sh.sh_info;
  }
  if (phnum > file_size / sizeof(Elf64_Phdr))
    return Bad(error, size, "%llu program headers do not fit in the file",
               (unsigned long long)phnum);
  Elf64_Phdr* ph = malloc(phnum * sizeof *ph + 1);
  struct taskfs_core_segment* segs = calloc(phnum + 1, sizeof *segs);
  unsigned char* notes = NULL;
  uint64_t notes_size = 0;
  int rc = -1;
  if (ph == NULL || segs == NULL) {
    snprintf(error, size, "%s", strerror(ENOMEM));
    errno = ENOMEM;
    goto done;
  }
  if (ReadAt(fd, file_size, ph, phnum * sizeof *ph, eh.e_phoff,
             "the program headers", error, size))
    goto done;
  size_t n = 0;
  for (uint64_t i = 0; i < phnum; ++i) {
    if (ph[i].p_type == PT_NOTE && notes == NULL) {
      if (ph[i].p_offset > file_size ||
          ph[i].p_filesz > file_size - ph[i].p_offset) {
        Bad(error, size,
            "program header %llu: the note lies beyond the end "
            "of the file",
            (unsigned long long)i);
        goto done;
      }
      notes_size = ph[i].p_filesz;
      notes = malloc(notes_size + 1);
      if (notes == NULL) {
        snprintf(error, size, "%s", strerror(ENOMEM));
        errno = ENOMEM;
        goto done;
      }
      if (ReadAt(fd, file_size, notes, notes_size, ph[i].p_offset, "the note",
                 error, size))
        goto done;
    } else if (ph[i].p_type == PT_LOAD) {
      const Elf64_Phdr* p = &ph[i];
      if (p->p_filesz > p->p_memsz) {
        Bad(error, size, "segment %zu: p_filesz %#llx exceeds p_memsz %#llx", n,
            (unsigned long long)p->p_filesz, (unsigned long long)p->p_memsz);
        goto done;
      }
      if (p->p_offset > file_size || p->p_filesz > file_size - p->p_offset) {
        Bad(error, size,
            "segment %zu: bytes [%#llx, %#llx) lie beyond the end of the file "
            "(%#llx bytes)",
            n, (unsigned long long)p->p_offset,
            (unsigned long long)(p->p_offset + p->p_filesz),
            (unsigned long long)file_size);
        goto done;
      }
      if (p->p_vaddr + p->p_memsz < p->p_vaddr &&
          p->p_vaddr + p->p_memsz != 0) {
        Bad(error, size, "segment %zu: %#llx+%#llx wraps", n,
            (unsigned long long)p->p_vaddr, (unsigned long long)p->p_memsz);
        goto done;
      }
      segs[n].index = n;
      segs[n].offset = p->p_offset;
      segs[n].address = p->p_vaddr;
      segs[n].filesz = p->p_filesz;
      segs[n].memsz = p->p_memsz;
      segs[n].prot = ProtOf(p->p_flags);
      segs[n].max_prot = TASKFS_VM_PROT_ALL;
      segs[n].inheritance = TASKFS_VM_INHERIT_COPY;
      ++n;
    }
  }
  /* Overlaps first, by address; then the note, by index. */
  struct taskfs_core_segment* sorted = malloc((n + 1) * sizeof *sorted);
  if (sorted == NULL) {
    snprintf(error, size, "%s", strerror(ENOMEM));
    errno = ENOMEM;
    goto done;
  }
  memcpy(sorted, segs, n * sizeof *segs);
  qsort(sorted, n, sizeof *sorted, ByAddress);
  for (size_t i = 1; i < n; ++i) {
    const struct taskfs_core_segment* a = &sorted[i - 1];
    const struct taskfs_core_segment* b = &sorted[i];
    if (a->address + a->memsz > b->address) {
      Bad(error, size,
          "segment %llu: %#llx overlaps segment %llu (%#llx-%#llx)",
          (unsigned long long)b->index, (unsigned long long)b->address,
          (unsigned long long)a->index, (unsigned long long)a->address,
          (unsigned long long)(a->address + a->memsz));
      free(sorted);
      goto done;
    }
  }
  free(sorted);
  if (notes != NULL && ApplyNote(notes, notes_size, segs, n, error, size))
    goto done;
  qsort(segs, n, sizeof *segs, ByAddress);
  *out = segs;
  *count = n;
  segs = NULL;
  rc = 0;
done:
  free(ph);
  free(segs);
  free(notes);
  return rc;
}
