// A save of tasks as one byte stream, and the tasks built again from it
// (docs/reference.md §10, "-o state=DIR"): their names in order, their
// regions, every written page, and the sharing between them.
//
// The stream: 8 bytes of magic "TASKFSST", a little-endian u32 format
// version (kStateVersion), then records, each a u32 type, a u32 payload size,
// the payload and a u32 CRC-32C of the three before it. The first record
// holds the page size and the address bits, the last counts what came
// before; between them each task is a task record followed by its entries,
// and an object's pages come right after the first entry that maps it. Each
// distinct page is written once, with an id; every other slot holding it
// names that id; likewise each page-table node held by more than one slot,
// where a save's ranges reach it whole. So objects shared by `share` regions
// stay one object, pages shared copy-on-write stay one page, and subtrees
// of page tables shared by copies and forks stay one subtree.
#ifndef TASKFS_VMCORE_SAVED_STATE_H_
#define TASKFS_VMCORE_SAVED_STATE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vmcore/task.h"
#include "vmcore/vm_system.h"

namespace taskfs::vm {

inline constexpr char kStateMagic[8] = {'T', 'A', 'S', 'K', 'F', 'S', 'S', 'T'};
// The version a save is written in, and the oldest one read (version 1
// has no records of shared page-table nodes).
inline constexpr std::uint32_t kStateVersion = 2;
inline constexpr std::uint32_t kOldestStateVersion = 1;

// Where a save goes. Write: false when the bytes could not be written; the
// save then stops, and the sink knows why.
class StateSink {
 public:
  virtual ~StateSink() = default;
  virtual bool Write(const void* data, std::size_t size) = 0;
};

// Where a save comes from. Read: up to size bytes into data, and how many
// came (fewer than size only at the end), or -1 on an error (the source
// knows why).
class StateSource {
 public:
  virtual ~StateSource() = default;
  virtual std::ptrdiff_t Read(void* data, std::size_t size) = 0;
};

// A task to save and the caller's bytes to keep with it (up to 64 KiB:
// the file system's owners and modes).
struct SavedTask {
  std::shared_ptr<Task> task;
  std::string extra;
};

// Writes tasks, all of system, to sink, in the order given (a terminated one is
// left out). Holds every task's lock shared, and every object's, for the whole
// save: reads go on, changes wait until it ends, and the save is one moment of
// all of them. Needs no memory per page: pages and objects are told apart
// by marks (vm_statistics.h: ReservedMarks), so it works at the memory
// limit. Returns "" or a one-line reason (the sink's refusal: "write
// failed"). Requires the caller to hold no task or object lock.
std::string SaveState(VmSystem& system, const std::vector<SavedTask>& tasks,
                      StateSink& sink);

// Reads a save from source and makes its tasks in system, in the saved
// order, calling made(task, extra) for each once its map is complete (a
// std::bad_alloc from made is reported as the core's own are).
// system should have no task of a saved name. Returns "" or a one-line
// reason naming the problem and the byte offset where it was found (an
// unknown version, a bad checksum, a truncated save, a value out of range,
// the memory limit); then the tasks made so far are still there and the
// caller discards the system.
std::string RestoreState(VmSystem& system, StateSource& source,
                         const std::function<void(const std::shared_ptr<Task>&,
                                                  std::string_view)>& made);

// The CRC-32C (Castagnoli) of data, continuing from crc (0 to start).
std::uint32_t Crc32c(std::uint32_t crc, const void* data, std::size_t size);

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_SAVED_STATE_H_
