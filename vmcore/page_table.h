// The sparse map from page index to physical page inside one VmObject.
#ifndef TASKFS_VMCORE_PAGE_TABLE_H_
#define TASKFS_VMCORE_PAGE_TABLE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "vmcore/charged_allocator.h"
#include "vmcore/deferred_freer.h"
#include "vmcore/memory_account.h"

namespace taskfs::vm {

class Page;

// A radix tree of 512-way nodes whose subtrees tables share: a copy of a
// range whose source and destination indexes agree modulo a subtree's span
// takes a reference to the source's subtree instead of copying its slots, so
// copying 1 GiB of 4 KiB pages (one node of 512 leaves) is one reference.
// A node held by more than one slot (of this table or another) is never
// changed: whoever writes below it first clones it, and the clone holds a
// reference to each of its children (copy-on-write by subtree); a page in
// an unshared leaf still counts its mappings (Page) as before.
//
// A leaf (level 0) holds 512 page slots, a node of level L 512 nodes of
// level L-1. The tree is as tall as its highest index needs; a null slot is
// an unwritten range. Looking a page up costs one load per level: two for an
// object of up to 1 GiB of 4 KiB pages.
//
// Memory: every node is charged to one account that all tables share
// (MemoryBudget::shared()), once however many tables hold it. The changes
// that can be refused (Prepare, Assign) are logged in an Undo, so a refused
// call puts every slot back: all or nothing. Freeing a large subtree (more
// than kInlineLeaves leaves) is left to the system's DeferredFreer
// (deferred_freer.h), so that dropping a GiB costs its caller one
// reference; its Drain waits for that work, and the allocator's and the
// budget's refusals run it first. Every table whose nodes may be shared is
// given the same freer, as it is the same account.
//
// Thread-safety: a table is guarded by its owning VmObject's lock. Shared
// nodes are only read under it, and reference counts are atomic, so tables
// of different objects may share nodes under different locks.
class PageTable {
 public:
  static constexpr unsigned kBits = 9;
  static constexpr std::uint64_t kFanout = std::uint64_t{1} << kBits;
  // What one node is charged: its bytes and the heap's overhead.
  static const std::uint64_t kNodeCharge;
  // A dying node of level 1 with more leaves than this is freed in the
  // background.
  static constexpr unsigned kInlineLeaves = 8;

  class Undo;

  // How a DeferredFreer frees the dead nodes handed to it: the hooks of
  // the freer a table is given (VmSystem's is made with them).
  static const DeferredFreer::Hooks kDeadNodes;

  // nodes: the account every node of this table is charged to; freer: what
  // frees its large dead subtrees (made with kDeadNodes). Both must outlive
  // every table that may share its nodes.
  PageTable(MemoryAccount& nodes, DeferredFreer& freer)
      : nodes_(nodes), freer_(freer) {}
  ~PageTable();  // drops every page and node it holds
  PageTable(const PageTable&) = delete;
  PageTable& operator=(const PageTable&) = delete;

  Page* Get(std::uint64_t index) const;

  // Calls fn(index, page) for each non-null slot in [lo, hi), ascending;
  // unwritten subtrees cost nothing.
  template <typename Fn>
  void ForEach(std::uint64_t lo, std::uint64_t hi, Fn&& fn) const;

  // Calls fn(page) for every index in [lo, hi), ascending, with nullptr for
  // an unwritten index.
  template <typename Fn>
  void Visit(std::uint64_t lo, std::uint64_t hi, Fn&& fn) const;

  // What Walk shows its node callback of each node it reaches.
  struct NodeSeen {
    // The node's walk mark: a word the caller may read and change, under a
    // lock of its own, to remember what it has seen (free otherwise).
    std::uint64_t& mark;
    bool whole;           // all of its span is in the walked range
    bool held_twice;      // more than one slot (of any table) holds it
    unsigned level;       // 0: a leaf; its span is kFanout << kBits * level
    std::uint64_t first;  // the first index of its span
  };

