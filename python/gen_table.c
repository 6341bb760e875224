/*
 * gen_table: prints taskfs/_table.py, the Python package's copy of the
 * numbers defined in C: the errno table of fs/errno_table.h (shared with the
 * daemon and libtaskfs), the KERN_*, VM_PROT_* and VM_INHERIT_* values of
 * <taskfs/mach.h> and the ioctl numbers of fs/taskfs_ioctl.h. CMake builds
 * and runs it; the file is never written by hand.
 */
#include <stdio.h>

#include "fs/errno_table.h"
#include "fs/taskfs_ioctl.h"
#include "taskfs/mach.h"

int main(void) {
  printf(
      "# Generated at build time by python/gen_table.c from fs/errno_table.h,\n"
      "# <taskfs/mach.h> and fs/taskfs_ioctl.h. Do not edit.\n\n");
  printf(
      "# (name, kern_return_t, errno), one row per code (SPEC \xc2\xa7"
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
#undef TASKFS_PRINT_IOC
  return ferror(stdout) ? 1 : 0;
}
