// Pages that say who wrote them, for the tests that check every byte a set of
// concurrent writers left: every 64-bit word of a page is tag * 512 + its
// index, so a torn page, a page of another write or a page at the wrong
// address does not decode.
#ifndef TASKFS_TESTS_INTEGRATION_TAGGED_PAGES_H_
#define TASKFS_TESTS_INTEGRATION_TAGGED_PAGES_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "tests/integration/test_util.h"

namespace taskfs::testing {

inline constexpr std::size_t kWordsPerPage = kPage / sizeof(std::uint64_t);

// Unique per (writer, page, round), never 0.
inline std::uint64_t MakeTag(std::uint64_t writer, std::uint64_t page,
                             std::uint64_t round) {
  return ((writer + 1) << 40) | (page << 20) | round;
}

inline void FillPage(unsigned char* p, std::uint64_t tag) {
  std::uint64_t* words = reinterpret_cast<std::uint64_t*>(p);
  for (std::size_t w = 0; w < kWordsPerPage; ++w) words[w] = tag * 512 + w;
}

// The page's tag, 0 for a page of zeros, or kBadPage for anything else.
inline constexpr std::uint64_t kBadPage = ~std::uint64_t{0};
inline std::uint64_t PageTag(const unsigned char* p) {
  const std::uint64_t* words = reinterpret_cast<const std::uint64_t*>(p);
  if (words[0] == 0) {
    const bool zero = std::all_of(words, words + kWordsPerPage,
                                  [](std::uint64_t w) { return w == 0; });
    return zero ? 0 : kBadPage;
  }
  if (words[0] % 512 != 0) return kBadPage;
  const std::uint64_t tag = words[0] / 512;
  for (std::size_t w = 0; w < kWordsPerPage; ++w) {
    if (words[w] != tag * 512 + w) return kBadPage;
  }
  return tag;
}

}  // namespace taskfs::testing

#endif  // TASKFS_TESTS_INTEGRATION_TAGGED_PAGES_H_