  // Walks [lo, hi), a node before what is below it, in ascending order.
  // node(const NodeSeen&) for each node reached; returning false skips what
  // is below it. page(index, page, shared_path) for each page reached, with
  // shared_path true when a node above it is held more than once. Needs no
  // memory: it recurses once a level.
  template <typename NodeFn, typename PageFn>
  void Walk(std::uint64_t lo, std::uint64_t hi, NodeFn&& node,
            PageFn&& page) const;

  // Calls fn(index, page, paths) for each non-null slot in [lo, hi),
  // ascending, where paths is how many holders reach the slot through the
  // nodes above it: the product of their reference counts (1 when none is
  // shared), saturating at 2^32 - 1.
  template <typename Fn>
  void ForEachWithPaths(std::uint64_t lo, std::uint64_t hi, Fn&& fn) const;

  // Makes every node on the way to [lo, hi) exist and belong to this table
  // alone (cloning shared ones), so that Slot() on that range is this
  // table's own. May throw std::bad_alloc (LimitReached among them); every
  // change is in undo.
  void Prepare(std::uint64_t lo, std::uint64_t hi, Undo& undo);
  // The slot of index; [index, index + 1) must be Prepared.
  Page*& Slot(std::uint64_t index);

  // Makes [lo, hi) hold what src holds at [src_lo, src_lo + (hi - lo)):
  // each of src's subtrees that fits whole, at the same position modulo its
  // span, is shared; the rest is copied slot by slot (each page gaining a
  // mapping). src may be this table if the two ranges are disjoint. May
  // throw; every change is in undo.
  void Assign(std::uint64_t lo, std::uint64_t hi, const PageTable& src,
              std::uint64_t src_lo, Undo& undo);

  // Empties [lo, hi), dropping what only this range held. Cannot fail: a
  // shared node the range covers in part must be cloned, and if even the
  // memory reserve refuses that, its pages stay (unreachable through any
  // entry) and Clear returns false.
  bool Clear(std::uint64_t lo, std::uint64_t hi) noexcept;

  bool empty() const { return root_ == nullptr; }

 private:
  struct Node;
  friend struct NodeOps;

  // The slots [first, last] of a node of level at base that [lo, hi)
  // reaches (it must reach one).
  struct SlotSpan {
    std::uint64_t first, last;
  };
  static SlotSpan SlotsIn(unsigned level, std::uint64_t base, std::uint64_t lo,
                          std::uint64_t hi) {
    const unsigned shift = kBits * level;
    const std::uint64_t last = (hi - 1 - base) >> shift;
    return {lo > base ? (lo - base) >> shift : 0,
            last < kFanout ? last : kFanout - 1};
  }
  std::uint64_t Capacity() const;
  void Grow(std::uint64_t index, Undo& undo);
  Node* NewNode(unsigned level);
  // The node at level that spans [index, ...), if src has one there; false
  // if the range is inside a node too high to share from.
  bool NodeAt(std::uint64_t index, unsigned level, Node** out) const;
  bool AnyIn(std::uint64_t lo, std::uint64_t hi) const;
  // *slot, made this table's own (new or cloned, logged in undo); *made:
  // whether this call made it.
  Node* Writable(Node** slot, unsigned level, Undo& undo, bool* made = nullptr);
  void PrepareIn(Node** slot, unsigned level, std::uint64_t base,
                 std::uint64_t lo, std::uint64_t hi, Undo& undo);
  void AssignIn(Node** slot, unsigned level, std::uint64_t base,
                std::uint64_t lo, std::uint64_t hi, const PageTable& src,
                std::uint64_t delta, Undo& undo);
  bool ClearIn(Node** slot, unsigned level, std::uint64_t base,
               std::uint64_t lo, std::uint64_t hi) noexcept;
  template <typename Fn>
  static void ForEachIn(const Node* node, std::uint64_t base, std::uint64_t lo,
                        std::uint64_t hi, Fn& fn);
  template <typename Fn>
  static void PathsIn(const Node* node, std::uint64_t base, std::uint64_t lo,
                      std::uint64_t hi, std::uint64_t paths, Fn& fn);
  template <typename NodeFn, typename PageFn>
  static void WalkIn(const Node* node, std::uint64_t base, std::uint64_t lo,
                     std::uint64_t hi, bool shared, NodeFn& node_fn,
                     PageFn& page_fn);
  const Node* LeafOf(std::uint64_t index) const;

