// The generated files of a task (maps, status, errors: docs/reference.md §4,
// §7) as an open file reads them: a read from offset 0 takes a fresh snapshot
// of the text, which the open file keeps (and is charged for, fs/open_file.h),
// and reads at later offsets continue it, so that a reader sees one text.
#ifndef TASKFS_FS_GENERATED_FILES_H_
#define TASKFS_FS_GENERATED_FILES_H_

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "fs/node_table.h"
#include "fs/open_file.h"
#include "vmcore/kern_return.h"

namespace taskfs::fs {

// The part of text a read of size bytes at off returns: empty at or past
// its end, or for a negative off.
std::string_view TextPart(std::string_view text, off_t off, std::size_t size);

// A read of size bytes at off (not negative) of file, a maps, status or
// errors file: its part of the snapshot in *part. The snapshot is taken
// afresh by a read at offset 0, or when the file holds none. An errors file
// has no snapshot: it reads the task's log at off (ErrorLog::Read), moved on
// past forgotten lines as docs/reference.md §7.3 says. KERN_SUCCESS;
// KERN_INVALID_TASK once the task is removed (the rest of a snapshot is
// I/O on the task too, docs/reference.md §4); KERN_RESOURCE_SHORTAGE if the
// memory limit refuses the snapshot; or the core's code for a snapshot it could
// not make. Takes file.mu.
vm::KernReturn ReadGenerated(const NodeTable& nodes, OpenFile& file, off_t off,
                             std::size_t size, std::string* part);

}  // namespace taskfs::fs

#endif  // TASKFS_FS_GENERATED_FILES_H_
