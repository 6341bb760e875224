// The sparse map from page index to physical page inside one VmObject.
#ifndef TASKFS_VMCORE_PAGE_TABLE_H_
#define TASKFS_VMCORE_PAGE_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "vmcore/memory_budget.h"

namespace taskfs::vm {

class Page;

// Chunks of kChunkPages slots, found through a vector sorted by chunk number:
// a dense run of pages costs one pointer each, an unwritten range costs
// nothing, and walking a range touches each chunk once. A lookup first tries
// the one place the chunk is when the object's chunks are consecutive (a
// densely written object), then a binary search of one compact array (a few
// cache lines, where a tree of the same chunks costs a miss per level).
// Chunks are made once per 512 pages, so inserting into the middle of the
// vector is rare.
// A null slot is an unwritten (zero) page.
//
// The chunks and the array are charged to the owner's MemoryAccount, so a
// Reserve past the memory limit throws LimitReached (a std::bad_alloc).
//
// Not thread-safe: guarded by the owning VmObject's lock.
class PageTable {
 public:
  static constexpr std::uint64_t kChunkPages = 512;

  explicit PageTable(MemoryAccount& account)
      : account_(account), chunks_(ChargedAllocator<Entry>(account)) {}
  ~PageTable();
  PageTable(const PageTable&) = delete;
  PageTable& operator=(const PageTable&) = delete;

  Page* Get(std::uint64_t index) const;

  // Creates the chunks holding [lo, hi) so that Slot() on that range cannot
  // fail. May throw std::bad_alloc (LimitReached among them); creating
  // chunks changes no content, and the chunks made before the throw stay
  // until a Trim.
  void Reserve(std::uint64_t lo, std::uint64_t hi);
  // The slot of index, whose chunk must exist (Reserve). Remembers the last
  // chunk, so walking a range costs one map lookup per chunk.
  Page*& Slot(std::uint64_t index);

  // Calls fn(index, page) for each non-null slot in [lo, hi), ascending.
  template <typename Fn>
  void ForEach(std::uint64_t lo, std::uint64_t hi, Fn&& fn) const;

  // Calls fn(page) for every index in [lo, hi), ascending, with nullptr for
  // an unwritten index.
  template <typename Fn>
  void Visit(std::uint64_t lo, std::uint64_t hi, Fn&& fn) const;

  // Empties every slot in [lo, hi), calling fn(page) for each page removed.
  // Keeps the chunks (a Reserve of the range stays good); Trim drops them.
  template <typename Fn>
  void Clear(std::uint64_t lo, std::uint64_t hi, Fn&& fn);
  // Drops the empty chunks that overlap [lo, hi), and the room in the chunk
  // array that the growth to its present size would not have made, so a
  // Trim after a refused Reserve leaves the table as it was.
  void Trim(std::uint64_t lo, std::uint64_t hi) noexcept;

  bool empty() const { return chunks_.empty(); }

 private:
  struct Chunk {
    Page* slots[kChunkPages] = {};
  };
  struct Entry {
    std::uint64_t key;  // index / kChunkPages
    Chunk* chunk;       // owned: made by NewChunk, freed by FreeChunk
  };
  static constexpr std::uint64_t kChunkCharge = sizeof(Chunk) + kHeapOverhead;
  // The position of the lowest entry whose key is at least key.
  std::size_t LowerBound(std::uint64_t key) const;
  Chunk* NewChunk();
  void FreeChunk(Chunk* chunk) noexcept;

  MemoryAccount& account_;
  std::vector<Entry, ChargedAllocator<Entry>> chunks_;  // ascending by key
  std::uint64_t cached_key_ = ~std::uint64_t{0};  // Slot()'s last chunk
  Chunk* cached_chunk_ = nullptr;
};

template <typename Fn>
void PageTable::ForEach(std::uint64_t lo, std::uint64_t hi, Fn&& fn) const {
  if (lo >= hi) return;
  for (auto it = chunks_.begin() + LowerBound(lo / kChunkPages);
       it != chunks_.end() && it->key * kChunkPages < hi; ++it) {
    const std::uint64_t base = it->key * kChunkPages;
    const std::uint64_t from = lo > base ? lo - base : 0;
    const std::uint64_t to = hi - base < kChunkPages ? hi - base : kChunkPages;
    for (std::uint64_t i = from; i < to; ++i) {
      if (Page* page = it->chunk->slots[i]) fn(base + i, page);
    }
  }
}

template <typename Fn>
void PageTable::Visit(std::uint64_t lo, std::uint64_t hi, Fn&& fn) const {
  std::uint64_t index = lo;
  auto it = chunks_.begin() + LowerBound(lo / kChunkPages);
  while (index < hi) {
    const std::uint64_t key = index / kChunkPages;
    const std::uint64_t chunk_end = (key + 1) * kChunkPages;
    const std::uint64_t stop = chunk_end < hi ? chunk_end : hi;
    if (it != chunks_.end() && it->key == key) {
      Page* const* slots = it->chunk->slots;
      for (; index < stop; ++index) fn(slots[index % kChunkPages]);
      ++it;
    } else {
      // No chunk: unwritten up to the next chunk or the end.
      std::uint64_t next = it == chunks_.end() ? hi : it->key * kChunkPages;
      if (next > hi) next = hi;
      for (; index < next; ++index) fn(nullptr);
    }
  }
}

template <typename Fn>
void PageTable::Clear(std::uint64_t lo, std::uint64_t hi, Fn&& fn) {
  if (lo >= hi) return;
  for (auto it = chunks_.begin() + LowerBound(lo / kChunkPages);
       it != chunks_.end() && it->key * kChunkPages < hi; ++it) {
    const std::uint64_t base = it->key * kChunkPages;
    const std::uint64_t from = lo > base ? lo - base : 0;
    const std::uint64_t to = hi - base < kChunkPages ? hi - base : kChunkPages;
    Page** slots = it->chunk->slots;
    for (std::uint64_t i = from; i < to; ++i) {
      if (Page* page = slots[i]) {
        slots[i] = nullptr;
        fn(page);
      }
    }
  }
}

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_PAGE_TABLE_H_
