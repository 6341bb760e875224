// Reads a fuzz target's input front to back. Past the end every read gives
// zeros (and Take an empty string), so any byte string decodes to something
// and a short input simply ends early.
#ifndef TASKFS_TESTS_FUZZ_FUZZ_INPUT_H_
#define TASKFS_TESTS_FUZZ_FUZZ_INPUT_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace taskfs::fuzz {

class FuzzInput {
 public:
  FuzzInput(const std::uint8_t* data, std::size_t size)
      : data_(data), size_(size) {}

  bool empty() const { return pos_ >= size_; }
  std::size_t remaining() const { return empty() ? 0 : size_ - pos_; }

  std::uint8_t Byte() { return empty() ? 0 : data_[pos_++]; }

  // `bytes` (at most 8) bytes as a little-endian number.
  std::uint64_t Little(unsigned bytes) {
    std::uint64_t value = 0;
    for (unsigned i = 0; i < bytes; ++i) {
      value |= std::uint64_t{Byte()} << (8 * i);
    }
    return value;
  }
  std::uint32_t U32() { return static_cast<std::uint32_t>(Little(4)); }
  std::uint64_t U64() { return Little(8); }

  // The next n bytes, or as many as are left.
  std::string_view Take(std::size_t n) {
    n = std::min(n, remaining());
    std::string_view taken(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return taken;
  }
  std::string_view Rest() { return Take(remaining()); }

 private:
  const std::uint8_t* const data_;
  const std::size_t size_;
  std::size_t pos_ = 0;
};

}  // namespace taskfs::fuzz

#endif  // TASKFS_TESTS_FUZZ_FUZZ_INPUT_H_
