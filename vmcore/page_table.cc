#include "vmcore/page_table.h"

namespace taskfs::vm {

Page* PageTable::Get(std::uint64_t index) const {
  auto it = chunks_.find(index / kChunkPages);
  return it == chunks_.end() ? nullptr : it->second->slots[index % kChunkPages];
}

void PageTable::Reserve(std::uint64_t lo, std::uint64_t hi) {
  if (lo >= hi) return;
  for (std::uint64_t c = lo / kChunkPages; c <= (hi - 1) / kChunkPages; ++c) {
    if (c == cached_key_) continue;
    auto [it, inserted] = chunks_.try_emplace(c);
    if (inserted) {
      try {
        it->second = std::make_unique<Chunk>();
      } catch (...) {
        chunks_.erase(it);
        throw;
      }
    }
    cached_key_ = c;
    cached_chunk_ = it->second.get();
  }
}

Page*& PageTable::Slot(std::uint64_t index) {
  const std::uint64_t key = index / kChunkPages;
  if (key != cached_key_) {
    cached_chunk_ = chunks_.find(key)->second.get();
    cached_key_ = key;
  }
  return cached_chunk_->slots[index % kChunkPages];
}

void PageTable::Trim(std::uint64_t lo, std::uint64_t hi) {
  if (lo >= hi) return;
  auto it = chunks_.lower_bound(lo / kChunkPages);
  while (it != chunks_.end() && it->first * kChunkPages < hi) {
    bool empty = true;
    for (Page* page : it->second->slots) {
      if (page != nullptr) {
        empty = false;
        break;
      }
    }
    if (!empty) {
      ++it;
      continue;
    }
    if (cached_chunk_ == it->second.get()) cached_key_ = ~std::uint64_t{0};
    it = chunks_.erase(it);
  }
}

}  // namespace taskfs::vm