  MemoryAccount& nodes_;
  DeferredFreer& freer_;
  Node* root_ = nullptr;
  unsigned height_ = 0;  // levels; the root's level is height_ - 1
};

// The changes of one Prepare/Assign sequence, so that they can be taken back
// (a refused call) or made final (Commit drops what they replaced). Its log
// is charged to the account it is given; what it drops goes to freer, that
// of the tables it logs (they share one). Destroyed uncommitted, it rolls
// back.
class PageTable::Undo {
 public:
  Undo(MemoryAccount& scratch, DeferredFreer& freer)
      : freer_(freer), changes_(ChargedAllocator<Change>(scratch)) {}
  ~Undo() { Rollback(); }
  Undo(const Undo&) = delete;
  Undo& operator=(const Undo&) = delete;

  // Puts back every slot changed, newest first.
  void Rollback() noexcept;
  // Keeps the changes; drops the references the replaced contents held.
  void Commit() noexcept;

 private:
  friend class PageTable;
  struct Change {
    void* slot;       // a Node** or, for a leaf's slot, a Page**
    void* old;        // what it held (this change's reference to it)
    bool page;        // slot is a Page**
    PageTable* grew;  // the table whose height this change raised, or null:
                      // then old moved into the new root's first slot, with
                      // the reference, and is not this change's to drop
    unsigned old_height;
  };
  // How many of this log's changes hold node as what they replaced: the
  // references that go at Commit.
  std::uint32_t Holds(const void* node) const;
  // Room for one more change, so that Add cannot fail (may throw).
  void Room() {
    if (changes_.size() == changes_.capacity()) {
      changes_.reserve(changes_.empty() ? 8 : 2 * changes_.size());
    }
  }
  void Add(const Change& change) noexcept { changes_.push_back(change); }

  DeferredFreer& freer_;
  std::vector<Change, ChargedAllocator<Change>> changes_;
  // Of changes_, how many replaced a node (so Holds reads only those).
  std::size_t node_changes_ = 0;
};

struct PageTable::Node {
  explicit Node(unsigned lvl, MemoryAccount* acct)
      : level(lvl), account(acct) {}

