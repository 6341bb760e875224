// The core file's layout, pieces and holes (fs/core_file.h).
#include "fs/core_file.h"

#include <elf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "libtaskfs/src/core_parse.h"
#include "vmcore/vm_user.h"

namespace taskfs::fs {
namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kBase = 0x100000;

vm::RegionInfo Region(vm::vm_address_t start, vm::vm_size_t size,
                      vm::vm_prot_t protection) {
  vm::RegionInfo info;
  info.start = start;
  info.size = size;
  info.protection = protection;
  info.max_protection = vm::VM_PROT_ALL;
  info.inheritance = vm::VM_INHERIT_COPY;
  return info;
}

template <typename T>
T At(const std::string& bytes, std::uint64_t offset) {
  T value;
  EXPECT_LE(offset + sizeof value, bytes.size());
  std::memcpy(&value, bytes.data() + offset, sizeof value);
  return value;
}

TEST(CoreLayoutTest, IsAnElfCoreWithANoteAndALoadPerRegion) {
  const vm::Geometry geometry{12, std::uint64_t{1} << 32};
  const std::vector<vm::RegionInfo> regions = {
      Region(kBase, 2 * kPage, vm::VM_PROT_READ | vm::VM_PROT_WRITE),
      Region(kBase + 4 * kPage, kPage, vm::VM_PROT_NONE),
      Region(kBase + 8 * kPage, 3 * kPage,
             vm::VM_PROT_READ | vm::VM_PROT_EXECUTE)};
  const CoreLayout layout = MakeCoreLayout(geometry, regions);
  const auto ehdr = At<Elf64_Ehdr>(layout.header, 0);
  EXPECT_EQ(std::memcmp(ehdr.e_ident, ELFMAG, SELFMAG), 0);
  EXPECT_EQ(ehdr.e_ident[EI_CLASS], ELFCLASS64);
  EXPECT_EQ(ehdr.e_type, ET_CORE);
  EXPECT_EQ(ehdr.e_phnum, 4);
  EXPECT_EQ(ehdr.e_phoff, sizeof(Elf64_Ehdr));
  const auto note = At<Elf64_Phdr>(layout.header, ehdr.e_phoff);
  EXPECT_EQ(note.p_type, PT_NOTE);
  EXPECT_EQ(note.p_offset + note.p_filesz, layout.header.size());

  const std::uint64_t first = kPage;  // the header rounded up
  const struct {
    std::uint64_t offset, filesz, memsz;
    Elf64_Word flags;
  } kWant[] = {{first, 2 * kPage, 2 * kPage, PF_R | PF_W},
               {first + 2 * kPage, 0, kPage, 0},
               {first + 2 * kPage, 3 * kPage, 3 * kPage, PF_R | PF_X}};
  for (std::size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    const auto load = At<Elf64_Phdr>(
        layout.header, ehdr.e_phoff + (i + 1) * sizeof(Elf64_Phdr));
    EXPECT_EQ(load.p_type, PT_LOAD);
    EXPECT_EQ(load.p_vaddr, regions[i].start);
    EXPECT_EQ(load.p_offset, kWant[i].offset);
    EXPECT_EQ(load.p_filesz, kWant[i].filesz);
    EXPECT_EQ(load.p_memsz, kWant[i].memsz);
    EXPECT_EQ(load.p_flags, kWant[i].flags);
    EXPECT_EQ(load.p_align, kPage);
  }
  EXPECT_EQ(layout.size, first + 5 * kPage);

  // The note: name, type, then page size, address bits, and per region
  // its maximum protection and inheritance.
  const auto nhdr = At<Elf64_Nhdr>(layout.header, note.p_offset);
  EXPECT_EQ(nhdr.n_type, kCoreNoteType);
  EXPECT_EQ(nhdr.n_namesz, 7u);
  EXPECT_STREQ(layout.header.c_str() + note.p_offset + sizeof nhdr, "TASKFS");
  const std::uint64_t desc = note.p_offset + sizeof nhdr + 8;
  EXPECT_EQ(nhdr.n_descsz, 24u + 3 * 24u);
  EXPECT_EQ(At<std::uint32_t>(layout.header, desc), kCoreNoteVersion);
  EXPECT_EQ(At<std::uint32_t>(layout.header, desc + 4), 32u);
  EXPECT_EQ(At<std::uint64_t>(layout.header, desc + 8), kPage);
  EXPECT_EQ(At<std::uint64_t>(layout.header, desc + 16), 3u);
  EXPECT_EQ(At<std::uint64_t>(layout.header, desc + 24 + 24),
            kBase + 4 * kPage);
  EXPECT_EQ(At<std::uint32_t>(layout.header, desc + 24 + 24 + 16),
            static_cast<std::uint32_t>(vm::VM_PROT_ALL));
  EXPECT_EQ(At<std::uint32_t>(layout.header, desc + 24 + 24 + 20),
            static_cast<std::uint32_t>(vm::VM_INHERIT_COPY));
}

TEST(CoreLayoutTest, SoManyRegionsUseTheExtendedCount) {
  const vm::Geometry geometry{12, std::uint64_t{1} << 40};
  std::vector<vm::RegionInfo> regions;
  for (std::uint64_t i = 0; i < 70000; ++i) {
    regions.push_back(Region(kBase + 2 * i * kPage, kPage, vm::VM_PROT_READ));
  }
  const CoreLayout layout = MakeCoreLayout(geometry, regions);
  const auto ehdr = At<Elf64_Ehdr>(layout.header, 0);
  EXPECT_EQ(ehdr.e_phnum, PN_XNUM);
  EXPECT_EQ(ehdr.e_shnum, 1);
  const auto shdr = At<Elf64_Shdr>(layout.header, ehdr.e_shoff);
  EXPECT_EQ(shdr.sh_info, 70001u);
}

TEST(CorePiecesTest, CutARangeIntoHeaderPaddingAndSegments) {
  const vm::Geometry geometry{12, std::uint64_t{1} << 32};
  const CoreLayout layout = MakeCoreLayout(
      geometry, {Region(kBase, 2 * kPage, vm::VM_PROT_READ),
                 Region(kBase + 8 * kPage, kPage, vm::VM_PROT_READ)});
  const std::uint64_t h = layout.header.size();
  std::vector<CorePiece> p = CorePieces(layout, 10, 4 * kPage);
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[0].kind, CorePiece::kHeader);
  EXPECT_EQ(p[0].offset, 10u);
  EXPECT_EQ(p[0].size, h - 10);
  EXPECT_EQ(p[1].kind, CorePiece::kZeros);
  EXPECT_EQ(p[1].size, kPage - h);
  EXPECT_EQ(p[2].kind, CorePiece::kSegment);
  EXPECT_EQ(p[2].segment->address, kBase);
  EXPECT_EQ(p[2].size, 2 * kPage);
  EXPECT_EQ(p[3].kind, CorePiece::kSegment);
  EXPECT_EQ(p[3].segment->address, kBase + 8 * kPage);
  EXPECT_EQ(p[3].size, kPage);  // clipped at the file's end, not 10 past it
  EXPECT_TRUE(CorePieces(layout, layout.size, 1).empty());
  p = CorePieces(layout, kPage + 5, 1);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].segment->address, kBase);
}

