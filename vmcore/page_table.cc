#include "vmcore/page_table.h"

#include <algorithm>
#include <new>

#include "vmcore/page.h"

namespace taskfs::vm {

const std::uint64_t PageTable::kNodeCharge = sizeof(Node) + kHeapOverhead;

// What every table does to nodes: references, clones, and frees, the large
// ones in the background (freer, the tables' DeferredFreer).
struct NodeOps {
  using Node = PageTable::Node;

  static std::uint64_t Span(unsigned level) {
    return PageTable::kFanout << (PageTable::kBits * level);
  }

  static void Ref(Node* node) {
    node->refs.fetch_add(1, std::memory_order_relaxed);
  }
  // Drops a reference; at the last, frees the node, a large one in the
  // background unless now.
  static void Unref(Node* node, DeferredFreer& freer,
                    bool now = false) noexcept;
  static void Release(void* thing, bool page, DeferredFreer& freer,
                      bool now = false) noexcept {
    if (thing == nullptr) return;
    if (page) {
      static_cast<Page*>(thing)->DropMapping();
    } else {
      Unref(static_cast<Node*>(thing), freer, now);
    }
  }

  // A node of level with every slot null, for which account has just been
  // charged; null (the charge given back) if the heap refuses it.
  static Node* Build(unsigned level, MemoryAccount& account) noexcept {
    Node* node = new (std::nothrow) Node(level, &account);
    if (node == nullptr) {
      account.Release(PageTable::kNodeCharge);
      return nullptr;
    }
    if (level == 0) {
      std::fill(node->pages, node->pages + PageTable::kFanout, nullptr);
    } else {
      std::fill(node->children, node->children + PageTable::kFanout, nullptr);
    }
    return node;
  }

  // Build, charging account first; null if either is refused.
  static Node* TryMake(unsigned level, MemoryAccount& account,
                       bool use_reserve) noexcept {
    if (!account.TryCharge(PageTable::kNodeCharge, use_reserve)) return nullptr;
    return Build(level, account);
  }

  // Makes copy (empty, of node's level) hold what node holds, each of its
  // pages or children gaining a reference.
  static void Fill(Node* copy, const Node& node) {
    if (node.level == 0) {
      for (std::uint64_t i = 0; i < PageTable::kFanout; ++i) {
        if (Page* page = node.pages[i]) {
          page->AddMapping();
          copy->pages[i] = page;
        }
      }
    } else {
      for (std::uint64_t i = 0; i < PageTable::kFanout; ++i) {
        if (Node* child = node.children[i]) {
          Ref(child);
          copy->children[i] = child;
        }
      }
    }
  }

  static bool AllNull(const Node& node) {
    for (std::uint64_t i = 0; i < PageTable::kFanout; ++i) {
      if (node.level == 0 ? node.pages[i] != nullptr
                          : node.children[i] != nullptr) {
        return false;
      }
    }
    return true;
  }

  // Frees node, whose last reference is gone, and drops what it held.
  static void FreeNow(Node* node, DeferredFreer& freer) noexcept {
    for (std::uint64_t i = 0; i < PageTable::kFanout; ++i) {
      if (node->level == 0) {
        if (Page* page = node->pages[i]) page->DropMapping();
      } else if (Node* child = node->children[i]) {
        Unref(child, freer);
      }
    }
    MemoryAccount* account = node->account;
    delete node;
    account->Release(PageTable::kNodeCharge);
  }

