/*
 * <taskfs_ioctl.h>: the name taskfs(1) has always given the mem file's
 * ioctls; they are defined in <taskfs/ioctl.h>, which this includes.
 */
#ifndef TASKFS_TASKFS_IOCTL_H_
#define TASKFS_TASKFS_IOCTL_H_

#include "taskfs/ioctl.h"

#endif /* TASKFS_TASKFS_IOCTL_H_ */
