// docs/reference.md §5 "Any buffer works": page-multiple transfers at
// page-aligned addresses succeed whatever the alignment of the caller's buffer
// and whatever their size, at every page size, through a real mount: pread,
// pwrite, preadv, pwritev from C++ (malloc'd buffers at odd offsets), and
// Python's os.pread/os.pwrite and buffered files. Every byte is compared.
// Also what a transfer that fails leaves (README: "Request size").
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/mount_fixture.h"
#include "tests/integration/test_util.h"

namespace taskfs::testing {
namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;
// Offsets of the caller's buffer from a page boundary.
constexpr std::size_t kMisalignments[] = {0, 1, 16, 4095, 4096 + 8};

// A malloc'd buffer whose data starts `misalign` bytes past a page boundary.
class OddBuffer {
 public:
  OddBuffer(std::size_t n, std::size_t misalign)
      : raw_(static_cast<unsigned char*>(
            std::aligned_alloc(kPage, (n + misalign + kPage) / kPage * kPage))),
        data_(raw_ + misalign),
        size_(n) {}
  ~OddBuffer() { std::free(raw_); }
  OddBuffer(const OddBuffer&) = delete;
  OddBuffer& operator=(const OddBuffer&) = delete;
  unsigned char* data() { return data_; }
  std::size_t size() const { return size_; }
  void Fill(unsigned seed) {
    for (std::size_t i = 0; i < size_; ++i) {
      data_[i] =
          static_cast<unsigned char>((i * 131 + seed * 7 + i / 4093) % 251);
    }
  }

 private:
  unsigned char* raw_;
  unsigned char* data_;
  std::size_t size_;
};

// The first offset where a and b differ, or -1.
long FirstDifference(const unsigned char* a, const unsigned char* b,
                     std::size_t n) {
  if (std::memcmp(a, b, n) == 0) return -1;
  for (std::size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return static_cast<long>(i);
  }
  return -1;
}

class AnyBufferTest : public ::testing::TestWithParam<unsigned> {
 protected:
  void SetUp() override {
    page_ = GetParam();
    mount_ = std::make_unique<Mount>(std::vector<std::string>{
        "-o",
        "tasks=none,memory_limit=512M,page_size=" + std::to_string(page_)});
    ASSERT_TRUE(mount_->ok()) << mount_->error();
    ASSERT_EQ(::mkdir((*mount_ / "t").c_str(), 0700), 0);
    ASSERT_EQ(WriteFile(*mount_ / "t/ctl", "allocate 0 80M\n"), 0);
    fd_ = ::open((*mount_ / "t/mem").c_str(), O_RDWR);
    ASSERT_GE(fd_, 0) << std::strerror(errno);
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
    mount_.reset();
  }

