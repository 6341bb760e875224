/*
 * gen_table: prints taskfs/_table.py, the Python package's copy of what the
 * public headers of include/taskfs/ define: the errno table of
 * <taskfs/errno_table.h> (shared with the daemon and libtaskfs), the KERN_*,
 * VM_PROT_* and VM_INHERIT_* values of <taskfs/mach.h>, the ioctl numbers of
 * <taskfs/ioctl.h> and the struct module format of each of its structs, and
 * the task-name rule of <taskfs/task_name.h>. CMake builds and runs it; the
 * file is never written by hand.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "taskfs/errno_table.h"
#include "taskfs/ioctl.h"
#include "taskfs/mach.h"
#include "taskfs/task_name.h"

/* --- The ioctl structs as struct module formats ---------------------------
 * TASKFS_FIELDS_<struct>(F, s) calls F(s, field) for each field of the
 * struct, in any order: the format lists them by offset. The checks make
 * the format the C layout: each field's letter comes from its type
 * (_Generic: a type other than uint8/16/32/64_t and int32_t does not
 * compile), and the
 * fields' sizes add up to the struct's size (_Static_assert), so no field is
 * left out and there is no padding, since the fields of a struct never
 * overlap. "=" (native byte order, standard sizes, no alignment) then reads
 * the struct byte for byte. A char array (a string) is "<size>s". */
#define TASKFS_IOCTL_STRUCTS(S) \
  S(taskfs_vm_copy)             \
  S(taskfs_vm_allocate)         \
  S(taskfs_vm_deallocate)       \
  S(taskfs_vm_protect)          \
  S(taskfs_vm_inherit)          \
  S(taskfs_vm_region)           \
  S(taskfs_vm_map_copy)         \
  S(taskfs_page_state)          \
  S(taskfs_last_reason)         \
  S(taskfs_vm_remap)            \
  S(taskfs_vm_read_entry)

#define TASKFS_FIELDS_taskfs_vm_copy(F, s) F(s, src) F(s, size) F(s, dst)
#define TASKFS_FIELDS_taskfs_vm_allocate(F, s) \
  F(s, address) F(s, size) F(s, flags) F(s, pad)
#define TASKFS_FIELDS_taskfs_vm_deallocate(F, s) F(s, address) F(s, size)
#define TASKFS_FIELDS_taskfs_vm_protect(F, s) \
  F(s, address) F(s, size) F(s, set_maximum) F(s, prot)
#define TASKFS_FIELDS_taskfs_vm_inherit(F, s) \
  F(s, address) F(s, size) F(s, inheritance) F(s, pad)
#define TASKFS_FIELDS_taskfs_vm_region(F, s) \
  F(s, address) F(s, size) F(s, prot) F(s, max_prot) F(s, inheritance) F(s, pad)
#define TASKFS_FIELDS_taskfs_vm_map_copy(F, s) \
  F(s, src_task_id) F(s, src) F(s, size) F(s, dst) F(s, flags) F(s, pad)
#define TASKFS_FIELDS_taskfs_page_state(F, s) \
  F(s, flags) F(s, mappings) F(s, identity)

/* The page query is a header (address, count) and an array of
 * taskfs_page_state: _table.py gives the header's format and where the
 * array starts; these checks make that the C layout. */
_Static_assert(offsetof(struct taskfs_vm_page_query, pages) ==
                   2 * sizeof(uint64_t),
               "taskfs_vm_page_query: pages follows address and count");
_Static_assert(sizeof(struct taskfs_vm_page_query) ==
                   offsetof(struct taskfs_vm_page_query, pages) +
                       TASKFS_PAGE_QUERY_MAX * sizeof(struct taskfs_page_state),
               "taskfs_vm_page_query: no padding");

/* vm_read_list is a header (count, pad), TASKFS_READ_LIST_MAX
 * taskfs_vm_read_entry and the data area: _table.py gives the header's
 * format, where the entries and the data start, and the size. */
_Static_assert(offsetof(struct taskfs_vm_read_list, entries) ==
                   2 * sizeof(uint32_t),
               "taskfs_vm_read_list: entries follow count and pad");
_Static_assert(offsetof(struct taskfs_vm_read_list, data) ==
                   offsetof(struct taskfs_vm_read_list, entries) +
                       TASKFS_READ_LIST_MAX *
                           sizeof(struct taskfs_vm_read_entry),
               "taskfs_vm_read_list: data follows the entries");
_Static_assert(sizeof(struct taskfs_vm_read_list) ==
                   offsetof(struct taskfs_vm_read_list, data) +
                       TASKFS_READ_LIST_DATA,
               "taskfs_vm_read_list: no padding");
#define TASKFS_FIELDS_taskfs_vm_read_entry(F, s) \
  F(s, address) F(s, size) F(s, kern_return) F(s, pad)