TEST(CoreFileTest, SeeksOverHolesOfTheSnapshot) {
  vm::VmConfig config;
  config.page_size = kPage;
  config.address_bits = 44;
  vm::VmSystem system(config);
  std::shared_ptr<vm::Task> task = vm::task_create(system, "t").value();
  vm::vm_address_t address = kBase;
  const std::uint64_t gib = std::uint64_t{1} << 30;
  ASSERT_EQ(vm::vm_allocate(*task, &address, gib, false), vm::KERN_SUCCESS);
  const std::vector<char> data(kPage, 'q');
  ASSERT_EQ(vm::vm_write(*task, kBase + gib / 2, data.data(), kPage),
            vm::KERN_SUCCESS);
  vm::KernResult<std::shared_ptr<const CoreFile>> taken = CoreFile::Take(*task);
  ASSERT_TRUE(taken.ok());
  const CoreFile& core = *taken.value();
  const std::uint64_t segment = core.layout.segments[0].offset;
  EXPECT_EQ(core.Seek(0, true), 0u);
  EXPECT_EQ(core.Seek(0, false), core.layout.header.size());
  EXPECT_EQ(core.Seek(core.layout.header.size(), true), segment + gib / 2);
  EXPECT_EQ(core.Seek(segment + gib / 2 + 7, true), segment + gib / 2 + 7);
  EXPECT_EQ(core.Seek(segment + gib / 2, false), segment + gib / 2 + kPage);
  EXPECT_EQ(core.Seek(segment + gib / 2 + kPage, true), std::nullopt);
  EXPECT_EQ(core.Seek(core.layout.size, false), std::nullopt);
  EXPECT_EQ(core.layout.size, segment + gib);

  const CoreSize size = MeasureCore(*task).value();
  EXPECT_EQ(size.size, core.layout.size);
  EXPECT_EQ(size.blocks, kPage / 512);
}