  std::size_t page_ = 0;
  std::unique_ptr<Mount> mount_;
  int fd_ = -1;
};

TEST_P(AnyBufferTest, PreadAndPwriteFromAnyBufferAlignment) {
  for (std::size_t size : {kMiB, 3 * kMiB, 16 * kMiB, 64 * kMiB}) {
    for (std::size_t misalign : kMisalignments) {
      SCOPED_TRACE("size " + std::to_string(size) + ", buffer +" +
                   std::to_string(misalign));
      const off_t at = static_cast<off_t>(page_);
      OddBuffer out(size, misalign), in(size, (misalign * 7 + 3) % kPage);
      out.Fill(static_cast<unsigned>(size / kMiB + misalign));
      ASSERT_EQ(::pwrite(fd_, out.data(), size, at), static_cast<ssize_t>(size))
          << std::strerror(errno);
      ASSERT_EQ(::pread(fd_, in.data(), size, at), static_cast<ssize_t>(size))
          << std::strerror(errno);
      EXPECT_EQ(FirstDifference(out.data(), in.data(), size), -1);
    }
  }
}

TEST_P(AnyBufferTest, VectorsWithOddSegmentsAndAlignments) {
  // 64 segments (README: the most a request's part of a vector may have)
  // of odd sizes at odd places, adding up to whole pages.
  const std::size_t total = 3 * kMiB + 4 * page_;
  const std::size_t sizes[] = {1, 4095, 4097, 12345, 77777, 100, 65537, 3};
  constexpr std::size_t kSegments = 64;
  std::vector<std::unique_ptr<OddBuffer>> out, in;
  std::vector<iovec> out_iov, in_iov;
  std::size_t used = 0;
  for (std::size_t i = 0; used < total; ++i) {
    const std::size_t n =
        i + 1 < kSegments ? std::min(sizes[i % std::size(sizes)], total - used)
                          : total - used;
    out.push_back(std::make_unique<OddBuffer>(n, (i * 613) % kPage));
    in.push_back(std::make_unique<OddBuffer>(n, (i * 389 + 5) % kPage));
    out.back()->Fill(static_cast<unsigned>(i + 1));
    out_iov.push_back({out.back()->data(), n});
    in_iov.push_back({in.back()->data(), n});
    used += n;
  }
  const off_t at = static_cast<off_t>(16 * page_);
  ASSERT_EQ(
      ::pwritev(fd_, out_iov.data(), static_cast<int>(out_iov.size()), at),
      static_cast<ssize_t>(total))
      << std::strerror(errno);
  ASSERT_EQ(::preadv(fd_, in_iov.data(), static_cast<int>(in_iov.size()), at),
            static_cast<ssize_t>(total))
      << std::strerror(errno);
  for (std::size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(FirstDifference(out[i]->data(), in[i]->data(), out[i]->size()),
              -1)
        << "segment " << i;
  }
}

TEST_P(AnyBufferTest, PythonPlainFileIo) {
  // os.pread/os.pwrite of bytes objects (never page-aligned), buffered
  // f.read(1 << 20) loops and f.write of a 3 MiB bytes.
  const std::string script = R"PY(
import hashlib, os, sys
mem, page = sys.argv[1], int(sys.argv[2])
fd = os.open(mem, os.O_RDWR)
for size in (1 << 20, 3 << 20, 16 << 20, 64 << 20):
    data = bytes((i * 7 + size) % 251 for i in range(251)) * (size // 251 + 1)
    data = data[:size]
    assert os.pwrite(fd, data, page) == size, size
    back = os.pread(fd, size, page)
    assert back == data, ("pread", size)
with open(mem, "r+b", buffering=0) as f:
    f.seek(page)
    blob = os.urandom(3 << 20)
    assert f.write(blob) == len(blob)
with open(mem, "rb") as f:
    f.seek(page)
    got = b""
    while len(got) < len(blob):
        chunk = f.read(1 << 20)
        assert len(chunk) == 1 << 20, len(chunk)
        got += chunk
    assert got == blob
print("ok")
)PY";
  const RunResult r = RunCommand(
      {"python3", "-c", script, *mount_ / "t/mem", std::to_string(page_)},
      std::chrono::seconds(120));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "ok\n");
}

TEST_P(AnyBufferTest, RefusedTransferOfOneRequestChangesNothing) {
  // 512 KiB is one request at every page size. A page in its middle is
  // read-only: the write fails whole, from any buffer.
  const std::size_t size = 512 * 1024;
  const std::size_t bad = size / 2 / page_ * page_;
  ASSERT_EQ(
      WriteFile(*mount_ / "t/ctl", "protect " + std::to_string(bad) + " " +
                                       std::to_string(page_) + " r--\n"),
      0);
  for (std::size_t misalign : kMisalignments) {
    OddBuffer before(size, 0), out(size, misalign), after(size, 0);
    ASSERT_EQ(::pread(fd_, before.data(), size, 0), static_cast<ssize_t>(size));
    out.Fill(99);
    errno = 0;
    EXPECT_EQ(::pwrite(fd_, out.data(), size, 0), -1) << "+" << misalign;
    EXPECT_EQ(errno, EACCES);
    ASSERT_EQ(::pread(fd_, after.data(), size, 0), static_cast<ssize_t>(size));
    EXPECT_EQ(FirstDifference(before.data(), after.data(), size), -1)
        << "+" << misalign;
  }
}

