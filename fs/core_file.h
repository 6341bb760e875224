// A task's core file (docs/reference.md §10): the ELF64 ET_CORE image of a
// copy-on-write snapshot of the task taken at open.
//
// CoreLayout is the file's shape, a pure function of the regions: the ELF
// header, program headers and the TASKFS note as bytes, then one segment per
// region at a page-aligned offset. CoreFile pairs a layout with the hidden
// snapshot task whose pages the segments read.
#ifndef TASKFS_FS_CORE_FILE_H_
#define TASKFS_FS_CORE_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vmcore/kern_result.h"
#include "vmcore/page_range.h"
#include "vmcore/task.h"
#include "vmcore/vm_types.h"

namespace taskfs::fs {

// The note's name and type (docs/reference.md §10).
inline constexpr char kCoreNoteName[] = "TASKFS";
inline constexpr std::uint32_t kCoreNoteType = 0x54460001;
inline constexpr std::uint32_t kCoreNoteVersion = 1;

// One PT_LOAD of the file: its bytes [offset, offset + file_size) are the
// snapshot's [address, address + file_size).
struct CoreSegment {
  std::uint64_t offset = 0;
  vm::vm_address_t address = 0;
  std::uint64_t file_size = 0;  // the region's size, or 0 without read
};

struct CoreLayout {
  std::string header;                 // ELF header, program headers and note
  std::vector<CoreSegment> segments;  // one per region, ascending offsets
  std::uint64_t size = 0;             // the file's size
};

// The layout of the core of regions (ascending, as vm_region_list lists
// them) in geometry.
CoreLayout MakeCoreLayout(const vm::Geometry& geometry,
                          const std::vector<vm::RegionInfo>& regions);

// A piece of the file: header bytes, zeros (padding), or a segment's.
struct CorePiece {
  enum Kind { kHeader, kZeros, kSegment } kind = kZeros;
  std::uint64_t offset = 0;  // the file offset where the piece starts
  std::uint64_t size = 0;    // bytes of the file from offset
  const CoreSegment* segment = nullptr;  // for kSegment
};
// The pieces of [offset, offset + size) clipped at the file's end, in order.
std::vector<CorePiece> CorePieces(const CoreLayout& layout,
                                  std::uint64_t offset, std::uint64_t size);

// The open core file: its layout and the snapshot (vm::task_snapshot).
// Constant once made; safe to read from any thread.
struct CoreFile {
  std::shared_ptr<vm::Task> snapshot;
  CoreLayout layout;

  // The snapshot of task and its layout. KERN_RESOURCE_SHORTAGE at the
  // memory limit, with nothing held.
  static vm::KernResult<std::shared_ptr<const CoreFile>> Take(vm::Task& task);

  // SEEK_DATA (data true) or SEEK_HOLE from offset: the lowest offset at
  // or above it that holds data (the header, or a written page of a
  // segment) or that is a hole (padding, or a never-written page; the file's
  // end counts as a hole). nullopt for SEEK_DATA with no data at or above
  // offset, and for an offset at or past the end.
  std::optional<std::uint64_t> Seek(std::uint64_t offset, bool data) const;
};

// st_size and st_blocks (512-byte units) of the core of task as it is now:
// the size of its layout and its readable regions' written memory.
// KERN_INVALID_TASK for a removed task.
struct CoreSize {
  std::uint64_t size = 0;
  std::uint64_t blocks = 0;
};
vm::KernResult<CoreSize> MeasureCore(vm::Task& task);

}  // namespace taskfs::fs

#endif  // TASKFS_FS_CORE_FILE_H_