#define TASKFS_FIELDS_taskfs_last_reason(F, s) F(s, seq) F(s, line)
/* clang-format off */
#define TASKFS_FIELDS_taskfs_vm_remap(F, s) \
  F(s, src_task_id) F(s, src_address) F(s, size) F(s, target_address) \
  F(s, flags) F(s, inheritance) F(s, cur_protection) F(s, max_protection)
/* clang-format on */

#define TASKFS_MEMBER(s, f) (((struct s *)0)->f)
/* clang-format off */
#define TASKFS_FORMAT_LETTER(s, f) \
  _Generic(TASKFS_MEMBER(s, f), \
           uint8_t: 'B', uint16_t: 'H', uint32_t: 'I', uint64_t: 'Q', \
           int32_t: 'i', char *: 's')
/* clang-format on */

#define TASKFS_SIZE_TERM(s, f) +sizeof TASKFS_MEMBER(s, f)
#define TASKFS_CHECK_STRUCT(s)                                                 \
  _Static_assert(sizeof(struct s) == 0 TASKFS_FIELDS_##s(TASKFS_SIZE_TERM, s), \
                 "struct " #s ": fields missing from TASKFS_FIELDS_" #s        \
                 ", or padding");
TASKFS_IOCTL_STRUCTS(TASKFS_CHECK_STRUCT)
#undef TASKFS_CHECK_STRUCT
#undef TASKFS_SIZE_TERM

struct field {
  const char *name;
  size_t offset;
  size_t size;
  char letter;
};

static int by_offset(const void *a, const void *b) {
  const size_t x = ((const struct field *)a)->offset;
  const size_t y = ((const struct field *)b)->offset;
  return (x > y) - (x < y);
}

/* Prints one entry of IOCTL_STRUCTS; fields is sorted here. Nonzero if the
 * fields do not tile the struct (which the static checks rule out). */
static int print_struct(const char *name, size_t size, struct field *fields,
                        size_t count) {
  char format[64] = "=";
  size_t used = 1;
  qsort(fields, count, sizeof fields[0], by_offset);
  size_t end = 0;
  for (size_t i = 0; i < count; ++i) {
    if (fields[i].offset != end) {
      fprintf(stderr, "gen_table: struct %s: a gap before %s\n", name,
              fields[i].name);
      return 1;
    }
    end += fields[i].size;
    const int n = fields[i].letter == 's'
                      ? snprintf(format + used, sizeof format - used, "%zus",
                                 fields[i].size)
                      : snprintf(format + used, sizeof format - used, "%c",
                                 fields[i].letter);
    if (n < 0 || (size_t)n >= sizeof format - used) return 1;
    used += (size_t)n;
  }
  if (end != size) {
    fprintf(stderr, "gen_table: struct %s: %zu of its %zu bytes listed\n", name,
            end, size);
    return 1;
  }
  printf("    \"%s\": (\"%s\", %zu, (", name, format, size);
  for (size_t i = 0; i < count; ++i) printf("\"%s\", ", fields[i].name);
  printf(")),\n");
  return 0;
}