TEST_P(AnyBufferTest, TransferFailingInALaterRequestKeepsTheEarlierOnes) {
  // A 4 MiB write whose page at 3 MiB is read-only: the requests before the
  // one holding that page are done and the call returns their bytes; that
  // request and the ones after it change nothing (README: "Request size").
  const std::size_t size = 4 * kMiB;
  const std::size_t bad = 3 * kMiB;
  ASSERT_EQ(
      WriteFile(*mount_ / "t/ctl", "protect " + std::to_string(bad) + " " +
                                       std::to_string(page_) + " r--\n"),
      0);
  for (std::size_t misalign : {std::size_t{0}, std::size_t{16}}) {
    SCOPED_TRACE("buffer +" + std::to_string(misalign));
    OddBuffer zeros(size, 0);
    std::memset(zeros.data(), 0, size);
    // Reset the writable parts to zeros (one write before, one after bad).
    ASSERT_EQ(::pwrite(fd_, zeros.data(), bad, 0), static_cast<ssize_t>(bad));
    ASSERT_EQ(::pwrite(fd_, zeros.data(), size - bad - page_,
                       static_cast<off_t>(bad + page_)),
              static_cast<ssize_t>(size - bad - page_));
    OddBuffer out(size, misalign);
    out.Fill(5);
    const ssize_t n = ::pwrite(fd_, out.data(), size, 0);
    ASSERT_GT(n, 0) << std::strerror(errno);
    const std::size_t done = static_cast<std::size_t>(n);
    EXPECT_EQ(done % page_, 0u);
    EXPECT_LE(done, bad);
    EXPECT_GT(done + kMiB, bad) << "more than one request was left undone";
    // What it returned is written; nothing after it changed.
    OddBuffer back(size, 0);
    ASSERT_EQ(::pread(fd_, back.data(), bad, 0), static_cast<ssize_t>(bad));
    EXPECT_EQ(FirstDifference(back.data(), out.data(), done), -1);
    EXPECT_EQ(FirstDifference(back.data() + done, zeros.data(), bad - done),
              -1);
    ASSERT_EQ(::pread(fd_, back.data(), size - bad - page_,
                      static_cast<off_t>(bad + page_)),
              static_cast<ssize_t>(size - bad - page_));
    EXPECT_EQ(FirstDifference(back.data(), zeros.data(), size - bad - page_),
              -1);
  }
  // Reads likewise: pages at 3 MiB made unreadable end the read there.
  ASSERT_EQ(
      WriteFile(*mount_ / "t/ctl", "protect " + std::to_string(bad) + " " +
                                       std::to_string(page_) + " ---\n"),
      0);
  OddBuffer in(size, 16);
  const ssize_t n = ::pread(fd_, in.data(), size, 0);
  ASSERT_GT(n, 0) << std::strerror(errno);
  EXPECT_EQ(static_cast<std::size_t>(n) % page_, 0u);
  EXPECT_LE(static_cast<std::size_t>(n), bad);
  EXPECT_GT(static_cast<std::size_t>(n) + kMiB, bad);
}

TEST_P(AnyBufferTest, UnalignedTransfersAreStillInvalid) {
  // The rule is about the caller's buffer, not the address or size.
  OddBuffer buf(2 * page_, 16);
  errno = 0;
  EXPECT_EQ(::pread(fd_, buf.data(), page_ - 1, 0), -1);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(::pwrite(fd_, buf.data(), page_, 1), -1);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(::pread(fd_, buf.data(), 2 * page_, static_cast<off_t>(page_ / 2)),
            -1);
  EXPECT_EQ(errno, EINVAL);
}

INSTANTIATE_TEST_SUITE_P(PageSizes, AnyBufferTest,
                         ::testing::Values(4096u, 16384u, 65536u),
                         [](const ::testing::TestParamInfo<unsigned>& info) {
                           return "Page" + std::to_string(info.param);
                         });

}  // namespace
}  // namespace taskfs::testing
