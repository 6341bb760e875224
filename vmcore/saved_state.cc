#include "vmcore/saved_state.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <mutex>
#include <new>
#include <shared_mutex>
#include <utility>

#include "vmcore/charged_allocator.h"
#include "vmcore/limit_reached.h"
#include "vmcore/locks.h"
#include "vmcore/page.h"
#include "vmcore/page_allocator.h"
#include "vmcore/page_range.h"
#include "vmcore/page_table.h"
#include "vmcore/vm_object.h"
#include "vmcore/vm_statistics.h"

namespace taskfs::vm {
namespace {

enum RecordType : std::uint32_t {
  kHeader = 1,   // u32 page size, u32 address bits
  kTask = 2,     // u32 name size, name, u32 extra size, extra
  kObject = 3,   // u64 id (0, 1, 2, ... in order)
  kPage = 4,     // u64 index, u64 page id, u8 kept, the page's bytes
  kPageRef = 5,  // u64 index, u64 page id (of a kept page)
  kEntry = 6,    // u64 start, u64 end, u32 protection, u32 maximum,
                 // u32 inheritance, u64 object id, u64 offset
  kEnd = 7,      // u64 tasks, u64 objects, u64 pages
  // Version 2: a page-table node held by more than one slot, at an object
  // index, its level and an id (0, 1, 2, ... in order). kNode: the first
  // time, before its pages; kNodeRef: every other time, instead of them.
  kNode = 8,     // u64 first index, u32 level, u64 node id
  kNodeRef = 9,  // u64 first index, u32 level, u64 node id
};

constexpr std::size_t kMaxExtra = 64 << 10;
constexpr std::size_t kEntrySize = 8 + 8 + 4 + 4 + 4 + 8 + 8;
constexpr std::size_t kPageHead = 8 + 8 + 1;
constexpr std::size_t kNodeSize = 8 + 4 + 8;
// The highest node level a save may name: its span, 2^54 indexes, is below
// kObjectIndexLimit.
constexpr unsigned kMaxNodeLevel = 5;
static_assert(PageTable::kFanout << (PageTable::kBits * kMaxNodeLevel) <=
              kObjectIndexLimit);

// --- CRC-32C ---------------------------------------------------------------

constexpr std::uint32_t kPoly = 0x82f63b78;  // reversed Castagnoli

constexpr std::array<std::uint32_t, 256> MakeTable() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr std::array<std::uint32_t, 256> kTable = MakeTable();

std::uint32_t SoftCrc(std::uint32_t crc, const unsigned char* p,
                      std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    crc = kTable[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  }
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint32_t HardCrc(std::uint32_t crc,
                                                        const unsigned char* p,
                                                        std::size_t n) {
  std::uint64_t c = crc;
  for (; n >= 8; n -= 8, p += 8) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);
    c = __builtin_ia32_crc32di(c, word);
  }
  auto c32 = static_cast<std::uint32_t>(c);
  for (; n > 0; --n, ++p) c32 = __builtin_ia32_crc32qi(c32, *p);
  return c32;
}
const bool kHaveHardCrc = __builtin_cpu_supports("sse4.2");
#endif

// --- writing ---------------------------------------------------------------

void Put32(unsigned char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
void Put64(unsigned char* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
std::uint32_t Get32(const unsigned char* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | p[i];
  return v;
}
std::uint64_t Get64(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

// Writes records to a sink; after the first refusal it writes nothing more.
class RecordWriter {
 public:
  explicit RecordWriter(StateSink& sink) : sink_(sink) {}
  bool ok() const { return ok_; }

  void Raw(const void* data, std::size_t size) {
    if (ok_) ok_ = sink_.Write(data, size);
  }
  // A record whose payload is the concatenation of parts.
  void Record(
      std::uint32_t type,
      std::initializer_list<std::pair<const void*, std::size_t>> parts) {
    std::size_t size = 0;
    for (const auto& part : parts) size += part.second;
    unsigned char head[8];
    Put32(head, type);
    Put32(head + 4, static_cast<std::uint32_t>(size));
    std::uint32_t crc = Crc32c(0, head, sizeof head);
    Raw(head, sizeof head);
    for (const auto& [data, n] : parts) {
      crc = Crc32c(crc, data, n);
      Raw(data, n);
    }
    unsigned char tail[4];
    Put32(tail, crc);
    Raw(tail, sizeof tail);
  }

 private:
  StateSink& sink_;
  bool ok_ = true;
};

// Under ReservedMarks: a page or an object met before holds a mark of the
// block, first + its id; a node (held twice) met before, (first + its id) <<
// 1, as the statistics walk keeps a bit of its own below its marks.
class Saver {
 public:
  Saver(RecordWriter& out, const ReservedMarks& marks, std::size_t page_size)
      : out_(out), marks_(marks), page_size_(page_size) {}

  void Task(const SavedTask& saved) {
    const std::string& name = saved.task->name();
    unsigned char name_size[4], extra_size[4];
    Put32(name_size, static_cast<std::uint32_t>(name.size()));
    Put32(extra_size, static_cast<std::uint32_t>(saved.extra.size()));
    out_.Record(kTask, {{name_size, 4},
                        {name.data(), name.size()},
                        {extra_size, 4},
                        {saved.extra.data(), saved.extra.size()}});
    ++tasks_;
    for (const auto& [start, entry] : saved.task->map().entries()) {
      Entry(entry);
    }
  }

  void End() {
    unsigned char p[24];
    Put64(p, tasks_);
    Put64(p + 8, objects_);
    Put64(p + 16, pages_);
    out_.Record(kEnd, {{p, sizeof p}});
  }

 private:
  void Entry(const MapEntry& entry) {
    const VmObject& object = *entry.object;
    if (!marks_.Holds(object.walk_mark())) Object(object);
    unsigned char p[kEntrySize];
    Put64(p, entry.start);
    Put64(p + 8, entry.end);
    Put32(p + 16, entry.protection);
    Put32(p + 20, entry.max_protection);
    Put32(p + 24, entry.inheritance);
    Put64(p + 28, object.walk_mark() - marks_.first());
    Put64(p + 36, entry.offset);
    out_.Record(kEntry, {{p, sizeof p}});
  }

  // Every page of the object that an entry covers: pages an Uncover could
  // not free (vm_object.cc) are out of every entry's reach, and left out.
  // Covered ranges that touch are walked as one, so that a node held
  // twice is met whole wherever it can be.
  void Object(const VmObject& object) {
    object.set_walk_mark(marks_.first() + objects_);
    unsigned char id[8];
    Put64(id, objects_++);
    out_.Record(kObject, {{id, 8}});
    std::uint64_t lo = 0, hi = 0;
    object.ForEachCovered([&](std::uint64_t from, std::uint64_t to) {
      if (from != hi) {
        Pages(object, lo, hi);
        lo = from;
      }
      hi = to;
    });
    Pages(object, lo, hi);
  }

  // A node held twice that the range covers whole is saved once, where it
  // is met first, and named by its id everywhere else: its pages are not
  // walked again, and the restore shares it as it was. Other nodes are
  // walked through.
  void Pages(const VmObject& object, std::uint64_t lo, std::uint64_t hi) {
    if (lo == hi) return;
    object.pages().Walk(
        lo, hi,
        [&](const PageTable::NodeSeen& node) {
          if (!out_.ok()) return false;
          if (!node.whole || !node.held_twice) return true;
          unsigned char p[kNodeSize];
          Put64(p, node.first);
          Put32(p + 8, node.level);
          if (marks_.Holds(node.mark >> 1)) {
            Put64(p + 12, (node.mark >> 1) - marks_.first());
            out_.Record(kNodeRef, {{p, kNodeSize}});
            return false;
          }
          node.mark = (marks_.first() + nodes_) << 1;
          Put64(p + 12, nodes_++);
          out_.Record(kNode, {{p, kNodeSize}});
          return true;
        },
        [&](std::uint64_t index, Page* page, bool shared_path) {
          if (!out_.ok()) return;
          unsigned char p[kPageHead];
          Put64(p, index);
          if (marks_.Holds(page->walk_mark())) {
            Put64(p + 8, page->walk_mark() - marks_.first());
            out_.Record(kPageRef, {{p, 16}});
            return;
          }
          page->set_walk_mark(marks_.first() + pages_);
          Put64(p + 8, pages_++);
          // Kept for the slots after this one that hold it too: only a page
          // with another mapping, or under a node held twice, has them.
          p[16] = shared_path || page->mappings() > 1 ? 1 : 0;
          out_.Record(kPage, {{p, kPageHead}, {page->data(), page_size_}});
        });
  }

  RecordWriter& out_;
  const ReservedMarks& marks_;
  const std::size_t page_size_;
  std::uint64_t tasks_ = 0, objects_ = 0, pages_ = 0, nodes_ = 0;

 public:
  // How many marks of the block the save used.
  std::uint64_t marks_used() const {
    return std::max({objects_, pages_, nodes_});
  }
};

// --- reading ---------------------------------------------------------------

struct Damaged {
  std::string reason;
};

class RecordReader {
 public:
  RecordReader(StateSource& source, std::size_t max_payload)
      : source_(source), payload_(max_payload) {}

  std::uint64_t offset() const { return offset_; }
  std::uint64_t record_offset() const { return record_offset_; }

  // Exactly size bytes, or false at the end; throws Damaged on an error.
  bool Exactly(void* data, std::size_t size) {
    auto* p = static_cast<unsigned char*>(data);
    std::size_t got = 0;
    while (got < size) {
      const std::ptrdiff_t n = source_.Read(p + got, size - got);
      if (n < 0) throw Damaged{"read error"};
      if (n == 0) break;
      got += static_cast<std::size_t>(n);
    }
    offset_ += got;
    return got == size;
  }

  void Truncated() const {
    throw Damaged{fmt::format("truncated at byte {}", offset_)};
  }

  // The next record's type, its payload in payload(); false at a clean end
  // of the stream.
  bool Next(std::uint32_t* type) {
    record_offset_ = offset_;
    unsigned char head[8];
    auto* p = head;
    std::size_t got = 0;
    while (got < sizeof head) {
      const std::ptrdiff_t n = source_.Read(p + got, sizeof head - got);
      if (n < 0) throw Damaged{"read error"};
      if (n == 0) break;
      got += static_cast<std::size_t>(n);
    }
    offset_ += got;
    if (got == 0) return false;
    if (got < sizeof head) Truncated();
    *type = Get32(head);
    size_ = Get32(head + 4);
    if (*type < kHeader || *type > last_type_ || size_ > payload_.size()) {
      throw Damaged{fmt::format("damaged record at byte {}: type {}, size {}",
                                record_offset_, *type, size_)};
    }
    unsigned char tail[4];
    if (!Exactly(payload_.data(), size_) || !Exactly(tail, 4)) Truncated();
    std::uint32_t crc = Crc32c(0, head, sizeof head);
    crc = Crc32c(crc, payload_.data(), size_);
    if (crc != Get32(tail)) {
      throw Damaged{fmt::format("checksum mismatch in the record at byte {}",
                                record_offset_)};
    }
    return true;
  }

  // The save's version says which record types it may hold.
  void set_version(std::uint32_t version) {
    last_type_ = version == 1 ? kEnd : kNodeRef;
  }

  const unsigned char* payload() const { return payload_.data(); }
  std::size_t size() const { return size_; }
  void Expect(std::size_t size) const {
    if (size_ != size) Bad("a record of the wrong size");
  }
  [[noreturn]] void Bad(std::string_view what) const {
    throw Damaged{fmt::format("{} at byte {}", what, record_offset_)};
  }

 private:
  StateSource& source_;
  std::vector<unsigned char> payload_;
  std::size_t size_ = 0;
  std::uint32_t last_type_ = kNodeRef;
  std::uint64_t offset_ = 0;
  std::uint64_t record_offset_ = 0;
};

class Restorer {
  struct SavedObject {
    std::shared_ptr<VmObject> object;
    std::uint64_t offset;  // of its record
    // The object ranges of its regions: [offset, offset + pages) each.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> covered;
    // The spans its node records name, [lo, hi), with each record's offset.
    struct Span {
      std::uint64_t lo, hi, offset;
    };
    std::vector<Span> nodes;
  };

 public:
  using Made =
      std::function<void(const std::shared_ptr<Task>&, std::string_view)>;

  Restorer(VmSystem& system, RecordReader& in, const Made& made)
      : system_(system),
        in_(in),
        made_(made),
        scratch_(system.budget()),
        max_index_(kObjectIndexLimit) {}
  ~Restorer() {
    for (std::size_t i = pool_at_; i < pool_end_; ++i) pool_[i]->DropMapping();
  }
  Restorer(const Restorer&) = delete;
  Restorer& operator=(const Restorer&) = delete;

  void Run() {
    std::uint32_t type = 0;
    if (!in_.Next(&type)) in_.Truncated();
    if (type != kHeader) in_.Bad("no header record");
    Header();
    for (;;) {
      if (!in_.Next(&type)) in_.Truncated();
      switch (type) {
        case kTask:
          Task();
          break;
        case kObject:
          Object();
          break;
        case kPage:
        case kPageRef:
          Page(type == kPage);
          break;
        case kEntry:
          Entry();
          break;
        case kNode:
        case kNodeRef:
          Node(type == kNode);
          break;
        case kEnd:
          End();
          if (in_.Next(&type)) in_.Bad("a record after the end");
          return;
        default:
          in_.Bad("a second header");
      }
    }
  }

 private:
  void Header() {
    in_.Expect(8);
    const std::uint32_t page_size = Get32(in_.payload());
    const std::uint32_t bits = Get32(in_.payload() + 4);
    if (page_size != system_.page_size() || bits != system_.address_bits()) {
      throw Damaged{fmt::format(
          "saved with page size {} and {} address bits; this mount has "
          "page size {} and {} address bits",
          page_size, bits, system_.page_size(), system_.address_bits())};
    }
  }

  void Task() {
    FinishTask();
    const unsigned char* p = in_.payload();
    const std::size_t size = in_.size();
    if (size < 8) in_.Bad("a record of the wrong size");
    const std::uint32_t name_size = Get32(p);
    if (name_size > size - 8) in_.Bad("a record of the wrong size");
    const std::string_view name(reinterpret_cast<const char*>(p + 4),
                                name_size);
    const std::uint32_t extra_size = Get32(p + 4 + name_size);
    if (extra_size != size - 8 - name_size) {
      in_.Bad("a record of the wrong size");
    }
    if (!VmSystem::ValidTaskName(name)) in_.Bad("an invalid task name");
    KernResult<std::shared_ptr<vm::Task>> task =
        system_.AddTask(name, &task_lock_);
    if (!task.ok()) {
      in_.Bad(task.code() == KERN_NAME_EXISTS
                  ? fmt::format("task '{}' twice", name)
                  : std::string("more tasks than max_tasks"));
    }
    task_ = std::move(task).value();
    extra_.assign(reinterpret_cast<const char*>(p + 8 + name_size), extra_size);
    ++tasks_;
  }

  void FinishTask() {
    if (task_ == nullptr) return;
    task_lock_.unlock();
    std::shared_ptr<vm::Task> task = std::move(task_);
    task_ = nullptr;
    made_(task, extra_);
  }

  void Object() {
    in_.Expect(8);
    if (Get64(in_.payload()) != objects_.size())
      in_.Bad("an object out of order");
    objects_.push_back(
        {std::make_shared<VmObject>(system_.budget(), system_.freer()),
         in_.record_offset(),
         {},
         {}});
  }

  void Page(bool fresh) {
    in_.Expect(fresh ? kPageHead + system_.page_size() : 16);
    if (objects_.empty()) in_.Bad("a page before any object");
    const std::uint64_t index = Get64(in_.payload());
    const std::uint64_t id = Get64(in_.payload() + 8);
    if (index >= max_index_) in_.Bad("a page index out of range");
    PageTable& table = objects_.back().object->pages();
    if (table.Get(index) != nullptr) in_.Bad("a page saved twice");
    vm::Page* page = nullptr;
    if (fresh) {
      if (id != pages_) in_.Bad("a page out of order");
      page = NewPage();
      std::memcpy(page->data(), in_.payload() + kPageHead, system_.page_size());
      ++pages_;
    } else {
      // Kept pages are added in ascending id.
      auto it = std::lower_bound(kept_.begin(), kept_.end(), id,
                                 [](const Kept& kept, std::uint64_t want) {
                                   return kept.first < want;
                                 });
      if (it == kept_.end() || it->first != id) {
        in_.Bad("a reference to an unknown page");
      }
      page = it->second;
      page->AddMapping();
    }
    try {
      PageTable::Undo undo(scratch_, system_.freer());
      table.Prepare(index, index + 1, undo);
      undo.Commit();
      table.Slot(index) = page;
    } catch (...) {
      page->DropMapping();
      throw;
    }
    if (fresh && in_.payload()[16] != 0) kept_.emplace_back(id, page);
  }

  // A node held twice: where it was met first (kNode), or a slot of the
  // current object to hold it too (kNodeRef), shared as it was saved.
  void Node(bool first) {
    in_.Expect(kNodeSize);
    if (objects_.empty()) in_.Bad("a node before any object");
    const std::uint64_t index = Get64(in_.payload());
    const std::uint32_t level = Get32(in_.payload() + 8);
    const std::uint64_t id = Get64(in_.payload() + 12);
    if (level > kMaxNodeLevel) in_.Bad("a node level out of range");
    const std::uint64_t span = PageTable::kFanout << (PageTable::kBits * level);
    if (index % span != 0 || index > max_index_ - span) {
      in_.Bad("a node index out of range");
    }
    objects_.back().nodes.push_back({index, index + span, in_.record_offset()});
    if (first) {
      if (id != nodes_.size()) in_.Bad("a node out of order");
      nodes_.push_back({objects_.size() - 1, index, level});
      return;
    }
    if (id >= nodes_.size()) in_.Bad("a reference to an unknown node");
    const SavedNode& saved = nodes_[id];
    if (saved.level != level) in_.Bad("a node reference of another level");
    PageTable& table = objects_.back().object->pages();
    const PageTable& source = objects_[saved.object].object->pages();
    bool taken = false;
    table.ForEach(index, index + span,
                  [&](std::uint64_t, vm::Page*) { taken = true; });
    if (taken) in_.Bad("a node over pages already saved");
    PageTable::Undo undo(scratch_, system_.freer());
    table.Assign(index, index + span, source, saved.index, undo);
    undo.Commit();
  }

  // A page from the pool, which is filled a batch at a time and made
  // resident at once: a fault per page would cost more than reading it.
  vm::Page* NewPage() {
    if (pool_at_ == pool_end_) {
      pool_at_ = pool_end_ = 0;
      std::size_t n = kBatch;
      // At the limit a batch may be refused where one page fits.
      while (!system_.pages().Allocate(n, pool_.data())) {
        if (n == 1) {
          throw LimitReached(system_.config().memory_limit,
                             system_.budget().used(), system_.page_size());
        }
        n = 1;
      }
      PageAllocator::Populate(pool_.data(), n, system_.page_size());
      pool_end_ = n;
    }
    return pool_[pool_at_++];
  }

  void Entry() {
    in_.Expect(kEntrySize);
    if (task_ == nullptr) in_.Bad("a region before any task");
    const unsigned char* p = in_.payload();
    const std::uint64_t start = Get64(p), end = Get64(p + 8);
    MapEntry entry;
    entry.protection = Get32(p + 16);
    entry.max_protection = Get32(p + 20);
    entry.inheritance = Get32(p + 24);
    const std::uint64_t object = Get64(p + 28);
    entry.offset = Get64(p + 36);
    const Geometry& geometry = task_->geometry();
    KernResult<PageRange> range =
        end > start ? PageRange::Exact(geometry, start, end - start)
                    : KernResult<PageRange>(KERN_INVALID_ARGUMENT);
    const std::uint64_t mask = geometry.page_size() - 1;
    if (!range.ok() || ((start | end) & mask) != 0) {
      in_.Bad("a region out of range");
    }
    if ((entry.protection & ~VM_PROT_ALL) != 0 ||
        (entry.max_protection & ~VM_PROT_ALL) != 0 ||
        entry.inheritance > VM_INHERIT_NONE) {
      in_.Bad("a region with unknown attributes");
    }
    if ((entry.protection & ~entry.max_protection) != 0) {
      in_.Bad("a region whose protection exceeds its maximum");
    }
    const std::uint64_t pages = (end - start) >> geometry.page_shift;
    if (entry.offset > max_index_ || pages > max_index_ - entry.offset) {
      in_.Bad("a region offset out of range");
    }
    if (object >= objects_.size()) in_.Bad("a region of an unknown object");
    if (!task_->map().IsFree(range.value())) in_.Bad("overlapping regions");
    entry.start = start;
    entry.end = end;
    entry.object = objects_[object].object;
    objects_[object].covered.emplace_back(entry.offset, entry.offset + pages);
    task_->map().Insert(std::move(entry));
  }

  void End() {
    FinishTask();
    in_.Expect(24);
    const unsigned char* p = in_.payload();
    if (Get64(p) != tasks_ || Get64(p + 8) != objects_.size() ||
        Get64(p + 16) != pages_) {
      in_.Bad("counts that do not match the records");
    }
    for (SavedObject& saved : objects_) Covered(saved);
  }

  // Every object is some region's, and holds pages only where its regions
  // reach: the union of their [offset, offset + pages); and its regions
  // reach the whole span of every node its records name, as a save only
  // shares such nodes. Costs a look at each gap of that union, none per
  // page.
  void Covered(SavedObject& saved) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>>& covered =
        saved.covered;
    if (covered.empty()) {
      throw Damaged{fmt::format("an object no region references at byte {}",
                                saved.offset)};
    }
    std::sort(covered.begin(), covered.end());
    std::uint64_t from = 0;  // the start of the next gap
    auto gap = [&](std::uint64_t lo, std::uint64_t hi) {
      if (lo >= hi) return;
      bool found = false;
      std::uint64_t first = 0;
      saved.object->pages().ForEach(lo, hi,
                                    [&](std::uint64_t index, vm::Page*) {
                                      if (!found) first = index;
                                      found = true;
                                    });
      if (found) {
        throw Damaged{fmt::format(
            "a page at index {} that no region covers, in the object at byte "
            "{}",
            first, saved.offset)};
      }
    };
    // The union, as disjoint ranges in order.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> reach;
    for (const auto& [lo, hi] : covered) {
      gap(from, lo);
      from = std::max(from, hi);
      if (!reach.empty() && lo <= reach.back().second) {
        reach.back().second = std::max(reach.back().second, hi);
      } else {
        reach.emplace_back(lo, hi);
      }
    }
    gap(from, max_index_);
    for (const SavedObject::Span& node : saved.nodes) {
      auto it = std::upper_bound(
          reach.begin(), reach.end(), node.lo,
          [](std::uint64_t lo, const auto& range) { return lo < range.first; });
      if (it == reach.begin() || std::prev(it)->second < node.hi) {
        throw Damaged{fmt::format(
            "a node its object's regions do not cover whole at byte {}",
            node.offset)};
      }
    }
  }

  VmSystem& system_;
  RecordReader& in_;
  const Made& made_;
  MemoryAccount scratch_;
  const std::uint64_t max_index_;
  std::shared_ptr<vm::Task> task_;
  std::unique_lock<PhaseFairMutex> task_lock_;
  std::string extra_;
  std::uint64_t tasks_ = 0, pages_ = 0;
  std::vector<SavedObject> objects_;
  // The pages saved as kept, by id, charged to the limit while the restore
  // lasts.
  using Kept = std::pair<std::uint64_t, vm::Page*>;
  std::vector<Kept, ChargedAllocator<Kept>> kept_{
      ChargedAllocator<Kept>(scratch_)};
  struct SavedNode {
    std::size_t object;   // in objects_
    std::uint64_t index;  // the first of its span there
    std::uint32_t level;
  };
  std::vector<SavedNode> nodes_;
  static constexpr std::size_t kBatch = 64;
  std::array<vm::Page*, kBatch> pool_{};  // [pool_at_, pool_end_) unused
  std::size_t pool_at_ = 0, pool_end_ = 0;
};

}  // namespace

std::uint32_t Crc32c(std::uint32_t crc, const void* data, std::size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
#if defined(__x86_64__)
  crc = kHaveHardCrc ? HardCrc(crc, p, size) : SoftCrc(crc, p, size);
#else
  crc = SoftCrc(crc, p, size);
#endif
  return ~crc;
}

std::string SaveState(VmSystem& system, const std::vector<SavedTask>& tasks,
                      StateSink& sink) {
  // A subtree still being freed in the background holds references that
  // would make nodes and pages look shared: let it go first.
  system.freer().Drain();
  // Task locks in ascending id (lock_order.h), then every object, then the
  // marks.
  std::vector<const SavedTask*> order;
  order.reserve(tasks.size());
  for (const SavedTask& saved : tasks) order.push_back(&saved);
  std::sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    return a->task->id() < b->task->id();
  });
  std::vector<std::shared_lock<PhaseFairMutex>> task_locks;
  task_locks.reserve(order.size());
  for (const SavedTask* saved : order)
    task_locks.emplace_back(saved->task->mu());