// The restore's reader (libtaskfs/src/core_parse.c) reads what the core
// file writes, and names what is wrong with a malformed one.
class CoreParseTest : public ::testing::Test {
 protected:
  // The segments of bytes as a file; "" or the parser's error in *error.
  std::vector<taskfs_core_segment> Parse(const std::string& bytes,
                                         std::string* error) {
    char path[] = "/tmp/taskfs-core-parse-XXXXXX";
    const int fd = ::mkstemp(path);
    EXPECT_GE(fd, 0);
    ::unlink(path);
    EXPECT_EQ(::write(fd, bytes.data(), bytes.size()),
              static_cast<ssize_t>(bytes.size()));
    taskfs_core_segment* out = nullptr;
    std::size_t count = 0;
    char message[512] = "";
    const int rc = taskfs_core_parse(fd, &out, &count, message, sizeof message);
    ::close(fd);
    *error = rc == 0 ? "" : message;
    std::vector<taskfs_core_segment> segments(out, out + count);
    std::free(out);
    return segments;
  }

  // A core of three regions, each written with a byte.
  std::string Core() {
    const vm::Geometry geometry{12, std::uint64_t{1} << 32};
    vm::RegionInfo a = Region(kBase, kPage, vm::VM_PROT_READ);
    a.max_protection = vm::VM_PROT_READ;
    a.inheritance = vm::VM_INHERIT_SHARE;
    layout_ = MakeCoreLayout(
        geometry, {a, Region(kBase + 2 * kPage, kPage, vm::VM_PROT_NONE),
                   Region(kBase + 4 * kPage, 2 * kPage, vm::VM_PROT_ALL)});
    std::string bytes = layout_.header;
    bytes.resize(layout_.size, 'b');
    return bytes;
  }
  void SetU64(std::string& bytes, std::size_t at, std::uint64_t value) {
    std::memcpy(bytes.data() + at, &value, sizeof value);
  }

  CoreLayout layout_;
};

TEST_F(CoreParseTest, ReadsWhatTheCoreFileWrites) {
  std::string error;
  const auto s = Parse(Core(), &error);
  ASSERT_EQ(error, "");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].address, kBase);
  EXPECT_EQ(s[0].prot, static_cast<std::uint32_t>(vm::VM_PROT_READ));
  EXPECT_EQ(s[0].max_prot, static_cast<std::uint32_t>(vm::VM_PROT_READ));
  EXPECT_EQ(s[0].inheritance, static_cast<std::uint32_t>(vm::VM_INHERIT_SHARE));
  EXPECT_EQ(s[0].filesz, kPage);
  EXPECT_EQ(s[1].filesz, 0u);
  EXPECT_EQ(s[1].memsz, kPage);
  EXPECT_EQ(s[2].offset, layout_.segments[2].offset);
  EXPECT_EQ(s[2].prot, static_cast<std::uint32_t>(vm::VM_PROT_ALL));
}

TEST_F(CoreParseTest, NamesWhatIsWrongAndWhere) {
  std::string error;
  std::string bytes = Core();
  Parse(bytes.substr(0, 40), &error);
  EXPECT_EQ(error, "truncated: 40 bytes, shorter than an ELF header");
  bytes[0] = 'X';
  Parse(bytes, &error);
  EXPECT_EQ(error, "bad magic: not an ELF file");
  bytes = Core();
  const std::size_t load0 = sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr);
  SetU64(bytes, load0 + 2 * sizeof(Elf64_Phdr) + 16, kBase);  // p_vaddr
  Parse(bytes, &error);
  EXPECT_EQ(error,
            "segment 2: 0x100000 overlaps segment 0 (0x100000-0x101000)");
  bytes = Core();
  SetU64(bytes, load0 + 8, 1 << 20);  // p_offset of segment 0
  Parse(bytes, &error);
  EXPECT_EQ(error,
            "segment 0: bytes [0x100000, 0x101000) lie beyond the end of the "
            "file (0x4000 bytes)");
  bytes = Core();
  bytes.resize(layout_.segments[2].offset + kPage);
  Parse(bytes, &error);
  EXPECT_EQ(error.rfind("segment 2: bytes [", 0), 0u) << error;
}

}  // namespace
}  // namespace taskfs::fs
