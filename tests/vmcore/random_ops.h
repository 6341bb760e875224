// The Mach calls the randomized tests make, and the decoders that turn a
// source of randomness into a call's operands: the bytes of a fuzz input
// (tests/fuzz/fuzz_vm_ops.cc), a seeded generator (the differential test)
// or a thread's engine (the stress tests).
//
// Each decoder reads its source in one fixed order, so a fuzz input, a seed
// or an engine's state always decodes to the same calls. Changing what a
// decoder reads changes every corpus file and every replayed seed: add a
// decoder rather than change one.
#ifndef TASKFS_TESTS_VMCORE_RANDOM_OPS_H_
#define TASKFS_TESTS_VMCORE_RANDOM_OPS_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <random>
#include <string>

#include "vmcore/vm_types.h"

namespace taskfs::vm::random_ops {

// The calls of the Mach facade the reference model runs, in the order of
// the fuzz input's opcodes (an opcode byte below kVmOpCount is one of these).
enum class VmOp : std::uint8_t {
  kAllocateFixed,
  kAllocateAnywhere,
  kDeallocate,
  kProtect,
  kInherit,
  kRead,
  kWrite,
  kFill,
  kCopy,
  kMapCopy,
  kRegion,
  kFindData,
  kFindHole,
  kStatistics,  // vm_region_list and task_statistics, checked
  kPin,
  kCheckPin,
  kFork,
  kCreate,
  kTerminate,
};
inline constexpr std::size_t kVmOpCount =
    static_cast<std::size_t>(VmOp::kTerminate) + 1;

// The page table's geometry: ranges placed in or across its chunks (radix
// leaves) and the level above make the copy and fork paths split them.
inline constexpr std::uint64_t kChunkPages = 512;
inline constexpr std::uint64_t kLevelPages = 512 * kChunkPages;

// Reads of up to this many pages use vm_read into a buffer, larger ones
// vm_read_pinned.
inline constexpr std::uint64_t kMaxBufferPages = 16;
// The pinned reads the model holds at once across calls.
inline constexpr std::size_t kPinSlots = 2;

// Where operands land: the page size and the end of the address space.
struct OperandSpace {
  std::uint64_t page;
  std::uint64_t limit;
};

// --- from the bytes of a fuzz input ------------------------------------------

// Bytes is tests/fuzz/fuzz_input.h's FuzzInput (Byte(), U64()).

// An offset in (0, page): odd, so never aligned.
template <class Bytes>
std::uint64_t UnalignedFromBytes(Bytes& in, OperandSpace space) {
  return (in.Byte() * (space.page / 256)) | 1;
}

// An address: selector byte, kind in the top three bits, n in the low five.
// allocated_page(k) gives the k-th allocated page of the call's task.
template <class Bytes, class AllocatedPage>
vm_address_t AddressFromBytes(Bytes& in, OperandSpace space,
                              AllocatedPage&& allocated_page) {
  const std::uint8_t s = in.Byte();
  const std::uint64_t n = s & 31;
  switch (s >> 5) {
    case 0:
      return n * space.page;  // the window, where anywhere-allocations land
    case 1:
      return (32 + n) * space.page;
    case 2:
      return n * space.page + UnalignedFromBytes(in, space);
    case 3:
      return allocated_page(in.Byte()) * space.page;
    case 4:
      return space.limit - n * space.page;  // the top edge
    case 5:
      return space.limit + n * space.page;  // past it
    case 6:
      return 0 - (n + 1) * space.page;  // near 2^64
    default:
      return in.U64();
  }
}

template <class Bytes>
vm_size_t SizeFromBytes(Bytes& in, OperandSpace space) {
  const std::uint8_t s = in.Byte();
  const std::uint64_t n = s & 31;
  switch (s >> 5) {
    case 0:
    case 1:
      return (n & 15) * space.page;
    case 2:
      return n * space.page + UnalignedFromBytes(in, space);
    case 3:
      return n * 8 * space.page;
    case 4:
      return space.limit - n * space.page;  // about the whole space
    case 5:
      return space.limit + n * space.page;
    case 6:
      return 0 - n * space.page;  // wraps any address
    default:
      return in.U64();
  }
}

inline vm_prot_t ProtFromByte(std::uint8_t b) {
  if (b < 0xf0) return b & VM_PROT_ALL;
  return (b & VM_PROT_ALL) | (8u << (b & 15));  // bits outside ALL
}

inline vm_inherit_t InheritanceFromByte(std::uint8_t b) {
  if (b < 0xf0) return b % 3;
  return b == 0xff ? 0xffffffffu : b;
}

// Task names "t0" to "t7", so that names collide; a few bytes give names the
// core must refuse.
inline std::string TaskNameFromByte(std::uint8_t b) {
  if (b >= 0xf8) {
    static const std::string kBad[] = {"",
                                       ".hidden",
                                       "a/b",
                                       "sp ace",
                                       "host_page_size",
                                       "t\x80",
                                       std::string(65, 'n'),
                                       std::string(64, 'n')};
    return kBad[b - 0xf8];
  }
  return "t" + std::to_string(b % 8);
}

// --- from a seeded generator -------------------------------------------------

// Own generator arithmetic (not std::uniform_int_distribution, whose output
// differs between standard libraries), so a seed replays anywhere.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : engine_(seed) {}