  ObjectLocks object_locks;
  for (const SavedTask& saved : tasks) {
    if (saved.task->terminated()) continue;
    const AddressMap& map = saved.task->map();
    object_locks.Add(map, PageRange::All(map.geometry()), /*exclusive=*/false);
  }
  object_locks.LockAll();
  ReservedMarks marks;

  RecordWriter out(sink);
  out.Raw(kStateMagic, sizeof kStateMagic);
  unsigned char version[4];
  Put32(version, kStateVersion);
  out.Raw(version, 4);
  const std::size_t page_size = system.page_size();
  unsigned char header[8];
  Put32(header, static_cast<std::uint32_t>(page_size));
  Put32(header + 4, system.address_bits());
  out.Record(kHeader, {{header, 8}});
  Saver saver(out, marks, page_size);
  std::string error;
  for (const SavedTask& saved : tasks) {
    if (saved.task->terminated()) continue;
    if (saved.extra.size() > kMaxExtra) {
      error = "a task's attributes too large";
      break;
    }
    saver.Task(saved);
    if (!out.ok()) break;
  }
  if (error.empty()) saver.End();
  marks.Keep(saver.marks_used());
  if (!error.empty()) return error;
  return out.ok() ? "" : "write failed";
}

std::string RestoreState(VmSystem& system, StateSource& source,
                         const std::function<void(const std::shared_ptr<Task>&,
                                                  std::string_view)>& made) {
  RecordReader in(source, std::max<std::size_t>(system.page_size() + kPageHead,
                                                kMaxExtra + 1024));
  try {
    char magic[sizeof kStateMagic];
    unsigned char version[4];
    if (!in.Exactly(magic, sizeof magic) ||
        std::memcmp(magic, kStateMagic, sizeof magic) != 0) {
      return "not a taskfs save (no TASKFSST magic)";
    }
    if (!in.Exactly(version, 4)) return "truncated at byte 8";
    if (Get32(version) < kOldestStateVersion ||
        Get32(version) > kStateVersion) {
      return fmt::format(
          "format version {}; this taskfs reads versions {} to {}",
          Get32(version), kOldestStateVersion, kStateVersion);
    }
    in.set_version(Get32(version));
    Restorer restorer(system, in, made);
    restorer.Run();
  } catch (const Damaged& damaged) {
    return damaged.reason;
  } catch (const LimitReached& limit) {
    return fmt::format(
        "memory_limit={} is too small to restore it: {} bytes in use, {} "
        "more needed (at byte {})",
        limit.limit(), limit.used(), limit.asked(), in.offset());
  } catch (const std::bad_alloc&) {
    return fmt::format("out of memory restoring it (at byte {})", in.offset());
  }
  return "";
}

}  // namespace taskfs::vm