int main(void) {
  printf(
      "# Generated at build time by python/gen_table.c from the headers of\n"
      "# include/taskfs/: errno_table.h, mach.h, ioctl.h and task_name.h.\n"
      "# Do not edit.\n\n");
  printf(
      "# (name, kern_return_t, errno), one row per code (docs/reference.md "
      "\xc2\xa7"
      "2).\n");
  printf("KERN_TABLE = (\n");
#define TASKFS_PRINT_ROW(kern, errno_value) \
  printf("    (\"%s\", %d, %d),\n", #kern, (int)(kern), (int)(errno_value));
  TASKFS_ERRNO_TABLE(TASKFS_PRINT_ROW)
#undef TASKFS_PRINT_ROW
  printf(")\n\n");
#define TASKFS_PRINT_INT(name) printf("%s = %d\n", #name, (int)(name));
  TASKFS_PRINT_INT(VM_PROT_NONE)
  TASKFS_PRINT_INT(VM_PROT_READ)
  TASKFS_PRINT_INT(VM_PROT_WRITE)
  TASKFS_PRINT_INT(VM_PROT_EXECUTE)
  TASKFS_PRINT_INT(VM_PROT_DEFAULT)
  TASKFS_PRINT_INT(VM_PROT_ALL)
  TASKFS_PRINT_INT(VM_INHERIT_SHARE)
  TASKFS_PRINT_INT(VM_INHERIT_COPY)
  TASKFS_PRINT_INT(VM_INHERIT_NONE)
  TASKFS_PRINT_INT(VM_INHERIT_DEFAULT)
  TASKFS_PRINT_INT(TASKFS_VM_ALLOCATE_ANYWHERE)
  TASKFS_PRINT_INT(TASKFS_VM_MAP_COPY_DST_ALLOC)
  TASKFS_PRINT_INT(TASKFS_VM_MAP_COPY_SRC_DESTROY)
  TASKFS_PRINT_INT(TASKFS_PAGE_ALLOCATED)
  TASKFS_PRINT_INT(TASKFS_PAGE_RESIDENT)
  TASKFS_PRINT_INT(TASKFS_PAGE_SHARED)
  TASKFS_PRINT_INT(TASKFS_PAGE_QUERY_MAX)
  TASKFS_PRINT_INT(TASKFS_VM_REMAP_ANYWHERE)
  TASKFS_PRINT_INT(TASKFS_VM_REMAP_COPY)
  TASKFS_PRINT_INT(TASKFS_READ_LIST_MAX)
  TASKFS_PRINT_INT(TASKFS_READ_LIST_DATA)
#undef TASKFS_PRINT_INT
#define TASKFS_PRINT_IOC(name) \
  printf("%s = 0x%08lx\n", #name, (unsigned long)(name));
  TASKFS_PRINT_IOC(TASKFS_IOC_VM_COPY)
  TASKFS_PRINT_IOC(TASKFS_IOC_VM_ALLOCATE)
  TASKFS_PRINT_IOC(TASKFS_IOC_VM_DEALLOCATE)
  TASKFS_PRINT_IOC(TASKFS_IOC_VM_PROTECT)
  TASKFS_PRINT_IOC(TASKFS_IOC_VM_INHERIT)
  TASKFS_PRINT_IOC(TASKFS_IOC_VM_REGION)
  TASKFS_PRINT_IOC(TASKFS_IOC_VM_MAP_COPY)
  TASKFS_PRINT_IOC(TASKFS_IOC_VM_PAGE_QUERY)
  TASKFS_PRINT_IOC(TASKFS_IOC_LAST_REASON)
  TASKFS_PRINT_IOC(TASKFS_IOC_VM_REMAP)
  TASKFS_PRINT_IOC(TASKFS_IOC_VM_READ_LIST)
#undef TASKFS_PRINT_IOC

  printf(
      "\n# The ioctl structs: name -> (struct module format, size in bytes,\n"
      "# field names in the format's order).\n");
  printf("IOCTL_STRUCTS = {\n");
#define TASKFS_FIELD_ROW(s, f)                            \
  {#f, offsetof(struct s, f), sizeof TASKFS_MEMBER(s, f), \
   TASKFS_FORMAT_LETTER(s, f)},
#define TASKFS_PRINT_STRUCT(s)                                        \
  {                                                                   \
    struct field fields[] = {TASKFS_FIELDS_##s(TASKFS_FIELD_ROW, s)}; \
    if (print_struct(#s, sizeof(struct s), fields,                    \
                     sizeof fields / sizeof fields[0]) != 0) {        \
      return 1;                                                       \
    }                                                                 \
  }
  TASKFS_IOCTL_STRUCTS(TASKFS_PRINT_STRUCT)
#undef TASKFS_PRINT_STRUCT
#undef TASKFS_FIELD_ROW
  printf("}\n");
  printf(
      "\n# taskfs_vm_page_query: its header (address, count) and its size;\n"
      "# the TASKFS_PAGE_QUERY_MAX taskfs_page_state follow the header.\n");
  printf("PAGE_QUERY_HEADER = \"=QQ\"\n");
  printf("PAGE_QUERY_SIZE = %zu\n", sizeof(struct taskfs_vm_page_query));
  printf(
      "\n# taskfs_vm_read_list: its header (count, pad), where its\n"
      "# TASKFS_READ_LIST_MAX taskfs_vm_read_entry and its data area of\n"
      "# TASKFS_READ_LIST_DATA bytes start, and its size.\n");
  printf("READ_LIST_HEADER = \"=II\"\n");
  printf("READ_LIST_ENTRIES = %zu\n",
         offsetof(struct taskfs_vm_read_list, entries));
  printf("READ_LIST_DATA = %zu\n", offsetof(struct taskfs_vm_read_list, data));
  printf("READ_LIST_SIZE = %zu\n", sizeof(struct taskfs_vm_read_list));

  printf(
      "\n# A task's name (docs/reference.md \xc2\xa7"
      "4): 1 to TASK_NAME_MAX of TASK_NAME_CHARS, not starting\n"
      "# with '.', not TASK_NAME_RESERVED.\n");
  printf("TASK_NAME_MAX = %d\n", TASKFS_TASK_NAME_MAX);
  printf("TASK_NAME_CHARS = \"%s\"\n", TASKFS_TASK_NAME_CHARS);
  printf("TASK_NAME_RESERVED = \"%s\"\n", TASKFS_TASK_NAME_RESERVED);
  printf("TASK_NAME_RULE = \"%s\"\n", TASKFS_TASK_NAME_RULE);
  return ferror(stdout) ? 1 : 0;
}
