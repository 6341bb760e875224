#include "vmcore/page_table.h"

#include <algorithm>
#include <bit>

namespace taskfs::vm {

std::size_t PageTable::LowerBound(std::uint64_t key) const {
  // Most objects are written densely from their start, their chunks then
  // being consecutive: try where key would be if they are, one cache line
  // instead of a binary search's chain of dependent loads.
  if (!chunks_.empty() && key >= chunks_.front().key) {
    const std::uint64_t guess = key - chunks_.front().key;
    if (guess < chunks_.size() && chunks_[guess].key == key) return guess;
  }
  const auto it = std::lower_bound(
      chunks_.begin(), chunks_.end(), key,
      [](const Entry& entry, std::uint64_t k) { return entry.key < k; });
  return static_cast<std::size_t>(it - chunks_.begin());
}

PageTable::~PageTable() {
  for (const Entry& entry : chunks_) FreeChunk(entry.chunk);
}

PageTable::Chunk* PageTable::NewChunk() {
  account_.Charge(kChunkCharge);
  try {
    return new Chunk;
  } catch (...) {
    account_.Release(kChunkCharge);
    throw;
  }
}

void PageTable::FreeChunk(Chunk* chunk) noexcept {
  delete chunk;
  account_.Release(kChunkCharge);
}

Page* PageTable::Get(std::uint64_t index) const {
  const std::uint64_t key = index / kChunkPages;
  const std::size_t at = LowerBound(key);
  if (at == chunks_.size() || chunks_[at].key != key) return nullptr;
  return chunks_[at].chunk->slots[index % kChunkPages];
}

void PageTable::Reserve(std::uint64_t lo, std::uint64_t hi) {
  if (lo >= hi) return;
  for (std::uint64_t c = lo / kChunkPages; c <= (hi - 1) / kChunkPages; ++c) {
    if (c == cached_key_) continue;
    const std::size_t at = LowerBound(c);
    if (at == chunks_.size() || chunks_[at].key != c) {
      // Either step may throw; neither leaves a change behind.
      Chunk* chunk = NewChunk();
      try {
        chunks_.insert(chunks_.begin() + static_cast<std::ptrdiff_t>(at),
                       Entry{c, chunk});
      } catch (...) {
        FreeChunk(chunk);
        throw;
      }
    }
    cached_key_ = c;
    cached_chunk_ = chunks_[at].chunk;
  }
}

Page*& PageTable::Slot(std::uint64_t index) {
  const std::uint64_t key = index / kChunkPages;
  if (key != cached_key_) {
    cached_chunk_ = chunks_[LowerBound(key)].chunk;
    cached_key_ = key;
  }
  return cached_chunk_->slots[index % kChunkPages];
}

void PageTable::Trim(std::uint64_t lo, std::uint64_t hi) noexcept {
  if (lo >= hi) return;
  const auto from = chunks_.begin() +
                    static_cast<std::ptrdiff_t>(LowerBound(lo / kChunkPages));
  auto to = from;
  while (to != chunks_.end() && to->key * kChunkPages < hi) ++to;
  const auto kept = std::remove_if(from, to, [this](const Entry& entry) {
    for (const Page* page : entry.chunk->slots) {
      if (page != nullptr) return false;
    }
    if (cached_chunk_ == entry.chunk) cached_key_ = ~std::uint64_t{0};
    FreeChunk(entry.chunk);
    return true;
  });
  if (kept == to) return;
  chunks_.erase(kept, to);
  // The array grows by doubling from one entry, one insertion at a time, so
  // its capacity is the power of two at or above its size; giving back what
  // is above keeps it so. Then trimming the chunks a refused write or copy
  // reserved leaves the array, and what it is charged, as it was before
  // (all or nothing). Shrinking allocates: if that fails, the larger array
  // stays, which is correct, only bigger.
  const std::size_t fit = chunks_.empty() ? 0 : std::bit_ceil(chunks_.size());
  if (chunks_.capacity() <= fit) return;
  try {
    std::vector<Entry, ChargedAllocator<Entry>> smaller(
        chunks_.get_allocator());
    smaller.reserve(fit);
    smaller.assign(chunks_.begin(), chunks_.end());
    chunks_.swap(smaller);
  } catch (...) {
  }
}

}  // namespace taskfs::vm