  std::uint64_t Next() { return engine_(); }
  // In [0, n), n > 0; the modulo bias does not matter for a test.
  std::uint64_t Below(std::uint64_t n) { return engine_() % n; }
  bool Percent(std::uint64_t p) { return Below(100) < p; }

 private:
  std::mt19937_64 engine_;
};

// Most addresses fall in the low window_pages pages; a few at the top edge,
// past it, near 2^64 or anywhere, and some not page-aligned.
inline vm_address_t RandomAddress(Rng& rng, OperandSpace space,
                                  std::uint64_t window_pages) {
  const std::uint64_t r = rng.Below(100);
  vm_address_t address;
  if (r < 80) {
    address = rng.Below(window_pages) * space.page;
  } else if (r < 88) {
    address = space.limit - rng.Below(12) * space.page;  // the top edge
  } else if (r < 91) {
    address = space.limit + rng.Below(4) * space.page;  // past it
  } else if (r < 95) {
    address = 0 - (1 + rng.Below(8)) * space.page;  // near 2^64
  } else {
    address = rng.Next();
  }
  if (rng.Percent(8)) address += 1 + rng.Below(space.page - 1);
  return address;
}

// Most sizes are 0..max_op_pages pages; a few up to window_pages, wrapping,
// about the whole space or anything, and some not page-aligned.
inline vm_size_t RandomSize(Rng& rng, OperandSpace space,
                            std::uint64_t max_op_pages,
                            std::uint64_t window_pages) {
  const std::uint64_t r = rng.Below(100);
  vm_size_t size;
  if (r < 86) {
    size = rng.Below(max_op_pages + 1) * space.page;
  } else if (r < 91) {
    size = rng.Below(window_pages + 1) * space.page;
  } else if (r < 95) {
    size = 0 - rng.Below(8) * space.page;  // wraps any address
  } else if (r < 97) {
    // The whole space, give or take a page: rarely fits, costly when it does.
    size = space.limit + space.page - rng.Below(3) * space.page;
  } else {
    size = rng.Next();
  }
  if (rng.Percent(8)) size += 1 + rng.Below(space.page - 1);
  return size;
}

inline vm_prot_t RandomProt(Rng& rng) {
  if (rng.Percent(5)) {
    return static_cast<vm_prot_t>(rng.Below(8) | (8u << rng.Below(29)));
  }
  // Readable and writable most often, so reads and writes keep working.
  static constexpr vm_prot_t kProts[] = {3, 3, 3, 7, 7, 1, 5, 0, 2, 4, 6};
  return kProts[rng.Below(std::size(kProts))];
}

inline vm_inherit_t RandomInheritance(Rng& rng) {
  const std::uint64_t r = rng.Below(100);
  if (r < 45) return VM_INHERIT_SHARE;
  if (r < 80) return VM_INHERIT_COPY;
  if (r < 95) return VM_INHERIT_NONE;
  return static_cast<vm_inherit_t>(3 + rng.Below(0xfffffff0));
}

// --- from a thread's engine --------------------------------------------------

// A run of pages, as page indices from the start of an owner's pages.
struct PageRun {
  std::uint64_t first;
  std::uint64_t count;
};

// The start of a run of count pages within span pages.
inline std::uint64_t RandomRunStart(std::mt19937_64& rng, std::uint64_t span,
                                    std::uint64_t count) {
  return rng() % (span - count + 1);
}

// A run of 1 to 4 pages within span pages (span >= 4): its length first,
// then its start.
inline PageRun RandomPageRun(std::mt19937_64& rng, std::uint64_t span) {
  const std::uint64_t count = 1 + rng() % 4;
  return {RandomRunStart(rng, span, count), count};
}

}  // namespace taskfs::vm::random_ops

#endif  // TASKFS_TESTS_VMCORE_RANDOM_OPS_H_
