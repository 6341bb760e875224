// docs/reference.md §10 through a real mount: a task's core file, read by
// readelf, gdb, cp and a parser of this test's own, against pread of mem.
#include <elf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/mount_fixture.h"
#include "tests/integration/test_util.h"

namespace taskfs::testing {
namespace {

int Errno(int rc) { return rc == 0 ? 0 : errno; }

// A file read whole with read(2) in steps of step bytes (not page multiples:
// a core takes any read).
std::string ReadWhole(const std::string& path, std::size_t step = 100000) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return {};
  std::string out;
  struct stat st;
  if (::fstat(fd, &st) == 0) out.reserve(static_cast<std::size_t>(st.st_size));
  std::vector<char> buf(step);
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n <= 0) break;
    out.append(buf.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

// pread of mem: vm_read.
std::string ReadMem(const std::string& mem, std::uint64_t address,
                    std::uint64_t size) {
  const int fd = ::open(mem.c_str(), O_RDONLY);
  std::string out(size, '\0');
  std::uint64_t done = 0;
  while (fd >= 0 && done < size) {
    const ssize_t n = ::pread(fd, out.data() + done,
                              std::min<std::uint64_t>(size - done, 1 << 20),
                              static_cast<off_t>(address + done));
    if (n <= 0) break;
    done += static_cast<std::uint64_t>(n);
  }
  if (fd >= 0) ::close(fd);
  out.resize(done);
  return out;
}

// The program headers and note of a core, as this test reads ELF.
struct Load {
  std::uint64_t offset, vaddr, filesz, memsz, align;
  std::uint32_t flags;
};
struct NoteRegion {
  std::uint64_t address, size;
  std::uint32_t max_protection, inheritance;
};
struct Core {
  std::vector<Load> loads;
  std::uint64_t page_size = 0;
  std::uint32_t address_bits = 0;
  std::vector<NoteRegion> regions;
  std::string error;  // why it is no core, or ""
};

Core Parse(const std::string& bytes) {
  Core core;
  Elf64_Ehdr ehdr;
  if (bytes.size() < sizeof ehdr) return {{}, 0, 0, {}, "short"};
  std::memcpy(&ehdr, bytes.data(), sizeof ehdr);
  if (std::memcmp(ehdr.e_ident, ELFMAG, SELFMAG) != 0 ||
      ehdr.e_ident[EI_CLASS] != ELFCLASS64 || ehdr.e_type != ET_CORE ||
      ehdr.e_machine != EM_X86_64) {
    return {{}, 0, 0, {}, "not an x86-64 ELF64 core"};
  }
  for (unsigned i = 0; i < ehdr.e_phnum; ++i) {
    Elf64_Phdr ph;
    const std::uint64_t at = ehdr.e_phoff + i * sizeof ph;
    if (at + sizeof ph > bytes.size()) return {{}, 0, 0, {}, "phdr"};
    std::memcpy(&ph, bytes.data() + at, sizeof ph);
    if (ph.p_type == PT_LOAD) {
      core.loads.push_back({ph.p_offset, ph.p_vaddr, ph.p_filesz, ph.p_memsz,
                            ph.p_align, ph.p_flags});
    } else if (ph.p_type == PT_NOTE) {
      Elf64_Nhdr nh;
      std::memcpy(&nh, bytes.data() + ph.p_offset, sizeof nh);
      const std::string name(bytes.data() + ph.p_offset + sizeof nh);
      if (name != "TASKFS" || nh.n_type != 0x54460001) {
        return {{}, 0, 0, {}, "note " + name};
      }
      const char* desc = bytes.data() + ph.p_offset + sizeof nh + 8;
      std::uint64_t count = 0;
      std::memcpy(&core.address_bits, desc + 4, 4);
      std::memcpy(&core.page_size, desc + 8, 8);
      std::memcpy(&count, desc + 16, 8);
      for (std::uint64_t r = 0; r < count; ++r) {
        NoteRegion region;
        std::memcpy(&region, desc + 24 + r * 24, 24);
        core.regions.push_back(region);
      }
    }
  }
  return core;
}

// maps' lines as (start, end, "cur/max inheritance").
struct MapLine {
  std::uint64_t start, end;
  std::string prot, max, inheritance;
};
std::vector<MapLine> Maps(const std::string& path) {
  std::vector<MapLine> out;
  std::istringstream in(ReadFile(path));
  std::string range, prots, inheritance;
  while (in >> range >> prots >> inheritance) {
    const std::size_t dash = range.find('-');
    out.push_back({std::stoull(range.substr(0, dash), nullptr, 16),
                   std::stoull(range.substr(dash + 1), nullptr, 16),
                   prots.substr(0, 3), prots.substr(4), inheritance});
  }
  return out;
}

std::uint32_t Flags(const std::string& prot) {
  return (prot[0] == 'r' ? PF_R : 0) | (prot[1] == 'w' ? PF_W : 0) |
         (prot[2] == 'x' ? PF_X : 0);
}

// Checks that core (the bytes of task's core file) shows task as maps and
// mem show it now: one load per maps line, and every readable byte.
void ExpectCoreShows(const Mount& mount, const std::string& task,
                     const std::string& bytes, std::uint64_t page) {
  const Core core = Parse(bytes);
  ASSERT_EQ(core.error, "");
  EXPECT_EQ(core.page_size, page);
  const std::vector<MapLine> maps = Maps(mount / (task + "/maps"));
  ASSERT_EQ(core.loads.size(), maps.size());
  ASSERT_EQ(core.regions.size(), maps.size());
  for (std::size_t i = 0; i < maps.size(); ++i) {
    SCOPED_TRACE(i);
    const Load& load = core.loads[i];
    EXPECT_EQ(load.vaddr, maps[i].start);
    EXPECT_EQ(load.memsz, maps[i].end - maps[i].start);
    EXPECT_EQ(load.flags, Flags(maps[i].prot));
    EXPECT_EQ(load.align, page);
    EXPECT_EQ(load.offset % page, 0u);
    // Mach's bits: read 1, write 2, execute 4.
    EXPECT_EQ(core.regions[i].max_protection,
              (maps[i].max[0] == 'r' ? 1u : 0u) |
                  (maps[i].max[1] == 'w' ? 2u : 0u) |
                  (maps[i].max[2] == 'x' ? 4u : 0u));
    EXPECT_EQ(core.regions[i].address, maps[i].start);
    if (maps[i].prot[0] != 'r') {
      EXPECT_EQ(load.filesz, 0u);
      continue;
    }
    ASSERT_EQ(load.filesz, load.memsz);
    ASSERT_LE(load.offset + load.filesz, bytes.size());
    // mem in MiB steps, each compared with its part of the core.
    bool same = true;
    for (std::uint64_t done = 0; same && done < load.memsz; done += 1 << 20) {
      const std::uint64_t n =
          std::min<std::uint64_t>(1 << 20, load.memsz - done);
      const std::string mem =
          ReadMem(mount / (task + "/mem"), load.vaddr + done, n);
      ASSERT_EQ(mem.size(), n);
      same = bytes.compare(load.offset + done, n, mem) == 0;
    }
    EXPECT_TRUE(same) << "segment " << i << " differs from mem";
  }
}

TEST(CoreTest, TheDemosCoreReadsWithReadelfGdbAndObjdump) {
  Mount mount(std::vector<std::string>{});  // the embedded demo
  ASSERT_TRUE(mount.ok()) << mount.error();
  const std::string core = mount / "demo/core";
  struct stat st;
  ASSERT_EQ(::stat(core.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode, S_IFREG | 0400u);
  const std::string bytes = ReadWhole(core);
  EXPECT_EQ(bytes.size(), static_cast<std::size_t>(st.st_size));
  ExpectCoreShows(mount, "demo", bytes, 4096);

  const RunResult readelf = RunCommand({"readelf", "-lW", core});
  ASSERT_EQ(readelf.exit_code, 0) << readelf.err;
  EXPECT_NE(readelf.out.find("Elf file type is CORE"), std::string::npos);
  EXPECT_NE(readelf.out.find("0x0000000000400000"), std::string::npos)
      << readelf.out;
  EXPECT_NE(readelf.out.find("R E 0x1000"), std::string::npos) << readelf.out;
  EXPECT_NE(readelf.out.find("NOTE"), std::string::npos);

  const RunResult gdb =
      RunCommand({"gdb", "-nx", "-batch", "-c", core, "-ex", "x/s 0x600000"});
  ASSERT_EQ(gdb.exit_code, 0) << gdb.err;
  const std::string greeting = ReadFile(SourceDir() + "/examples/greeting.txt");
  const std::string first_line = greeting.substr(0, greeting.find('\n'));
  EXPECT_NE(gdb.out.find("0x600000:"), std::string::npos) << gdb.out;
  EXPECT_NE(gdb.out.find(first_line.substr(0, 20)), std::string::npos)
      << gdb.out;

  const RunResult objdump = RunCommand({"objdump", "-x", core});
  ASSERT_EQ(objdump.exit_code, 0) << objdump.err;
  EXPECT_NE(objdump.out.find("LOAD"), std::string::npos);

  // Python's file I/O.
  const RunResult python =
      RunCommand({"python3", "-c",
                  "import sys; d = open(sys.argv[1], 'rb').read(); "
                  "print(len(d), d[:4] == b'\\x7fELF')",
                  core});
  ASSERT_EQ(python.exit_code, 0) << python.err;
  EXPECT_EQ(python.out, std::to_string(st.st_size) + " True\n");
}

// Random tasks: regions of every protection, sparse and dense, at each page
// size.
class CoreRandomTest : public ::testing::TestWithParam<std::uint64_t> {};

TEST_P(CoreRandomTest, EqualsMemAndMaps) {
  const std::uint64_t page = GetParam();
  Mount mount(
      {"-o", "tasks=none,address_bits=40,page_size=" + std::to_string(page)});
  ASSERT_TRUE(mount.ok()) << mount.error();
  ASSERT_EQ(Errno(::mkdir((mount / "t").c_str(), 0700)), 0);
  std::mt19937_64 random(page);
  static const char* kProts[] = {"---", "r--", "-w-", "rw-",
                                 "--x", "r-x", "-wx", "rwx"};
  std::ostringstream ctl;
  std::uint64_t at = 0x100000;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> writable;
  for (int i = 0; i < 24; ++i) {
    const std::uint64_t size = (1 + random() % 8) * page;
    ctl << "allocate " << at << " " << size << "\n";
    writable.push_back({at, size});
    at += size + (random() % 3) * page;
  }
  // A sparse GiB region with a few written pages.
  const std::uint64_t sparse = 0x4000000000 / 2;
  ctl << "allocate " << sparse << " " << (1ull << 30) << "\n";
  ASSERT_EQ(WriteFile(mount / "t/ctl", ctl.str()), 0);
  {
    const int fd = ::open((mount / "t/mem").c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    std::string data(page, '\0');
    for (const auto& [start, size] : writable) {
      for (std::uint64_t p = start; p < start + size; p += page) {
        if (random() % 3 == 0) continue;  // left unwritten
        for (char& c : data) c = static_cast<char>(random());
        ASSERT_EQ(::pwrite(fd, data.data(), page, static_cast<off_t>(p)),
                  static_cast<ssize_t>(page));
      }
    }
    for (std::uint64_t k : {0ull, 12345ull, (1ull << 30) / page - 1}) {
      for (char& c : data) c = static_cast<char>(random());
      ASSERT_EQ(::pwrite(fd, data.data(), page,
                         static_cast<off_t>(sparse + k * page)),
                static_cast<ssize_t>(page));
    }
    ::close(fd);
  }
  std::ostringstream protect;
  std::size_t i = 0;
  for (const auto& [start, size] : writable) {
    protect << "protect " << start << " " << size << " " << kProts[i++ % 8]
            << "\n";
  }
  ASSERT_EQ(WriteFile(mount / "t/ctl", protect.str()), 0);

  const std::string bytes = ReadWhole(mount / "t/core", (1 << 20) + 17);
  ExpectCoreShows(mount, "t", bytes, page);
  const RunResult readelf = RunCommand({"readelf", "-lW", mount / "t/core"});
  EXPECT_EQ(readelf.exit_code, 0) << readelf.err;
  EXPECT_EQ(readelf.err, "");
}

INSTANTIATE_TEST_SUITE_P(PageSizes, CoreRandomTest,
                         ::testing::Values(4096u, 16384u, 65536u));

TEST(CoreTest, IsTheTaskAsItWasAtOpen) {
  Mount mount({"-o", "tasks=none"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  ASSERT_EQ(Errno(::mkdir((mount / "t").c_str(), 0700)), 0);
  constexpr std::uint64_t kSize = 256 * 1024;
  ASSERT_EQ(WriteFile(mount / "t/ctl", "allocate 0x100000 256K\n"), 0);
  const int mem = ::open((mount / "t/mem").c_str(), O_RDWR);
  ASSERT_GE(mem, 0);
  // A writer rewrites the region whole, again and again, each time with
  // one byte: a snapshot shows one of its writes, never a mix.
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    std::string data(kSize, '\0');
    for (unsigned round = 1; !stop; ++round) {
      std::memset(data.data(), static_cast<int>('A' + round % 26), kSize);
      if (::pwrite(mem, data.data(), kSize, 0x100000) !=
          static_cast<ssize_t>(kSize)) {
        return;
      }
    }
  });
  // The writer stops however the rounds below end.
  struct StopWriter {
    std::atomic<bool>& stop;
    std::thread& writer;
    void Stop() {
      stop = true;
      if (writer.joinable()) writer.join();
    }
    ~StopWriter() { Stop(); }
  } stop_writer{stop, writer};
  for (int i = 0; i < 20; ++i) {
    const int fd = ::open((mount / "t/core").c_str(), O_RDONLY);
    ASSERT_GE(fd, 0) << "round " << i << ": " << std::strerror(errno) << "\n"
                     << ReadFile(mount / "t/errors");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::string bytes(64 * 1024 + kSize, '\0');
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::pread(fd, bytes.data() + done, bytes.size() - done,
                                static_cast<off_t>(done));
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    ::close(fd);
    bytes.resize(done);
    const Core core = Parse(bytes);
    ASSERT_EQ(core.error, "");
    ASSERT_EQ(core.loads.size(), 1u);
    const std::string segment = bytes.substr(core.loads[0].offset, kSize);
    ASSERT_EQ(segment.size(), kSize);
    EXPECT_EQ(segment.find_first_not_of(segment[0]), std::string::npos)
        << "round " << i << " mixes two writes";
  }
  stop_writer.Stop();

  // What is written after the open is not in the file.
  const int fd = ::open((mount / "t/core").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  const std::string before = ReadMem(mount / "t/mem", 0x100000, 4096);
  ASSERT_EQ(::pwrite(mem, std::string(4096, 'z').data(), 4096, 0x100000), 4096);
  char first = 0;
  const Core core = Parse(ReadWhole(mount / "t/core"));
  ASSERT_EQ(::pread(fd, &first, 1, static_cast<off_t>(core.loads[0].offset)),
            1);
  EXPECT_EQ(first, before[0]);
  ::close(fd);
  ::close(mem);
}

TEST(CoreTest, HolesSeekAndCopySparse) {
  Mount mount({"-o", "tasks=none,address_bits=47"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  ASSERT_EQ(Errno(::mkdir((mount / "t").c_str(), 0700)), 0);
  const std::uint64_t tib = 1ull << 40;
  ASSERT_EQ(WriteFile(mount / "t/ctl", "allocate 0x10000000000 1T\n"), 0);
  const std::uint64_t written = 0x10000000000 + tib / 2;
  {
    const int mem = ::open((mount / "t/mem").c_str(), O_WRONLY);
    ASSERT_GE(mem, 0);
    ASSERT_EQ(::pwrite(mem, std::string(4096, 0x5a).data(), 4096,
                       static_cast<off_t>(written)),
              4096);
    ::close(mem);
  }
  struct stat st;
  ASSERT_EQ(::stat((mount / "t/core").c_str(), &st), 0);
  EXPECT_EQ(st.st_blocks, 4096 / 512);
  const int fd = ::open((mount / "t/core").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  const off_t first = 4096;  // the header's page
  EXPECT_EQ(::lseek(fd, 0, SEEK_DATA), 0);
  const off_t header_end = ::lseek(fd, 0, SEEK_HOLE);
  EXPECT_GT(header_end, 0);
  EXPECT_LE(header_end, first);
  const off_t data = ::lseek(fd, header_end, SEEK_DATA);
  EXPECT_EQ(data, first + static_cast<off_t>(tib / 2));
  EXPECT_EQ(::lseek(fd, data, SEEK_HOLE), data + 4096);
  errno = 0;
  EXPECT_EQ(::lseek(fd, data + 4096, SEEK_DATA), -1);
  EXPECT_EQ(errno, ENXIO);
  char byte = 0;
  EXPECT_EQ(::pread(fd, &byte, 1, data + 100), 1);
  EXPECT_EQ(byte, 0x5a);
  EXPECT_EQ(::pread(fd, &byte, 1, data - 1), 1);
  EXPECT_EQ(byte, 0);
  ::close(fd);

  // cp --sparse=always seeks over the TiB of holes.
  TempDir dir;
  const auto start = std::chrono::steady_clock::now();
  const RunResult cp =
      RunCommand({"cp", "--sparse=always", mount / "t/core", dir / "core"});
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(cp.exit_code, 0) << cp.err;
  EXPECT_LT(took, std::chrono::seconds(1));
  struct stat copy;
  ASSERT_EQ(::stat((dir / "core").c_str(), &copy), 0);
  EXPECT_EQ(copy.st_size, st.st_size);
  const RunResult readelf = RunCommand({"readelf", "-lW", dir / "core"});
  EXPECT_EQ(readelf.exit_code, 0) << readelf.err;
  const int copied = ::open((dir / "core").c_str(), O_RDONLY);
  ASSERT_GE(copied, 0);
  EXPECT_EQ(::pread(copied, &byte, 1, data + 4095), 1);
  EXPECT_EQ(byte, 0x5a);
  ::close(copied);
}

TEST(CoreTest, FollowsMemsReadBitsAndIsReadOnly) {
  Mount mount({"-o", "tasks=none,allow_other"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  ASSERT_EQ(Errno(::mkdir((mount / "t").c_str(), 0700)), 0);
  ASSERT_EQ(Errno(::chmod((mount / "t").c_str(), 0755)), 0);
  ASSERT_EQ(WriteFile(mount / "t/ctl", "allocate 0x10000 8K\n"), 0);
  const std::string core = mount / "t/core";
  struct stat st;
  ASSERT_EQ(::stat(core.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0400u);
  errno = 0;
  EXPECT_EQ(::open(core.c_str(), O_RDWR), -1);
  EXPECT_EQ(errno, EACCES);
  EXPECT_EQ(::open(core.c_str(), O_WRONLY), -1);
  EXPECT_EQ(errno, EACCES);
  EXPECT_EQ(Errno(::chmod(core.c_str(), 0444)), EPERM);
  ASSERT_EQ(Errno(::chmod((mount / "t/mem").c_str(), 0640)), 0);
  ASSERT_EQ(::stat(core.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0440u);

  const passwd* pw = ::getpwnam("nobody");
  ASSERT_NE(pw, nullptr);
  auto nobody_reads = [&] {
    return RunAs(Identity{pw->pw_uid, pw->pw_gid, {}}, [&] {
      const int fd = ::open(core.c_str(), O_RDONLY);
      if (fd < 0) return errno;
      ::close(fd);
      return 0;
    });
  };
  EXPECT_EQ(nobody_reads(), EACCES);
  ASSERT_EQ(Errno(::chmod((mount / "t/mem").c_str(), 0604)), 0);
  EXPECT_EQ(nobody_reads(), 0);
  ASSERT_EQ(Errno(::chmod((mount / "t/mem").c_str(), 0600)), 0);
  EXPECT_EQ(nobody_reads(), EACCES);
}

TEST(CoreTest, AtTheMemoryLimitTheOpenIsEnospc) {
  Mount mount({"-o", "tasks=none,memory_limit=1M"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  ASSERT_EQ(Errno(::mkdir((mount / "t").c_str(), 0700)), 0);
  // Regions until the limit refuses one more: their copy cannot fit.
  for (std::uint64_t at = 0x100000;; at += 0x2000) {
    if (WriteFile(mount / "t/ctl",
                  "allocate " + std::to_string(at) + " 4K\n") != 0) {
      break;
    }
  }
  errno = 0;
  EXPECT_EQ(::open((mount / "t/core").c_str(), O_RDONLY), -1);
  EXPECT_EQ(errno, ENOSPC);
  EXPECT_NE(ReadFile(mount / "t/errors").find("KERN_RESOURCE_SHORTAGE"),
            std::string::npos);
}

// A manifest's `core FILE` line, relative to the manifest: the demo's core
// restored equal; a malformed one ends the daemon with FILE:LINE and what.
TEST(CoreManifestTest, RestoresACoreAndNamesWhatIsWrong) {
  TempDir dir;
  std::string bytes;
  std::string maps;
  {
    Mount demo(std::vector<std::string>{});
    ASSERT_TRUE(demo.ok()) << demo.error();
    bytes = ReadWhole(demo / "demo/core");
    maps = ReadFile(demo / "demo/maps");
  }
  dir.Write("cores/demo.core", bytes);
  const std::string manifest =
      dir.Write("m.tasks", "task again\ncore cores/demo.core\n");
  {
    Mount mount({"-o", "tasks=" + manifest});
    ASSERT_TRUE(mount.ok()) << mount.error();
    EXPECT_EQ(ReadFile(mount / "again/maps"), maps);
    const Core core = Parse(ReadWhole(mount / "again/core"));
    ASSERT_EQ(core.error, "");
    const std::string greeting =
        ReadFile(SourceDir() + "/examples/greeting.txt");
    EXPECT_EQ(
        ReadMem(mount / "again/mem", 0x600000, 4096).substr(0, greeting.size()),
        greeting);
  }

  std::string bad = bytes;
  bad[0] = 0x7e;
  dir.Write("bad.core", bad);
  const std::string bad_manifest =
      dir.Write("bad.tasks", "task a\n\ncore bad.core\n");
  const std::string mountpoint = dir.MakeDir("mnt");
  RunResult r = RunCommand(
      {DaemonPath(), "-f", "-o", "tasks=" + bad_manifest, mountpoint},
      std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_FALSE(IsMountpoint(mountpoint));
  EXPECT_EQ(r.err, "taskfs: " + bad_manifest +
                       ":3: core: 'bad.core': bad magic: not an ELF file\n");

  // A segment where the manifest already made a region.
  const std::string busy = dir.Write(
      "busy.tasks", "task a\nallocate 0x700000 4K\ncore cores/demo.core\n");
  r = RunCommand({DaemonPath(), "-f", "-o", "tasks=" + busy, mountpoint},
                 std::chrono::seconds(20));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find(busy + ":3: core failed: KERN_NO_SPACE: "
                              "'cores/demo.core': segment 3: "
                              "0x700000-0x710000 overlaps region "
                              "0x700000-0x701000"),
            std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace taskfs::testing
