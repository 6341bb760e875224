/* The Mach result codes of the VM core, listed once: X(name, value) for each.
 * Plain preprocessor text, so a C header can expand the same list. The values
 * are Mach's own (XNU's osfmk/mach/kern_return.h). */
#ifndef TASKFS_VMCORE_KERN_RETURN_LIST_H_
#define TASKFS_VMCORE_KERN_RETURN_LIST_H_

#define TASKFS_KERN_RETURNS(X)  \
  X(KERN_SUCCESS, 0)            \
  X(KERN_INVALID_ADDRESS, 1)    \
  X(KERN_PROTECTION_FAILURE, 2) \
  X(KERN_NO_SPACE, 3)           \
  X(KERN_INVALID_ARGUMENT, 4)   \
  X(KERN_FAILURE, 5)            \
  X(KERN_RESOURCE_SHORTAGE, 6)  \
  X(KERN_NAME_EXISTS, 13)       \
  X(KERN_INVALID_TASK, 16)

#endif /* TASKFS_VMCORE_KERN_RETURN_LIST_H_ */