  static bool Large(const Node& node) {
    if (node.level != 1) return false;
    unsigned leaves = 0;
    for (std::uint64_t i = 0; i < PageTable::kFanout; ++i) {
      if (node.children[i] != nullptr && ++leaves > PageTable::kInlineLeaves) {
        return true;
      }
    }
    return false;
  }
};

void NodeOps::Unref(Node* node, DeferredFreer& freer, bool now) noexcept {
  if (node->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  if (!now && Large(*node) && freer.Take(node)) return;
  FreeNow(node, freer);
}

// The freer's list links through the dead node's walk mark, which nothing
// reads once the node is dead.
const DeferredFreer::Hooks PageTable::kDeadNodes = {
    [](void* node) noexcept {
      return &static_cast<PageTable::Node*>(node)->next_dead;
    },
    [](void* node, DeferredFreer& freer) noexcept {
      NodeOps::FreeNow(static_cast<PageTable::Node*>(node), freer);
    },
};

// --- Undo --------------------------------------------------------------------

void PageTable::Undo::Rollback() noexcept {
  while (!changes_.empty()) {
    const Change& change = changes_.back();
    void* now;
    if (change.page) {
      Page** slot = static_cast<Page**>(change.slot);
      now = *slot;
      *slot = static_cast<Page*>(change.old);
    } else {
      Node** slot = static_cast<Node**>(change.slot);
      now = *slot;
      *slot = static_cast<Node*>(change.old);
    }
    if (change.grew != nullptr) {
      change.grew->height_ = change.old_height;
      // The new root holds the old one without a reference of its own.
      if (now != nullptr) static_cast<Node*>(now)->children[0] = nullptr;
    }
    // What this log made goes now, not in the background: a refusal leaves
    // nothing behind.
    NodeOps::Release(now, change.page, freer_, /*now=*/true);
    changes_.pop_back();
  }
  node_changes_ = 0;
}

void PageTable::Undo::Commit() noexcept {
  for (const Change& change : changes_) {
    if (change.grew == nullptr) {
      NodeOps::Release(change.old, change.page, freer_);
    }
  }
  changes_.clear();
  node_changes_ = 0;
}

std::uint32_t PageTable::Undo::Holds(const void* node) const {
  std::uint32_t holds = 0;
  if (node_changes_ == 0) return 0;
  for (const Change& change : changes_) {
    if (!change.page && change.grew == nullptr && change.old == node) ++holds;
  }
  return holds;
}

// --- PageTable ---------------------------------------------------------------

PageTable::~PageTable() {
  if (root_ != nullptr) NodeOps::Unref(root_, freer_);
}

std::uint64_t PageTable::Capacity() const {
  if (height_ == 0) return 0;
  return NodeOps::Span(height_ - 1);
}

PageTable::Node* PageTable::NewNode(unsigned level) {
  nodes_.Charge(kNodeCharge);  // throws LimitReached
  Node* node = NodeOps::Build(level, nodes_);
  if (node == nullptr) throw std::bad_alloc();
  return node;
}

void PageTable::Grow(std::uint64_t index, Undo& undo) {
  if (index < Capacity()) return;
  if (root_ == nullptr) {
    undo.Room();
    undo.Add({&root_, nullptr, false, this, height_});
    while (index >= Capacity()) ++height_;
    return;
  }
  while (index >= Capacity()) {
    undo.Room();
    Node* top = NewNode(height_);
    top->children[0] = root_;  // the table's reference moves with it
    undo.Add({&root_, root_, false, this, height_});
    root_ = top;
    ++height_;
  }
}

PageTable::Node* PageTable::Writable(Node** slot, unsigned level, Undo& undo,
                                     bool* made) {
  Node* node = *slot;
  if (made != nullptr) *made = false;
  // The node is this table's alone when the slot's reference is its only
  // one but those this log keeps until Commit (a node cloned for another
  // slot of the same table, say): changing it in place is then logged like
  // any change, and a rollback takes it back before the clone goes.
  if (node != nullptr &&
      node->refs.load(std::memory_order_acquire) == 1 + undo.Holds(node)) {
    return node;
  }
  if (made != nullptr) *made = true;
  undo.Room();
  Node* fresh = NewNode(level);
  if (node != nullptr) NodeOps::Fill(fresh, *node);
  undo.Add({slot, node, false, nullptr, 0});
  if (node != nullptr) ++undo.node_changes_;
  *slot = fresh;
  return fresh;
}

void PageTable::PrepareIn(Node** slot, unsigned level, std::uint64_t base,
                          std::uint64_t lo, std::uint64_t hi, Undo& undo) {
  Node* node = Writable(slot, level, undo);
  if (level == 0) return;
  const unsigned shift = kBits * level;
  const SlotSpan slots = SlotsIn(level, base, lo, hi);
  for (std::uint64_t i = slots.first; i <= slots.last; ++i) {
    PrepareIn(&node->children[i], level - 1, base + (i << shift), lo, hi, undo);
  }
}

void PageTable::Prepare(std::uint64_t lo, std::uint64_t hi, Undo& undo) {
  if (lo >= hi) return;
  Grow(hi - 1, undo);
  PrepareIn(&root_, height_ - 1, 0, lo, hi, undo);
}

Page*& PageTable::Slot(std::uint64_t index) {
  Node* node = root_;
  for (unsigned level = height_ - 1; level > 0; --level) {
    node = node->children[(index >> (kBits * level)) & (kFanout - 1)];
  }
  return node->pages[index & (kFanout - 1)];
}

bool PageTable::NodeAt(std::uint64_t index, unsigned level, Node** out) const {
  if (index % NodeOps::Span(level) != 0) return false;
  if (index >= Capacity()) {
    *out = nullptr;  // past everything src holds
    return true;
  }
  if (level >= height_) {
    // index is 0 and the whole tree is inside: no node of that level.
    if (root_ != nullptr) return false;
    *out = nullptr;
    return true;
  }
  Node* node = root_;
  for (unsigned l = height_ - 1; node != nullptr && l > level; --l) {
    node = node->children[(index >> (kBits * l)) & (kFanout - 1)];
  }
  *out = node;
  return true;
}

bool PageTable::AnyIn(std::uint64_t lo, std::uint64_t hi) const {
  // ForEach cannot stop early; this stops at the first page.
  if (hi > Capacity()) hi = Capacity();
  if (root_ == nullptr || lo >= hi) return false;
  struct Probe {
    static bool In(const Node* node, std::uint64_t base, std::uint64_t lo,
                   std::uint64_t hi) {
      const unsigned shift = kBits * node->level;
      const SlotSpan slots = SlotsIn(node->level, base, lo, hi);
      for (std::uint64_t i = slots.first; i <= slots.last; ++i) {
        if (node->level == 0) {
          if (node->pages[i] != nullptr) return true;
        } else if (const Node* child = node->children[i]) {
          if (In(child, base + (i << shift), lo, hi)) return true;
        }
      }
      return false;
    }
  };
  return Probe::In(root_, 0, lo, hi);
}

void PageTable::AssignIn(Node** slot, unsigned level, std::uint64_t base,
                         std::uint64_t lo, std::uint64_t hi,
                         const PageTable& src, std::uint64_t delta,
                         Undo& undo) {
  const std::uint64_t span = NodeOps::Span(level);
  const std::uint64_t from = std::max(lo, base);
  const std::uint64_t to = hi - base < span ? hi : base + span;
  Node* shared = nullptr;
  if (from == base && to - base == span &&
      src.NodeAt(base + delta, level, &shared)) {
    if (shared == *slot) return;
    undo.Room();
    if (shared != nullptr) NodeOps::Ref(shared);
    if (*slot != nullptr) ++undo.node_changes_;
    undo.Add({slot, *slot, false, nullptr, 0});
    *slot = shared;
    return;
  }
  if (*slot == nullptr && !src.AnyIn(from + delta, to + delta)) return;
  bool made = false;
  Node* node = Writable(slot, level, undo, &made);
  if (level == 0) {
    for (std::uint64_t index = from; index < to; ++index) {
      Page** at = &node->pages[index - base];
      Page* page = src.Get(index + delta);
      if (page == *at) continue;
      if (made) {
        // A leaf this undo made: its rollback frees the leaf with what it
        // holds, and the node it replaced keeps its own mapping of the old
        // page, so the change needs no entry of its own.
        if (page != nullptr) page->AddMapping();
        if (*at != nullptr) (*at)->DropMapping();
        *at = page;
        continue;
      }
      undo.Room();
      if (page != nullptr) page->AddMapping();
      undo.Add({at, *at, true, nullptr, 0});
      *at = page;
    }
  } else {
    const unsigned shift = kBits * level;
    const std::uint64_t first = (from - base) >> shift;
    const std::uint64_t last = (to - 1 - base) >> shift;
    for (std::uint64_t i = first; i <= last; ++i) {
      AssignIn(&node->children[i], level - 1, base + (i << shift), lo, hi, src,
               delta, undo);
    }
  }
  // A node the copy emptied (unwritten source over written pages) goes.
  if (NodeOps::AllNull(*node)) {
    undo.Room();
    ++undo.node_changes_;
    undo.Add({slot, node, false, nullptr, 0});
    *slot = nullptr;
  }
}

void PageTable::Assign(std::uint64_t lo, std::uint64_t hi, const PageTable& src,
                       std::uint64_t src_lo, Undo& undo) {
  if (lo >= hi) return;
  if (root_ == nullptr && !src.AnyIn(src_lo, src_lo + (hi - lo))) return;
  Grow(hi - 1, undo);
  AssignIn(&root_, height_ - 1, 0, lo, hi, src, src_lo - lo, undo);
}

bool PageTable::ClearIn(Node** slot, unsigned level, std::uint64_t base,
                        std::uint64_t lo, std::uint64_t hi) noexcept {
  Node* node = *slot;
  if (node == nullptr) return true;
  const std::uint64_t span = NodeOps::Span(level);
  if (lo <= base && hi - base >= span) {
    *slot = nullptr;
    NodeOps::Unref(node, freer_);
    return true;
  }
  if (node->refs.load(std::memory_order_acquire) != 1) {
    Node* copy = NodeOps::TryMake(level, nodes_, /*use_reserve=*/true);
    if (copy == nullptr) return false;
    NodeOps::Fill(copy, *node);
    *slot = copy;
    NodeOps::Unref(node, freer_);
    node = copy;
  }
  bool cleared = true;
  const unsigned shift = kBits * level;
  const SlotSpan slots = SlotsIn(level, base, lo, hi);
  for (std::uint64_t i = slots.first; i <= slots.last; ++i) {
    if (level == 0) {
      if (Page* page = node->pages[i]) {
        node->pages[i] = nullptr;
        page->DropMapping();
      }
    } else {
      cleared &=
          ClearIn(&node->children[i], level - 1, base + (i << shift), lo, hi);
    }
  }
  if (NodeOps::AllNull(*node)) {
    *slot = nullptr;
    NodeOps::Unref(node, freer_);
  }
  return cleared;
}

bool PageTable::Clear(std::uint64_t lo, std::uint64_t hi) noexcept {
  if (hi > Capacity()) hi = Capacity();
  if (root_ == nullptr || lo >= hi) return true;
  const bool cleared = ClearIn(&root_, height_ - 1, 0, lo, hi);
  if (root_ == nullptr) height_ = 0;
  return cleared;
}

}  // namespace taskfs::vm
