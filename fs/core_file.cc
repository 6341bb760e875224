#include "fs/core_file.h"

#include <elf.h>

#include <algorithm>
#include <cstring>

#include "vmcore/vm_user.h"

namespace taskfs::fs {
namespace {

#if defined(__x86_64__)
constexpr Elf64_Half kMachine = EM_X86_64;
#elif defined(__aarch64__)
constexpr Elf64_Half kMachine = EM_AARCH64;
#elif defined(__riscv)
constexpr Elf64_Half kMachine = EM_RISCV;
#else
constexpr Elf64_Half kMachine = EM_NONE;
#endif

// The note's descriptor: a fixed head, then one record per region.
struct NoteHead {
  std::uint32_t version;
  std::uint32_t address_bits;
  std::uint64_t page_size;
  std::uint64_t regions;
};
struct NoteRegion {
  std::uint64_t address;
  std::uint64_t size;
  std::uint32_t max_protection;
  std::uint32_t inheritance;
};
static_assert(sizeof(NoteHead) == 24 && sizeof(NoteRegion) == 24);

constexpr std::uint64_t Align4(std::uint64_t n) { return (n + 3) & ~3ull; }

template <typename T>
void Append(std::string& out, const T& value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}

Elf64_Word Flags(vm::vm_prot_t protection) {
  Elf64_Word flags = 0;
  if (protection & vm::VM_PROT_READ) flags |= PF_R;
  if (protection & vm::VM_PROT_WRITE) flags |= PF_W;
  if (protection & vm::VM_PROT_EXECUTE) flags |= PF_X;
  return flags;
}

unsigned AddressBits(const vm::Geometry& geometry) {
  unsigned bits = 0;
  while (bits < 64 && (std::uint64_t{1} << bits) < geometry.limit) ++bits;
  return bits;
}

}  // namespace

CoreLayout MakeCoreLayout(const vm::Geometry& geometry,
                          const std::vector<vm::RegionInfo>& regions) {
  const std::uint64_t page = geometry.page_size();
  const std::uint64_t phnum = regions.size() + 1;
  // More program headers than e_phnum holds: PN_XNUM, and the count in
  // sh_info of a lone section header, as Linux writes it.
  const bool extended = phnum >= PN_XNUM;
  const std::uint64_t name_size = sizeof kCoreNoteName;  // with its NUL
  const std::uint64_t desc_size =
      sizeof(NoteHead) + regions.size() * sizeof(NoteRegion);
  const std::uint64_t note_size =
      sizeof(Elf64_Nhdr) + Align4(name_size) + Align4(desc_size);
  const std::uint64_t note_offset =
      sizeof(Elf64_Ehdr) + phnum * sizeof(Elf64_Phdr);
  const std::uint64_t section_offset = note_offset + note_size;
  const std::uint64_t header_size =
      section_offset + (extended ? sizeof(Elf64_Shdr) : 0);

  CoreLayout layout;
  std::uint64_t cursor = (header_size + page - 1) & ~(page - 1);
  layout.size = header_size;
  layout.segments.reserve(regions.size());
  for (const vm::RegionInfo& region : regions) {
    CoreSegment segment;
    segment.offset = cursor;
    segment.address = region.start;
    if (region.protection & vm::VM_PROT_READ) {
      segment.file_size = region.size;
      cursor += region.size;
      layout.size = cursor;
    }
    layout.segments.push_back(segment);
  }

  std::string& out = layout.header;
  out.reserve(header_size);
  Elf64_Ehdr ehdr;
  std::memset(&ehdr, 0, sizeof ehdr);
  std::memcpy(ehdr.e_ident, ELFMAG, SELFMAG);
  ehdr.e_ident[EI_CLASS] = ELFCLASS64;
  ehdr.e_ident[EI_DATA] = ELFDATA2LSB;
  ehdr.e_ident[EI_VERSION] = EV_CURRENT;
  ehdr.e_ident[EI_OSABI] = ELFOSABI_NONE;
  ehdr.e_type = ET_CORE;
  ehdr.e_machine = kMachine;
  ehdr.e_version = EV_CURRENT;
  ehdr.e_phoff = sizeof(Elf64_Ehdr);
  ehdr.e_ehsize = sizeof(Elf64_Ehdr);
  ehdr.e_phentsize = sizeof(Elf64_Phdr);
  ehdr.e_phnum = extended ? PN_XNUM : static_cast<Elf64_Half>(phnum);
  if (extended) {
    ehdr.e_shoff = section_offset;
    ehdr.e_shentsize = sizeof(Elf64_Shdr);
    ehdr.e_shnum = 1;
  }
  Append(out, ehdr);

  Elf64_Phdr note;
  std::memset(&note, 0, sizeof note);
  note.p_type = PT_NOTE;
  note.p_offset = note_offset;
  note.p_filesz = note_size;
  note.p_align = 4;
  Append(out, note);
  for (std::size_t i = 0; i < regions.size(); ++i) {
    Elf64_Phdr load;
    std::memset(&load, 0, sizeof load);
    load.p_type = PT_LOAD;
    load.p_flags = Flags(regions[i].protection);
    load.p_offset = layout.segments[i].offset;
    load.p_vaddr = regions[i].start;
    load.p_filesz = layout.segments[i].file_size;
    load.p_memsz = regions[i].size;
    load.p_align = page;
    Append(out, load);
  }

  Elf64_Nhdr nhdr;
  nhdr.n_namesz = static_cast<Elf64_Word>(name_size);
  nhdr.n_descsz = static_cast<Elf64_Word>(desc_size);
  nhdr.n_type = kCoreNoteType;
  Append(out, nhdr);
  out.append(kCoreNoteName, name_size);
  out.append(Align4(name_size) - name_size, '\0');
  Append(out, NoteHead{kCoreNoteVersion, AddressBits(geometry), page,
                       regions.size()});
  for (const vm::RegionInfo& region : regions) {
    Append(out, NoteRegion{region.start, region.size,
                           static_cast<std::uint32_t>(region.max_protection),
                           static_cast<std::uint32_t>(region.inheritance)});
  }
  out.append(Align4(desc_size) - desc_size, '\0');
  if (extended) {
    Elf64_Shdr shdr;
    std::memset(&shdr, 0, sizeof shdr);
    shdr.sh_info = static_cast<Elf64_Word>(phnum);
    shdr.sh_size = 1;  // e_shnum, as Linux writes it
    Append(out, shdr);
  }
  return layout;
}

std::vector<CorePiece> CorePieces(const CoreLayout& layout,
                                  std::uint64_t offset, std::uint64_t size) {
  std::vector<CorePiece> pieces;
  if (offset >= layout.size) return pieces;
  const std::uint64_t end = offset + std::min(size, layout.size - offset);
  auto add = [&](CorePiece::Kind kind, std::uint64_t lo, std::uint64_t hi,
                 const CoreSegment* segment) {
    lo = std::max(lo, offset);
    hi = std::min(hi, end);
    if (lo < hi) pieces.push_back({kind, lo, hi - lo, segment});
  };
  add(CorePiece::kHeader, 0, layout.header.size(), nullptr);
  std::uint64_t at = layout.header.size();  // end of the last piece
  // The first segment that may end after offset.
  auto it = std::partition_point(
      layout.segments.begin(), layout.segments.end(),
      [&](const CoreSegment& s) { return s.offset + s.file_size <= offset; });
  if (it != layout.segments.begin()) {
    at = std::max(at, std::prev(it)->offset + std::prev(it)->file_size);
  }
  for (; it != layout.segments.end() && it->offset < end; ++it) {
    if (it->file_size == 0) continue;
    add(CorePiece::kZeros, at, it->offset, nullptr);
    add(CorePiece::kSegment, it->offset, it->offset + it->file_size, &*it);
    at = it->offset + it->file_size;
  }
  add(CorePiece::kZeros, at, end, nullptr);
  return pieces;
}

vm::KernResult<std::shared_ptr<const CoreFile>> CoreFile::Take(vm::Task& task) {
  std::vector<vm::RegionInfo> regions;
  vm::KernResult<std::shared_ptr<vm::Task>> snapshot =
      vm::task_snapshot(task, &regions);
  if (!snapshot.ok()) return snapshot.code();
  auto file = std::make_shared<CoreFile>();
  file->snapshot = std::move(snapshot).value();
  file->layout = MakeCoreLayout(task.geometry(), regions);
  return std::shared_ptr<const CoreFile>(std::move(file));
}

std::optional<std::uint64_t> CoreFile::Seek(std::uint64_t offset,
                                            bool data) const {
  if (offset >= layout.size) return std::nullopt;
  for (const CorePiece& piece : CorePieces(layout, offset, layout.size)) {
    if (piece.kind == CorePiece::kHeader) {
      if (data) return piece.offset;
      continue;
    }
    if (piece.kind == CorePiece::kZeros) {
      if (!data) return piece.offset;
      continue;
    }
    const CoreSegment& segment = *piece.segment;
    const vm::vm_address_t from =
        segment.address + (piece.offset - segment.offset);
    const vm::vm_address_t limit = segment.address + segment.file_size;
    const vm::KernResult<vm::vm_address_t> found =
        vm::vm_find_resident(*snapshot, from, limit, data);
    if (found.ok() && found.value() < limit) {
      // A page boundary at or above from: at or above offset unless offset
      // is inside the page, where that page's state is offset's.
      return std::max(offset,
                      segment.offset + (found.value() - segment.address));
    }
  }
  if (data) return std::nullopt;
  return layout.size;
}

vm::KernResult<CoreSize> MeasureCore(vm::Task& task) {
  vm::KernResult<std::vector<vm::RegionInfo>> regions =
      vm::vm_region_list(task);
  if (!regions.ok()) return regions.code();
  CoreSize result;
  result.size = MakeCoreLayout(task.geometry(), regions.value()).size;
  for (const vm::RegionInfo& region : regions.value()) {
    if ((region.protection & vm::VM_PROT_READ) == 0) continue;
    const vm::KernResult<std::uint64_t> pages =
        vm::vm_count_resident(task, region.start, region.start + region.size);
    if (!pages.ok()) return pages.code();
    result.blocks += (pages.value() << task.geometry().page_shift) / 512;
  }
  return result;
}

}  // namespace taskfs::fs