  std::atomic<std::uint32_t> refs{1};
  std::uint32_t level;     // 0: a leaf
  MemoryAccount* account;  // what it is charged to
  union {
    void* next_dead;  // while dying: the DeferredFreer's list link
    // While live: the statistics walk's mark (Walk), set to 0 at birth.
    mutable std::uint64_t walk_mark = 0;
  };
  union {
    Page* pages[kFanout];     // a leaf's
    Node* children[kFanout];  // a node's of level 1 and up
  };
};

inline const PageTable::Node* PageTable::LeafOf(std::uint64_t index) const {
  if (index >= Capacity()) return nullptr;
  const Node* node = root_;
  for (unsigned level = height_ - 1; node != nullptr && level > 0; --level) {
    node = node->children[(index >> (kBits * level)) & (kFanout - 1)];
  }
  return node;
}

inline Page* PageTable::Get(std::uint64_t index) const {
  const Node* leaf = LeafOf(index);
  return leaf != nullptr ? leaf->pages[index & (kFanout - 1)] : nullptr;
}

template <typename Fn>
void PageTable::ForEachIn(const Node* node, std::uint64_t base,
                          std::uint64_t lo, std::uint64_t hi, Fn& fn) {
  const unsigned shift = kBits * node->level;
  const SlotSpan slots = SlotsIn(node->level, base, lo, hi);
  for (std::uint64_t i = slots.first; i <= slots.last; ++i) {
    const std::uint64_t at = base + (i << shift);
    if (node->level == 0) {
      if (Page* page = node->pages[i]) fn(at, page);
    } else if (const Node* child = node->children[i]) {
      ForEachIn(child, at, lo, hi, fn);
    }
  }
}

template <typename Fn>
void PageTable::ForEach(std::uint64_t lo, std::uint64_t hi, Fn&& fn) const {
  if (hi > Capacity()) hi = Capacity();
  if (root_ == nullptr || lo >= hi) return;
  ForEachIn(root_, 0, lo, hi, fn);
}

template <typename Fn>
void PageTable::PathsIn(const Node* node, std::uint64_t base, std::uint64_t lo,
                        std::uint64_t hi, std::uint64_t paths, Fn& fn) {
  constexpr std::uint64_t kMost = UINT32_MAX;
  paths *= node->refs.load(std::memory_order_acquire);
  if (paths > kMost) paths = kMost;
  const unsigned shift = kBits * node->level;
  const SlotSpan slots = SlotsIn(node->level, base, lo, hi);
  for (std::uint64_t i = slots.first; i <= slots.last; ++i) {
    const std::uint64_t at = base + (i << shift);
    if (node->level == 0) {
      if (Page* page = node->pages[i]) fn(at, page, paths);
    } else if (const Node* child = node->children[i]) {
      PathsIn(child, at, lo, hi, paths, fn);
    }
  }
}

template <typename Fn>
void PageTable::ForEachWithPaths(std::uint64_t lo, std::uint64_t hi,
                                 Fn&& fn) const {
  if (hi > Capacity()) hi = Capacity();
  if (root_ == nullptr || lo >= hi) return;
  PathsIn(root_, 0, lo, hi, 1, fn);
}

template <typename Fn>
void PageTable::Visit(std::uint64_t lo, std::uint64_t hi, Fn&& fn) const {
  std::uint64_t index = lo;
  while (index < hi) {
    const std::uint64_t leaf_end = (index | (kFanout - 1)) + 1;
    const std::uint64_t stop = leaf_end < hi && leaf_end != 0 ? leaf_end : hi;
    if (const Node* leaf = LeafOf(index)) {
      Page* const* slots = leaf->pages;
      for (; index < stop; ++index) fn(slots[index & (kFanout - 1)]);
    } else {
      for (; index < stop; ++index) fn(nullptr);
    }
  }
}

template <typename NodeFn, typename PageFn>
void PageTable::WalkIn(const Node* node, std::uint64_t base, std::uint64_t lo,
                       std::uint64_t hi, bool shared, NodeFn& node_fn,
                       PageFn& page_fn) {
  const unsigned shift = kBits * node->level;
  const std::uint64_t span = kFanout << shift;
  const bool held_twice = node->refs.load(std::memory_order_acquire) > 1;
  const NodeSeen seen{node->walk_mark, lo <= base && (hi - base >= span),
                      held_twice, node->level, base};
  if (!node_fn(seen)) return;
  shared = shared || held_twice;
  const SlotSpan slots = SlotsIn(node->level, base, lo, hi);
  for (std::uint64_t i = slots.first; i <= slots.last; ++i) {
    const std::uint64_t at = base + (i << shift);
    if (node->level == 0) {
      if (Page* page = node->pages[i]) page_fn(at, page, shared);
    } else if (const Node* child = node->children[i]) {
      WalkIn(child, at, lo, hi, shared, node_fn, page_fn);
    }
  }
}

template <typename NodeFn, typename PageFn>
void PageTable::Walk(std::uint64_t lo, std::uint64_t hi, NodeFn&& node,
                     PageFn&& page) const {
  if (hi > Capacity()) hi = Capacity();
  if (root_ == nullptr || lo >= hi) return;
  WalkIn(root_, 0, lo, hi, false, node, page);
}

}  // namespace taskfs::vm

#endif  // TASKFS_VMCORE_PAGE_TABLE_H_
