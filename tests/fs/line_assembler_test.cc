// Line splitting and ctl stream reassembly (fs/line_assembler.h).
#include "fs/line_assembler.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace taskfs::fs {
namespace {

using Status = Line::Status;
using Got = std::vector<std::pair<std::string, Status>>;

Got All(Lines lines) {
  Got got;
  Line line;
  while (lines.Next(&line))
    got.emplace_back(std::string(line.text), line.status);
  return got;
}

Got Ok(std::initializer_list<const char*> texts) {
  Got got;
  for (const char* t : texts) got.emplace_back(t, Status::kOk);
  return got;
}

TEST(LinesTest, SplitsAtNewlines) {
  EXPECT_EQ(All(Lines("")), Got{});
  EXPECT_EQ(All(Lines("a")), Ok({"a"}));
  EXPECT_EQ(All(Lines("a\n")), Ok({"a"}));
  EXPECT_EQ(All(Lines("a\nb")), Ok({"a", "b"}));
  EXPECT_EQ(All(Lines("a\n\nb\n")), Ok({"a", "", "b"}));
  EXPECT_EQ(All(Lines("\n")), Ok({""}));
  EXPECT_EQ(All(Lines("\n\n")), Ok({"", ""}));
}

TEST(LinesTest, TooLongAndNulBytes) {
  const std::string nul("a\0b", 3);
  EXPECT_EQ(All(Lines("abcd\nabcde\n", 4)),
            (Got{{"abcd", Status::kOk}, {"abcde", Status::kTooLong}}));
  EXPECT_EQ(All(Lines(nul + "\nok")),
            (Got{{nul, Status::kNulByte}, {"ok", Status::kOk}}));
  // Too long is reported before a NUL byte.
  EXPECT_EQ(All(Lines(nul, 2)), (Got{{nul, Status::kTooLong}}));
  EXPECT_EQ(All(Lines(std::string(100000, 'x'))).at(0).second, Status::kOk);
}

TEST(LinesTest, Errors) {
  EXPECT_EQ((Line{"", Status::kOk}.error()), "");
  EXPECT_EQ((Line{"", Status::kTooLong}.error()), "line too long");
  EXPECT_EQ((Line{"", Status::kNulByte}.error()),
            "unexpected byte 0x00 in command");
}

TEST(LineAssemblerTest, WholeLinesRunAtOnce) {
  LineAssembler a(4096);
  EXPECT_EQ(All(a.Feed("one\ntwo\n")), Ok({"one", "two"}));
  EXPECT_TRUE(a.pending().empty());
  EXPECT_EQ(All(a.Finish()), Got{});
}

TEST(LineAssemblerTest, AWriteWithoutNewlineIsAWholeCommand) {
  LineAssembler a(4096);
  EXPECT_EQ(All(a.Feed("allocate 0 4K")), Ok({"allocate 0 4K"}));
  EXPECT_TRUE(a.pending().empty());
}

TEST(LineAssemblerTest, ACutLineIsKeptAndContinued) {
  LineAssembler a(4096);
  EXPECT_EQ(All(a.Feed("one\ntw")), Ok({"one"}));
  EXPECT_EQ(a.pending(), "tw");
  EXPECT_EQ(All(a.Feed("o\nthr")), Ok({"two"}));
  EXPECT_EQ(a.pending(), "thr");
  // A continuation without a newline completes the kept line.
  EXPECT_EQ(All(a.Feed("ee")), Ok({"three"}));
  EXPECT_TRUE(a.pending().empty());
}

TEST(LineAssemblerTest, AKeptLineRunsAtTheEnd) {
  LineAssembler a(4096);
  EXPECT_EQ(All(a.Feed("one\nlast")), Ok({"one"}));
  EXPECT_EQ(All(a.Finish()), Ok({"last"}));
  EXPECT_TRUE(a.pending().empty());
  EXPECT_EQ(All(a.Finish()), Got{});
}

TEST(LineAssemblerTest, AnEmptyWriteRunsTheKeptLine) {
  LineAssembler a(4096);
  EXPECT_EQ(All(a.Feed("a\nb")), Ok({"a"}));
  EXPECT_EQ(All(a.Feed("")), Ok({"b"}));
  EXPECT_EQ(All(a.Feed("")), Got{});
}

TEST(LineAssemblerTest, ACutLineTooLongToKeepRunsAndFails) {
  LineAssembler a(8);
  EXPECT_EQ(All(a.Feed("ok\n123456789")),
            (Got{{"ok", Status::kOk}, {"123456789", Status::kTooLong}}));
  EXPECT_TRUE(a.pending().empty());
  // Exactly max_line is kept.
  EXPECT_EQ(All(a.Feed("ok\n12345678")), Ok({"ok"}));
  EXPECT_EQ(a.pending(), "12345678");
  // The kept part and its continuation together are too long.
  EXPECT_EQ(All(a.Feed("9\n")), (Got{{"123456789", Status::kTooLong}}));
}

TEST(LineAssemblerTest, AKeptPieceGrowsAcrossWritesUpToTheLimit) {
  LineAssembler a(8);
  EXPECT_EQ(All(a.Feed("\nabc")), Ok({""}));
  EXPECT_EQ(All(a.Feed("\ndef")), Ok({"abc"}));
  EXPECT_EQ(All(a.Feed("ghijkl\nx")), (Got{{"defghijkl", Status::kTooLong}}));
  EXPECT_EQ(a.pending(), "x");
}

TEST(LineAssemblerTest, LinesOutliveTheWriteBuffer) {
  LineAssembler a(4096);
  std::string first = "a\nbc";
  a.Feed(first);
  std::string second = "d\ne";
  Lines lines = a.Feed(second);
  second.assign(second.size(), '#');  // the joined line lives in lines
  Line line;
  ASSERT_TRUE(lines.Next(&line));
  EXPECT_EQ(line.text, "bcd");
}

// A hostile writer keeps a cut line and then sends writes as large as the
// kernel allows: what the assembler keeps stays within the line limit, and
// the lines still come out whole and in order.
TEST(LineAssemblerTest, HoldsNoMoreThanItsLinesWhateverTheWrites) {
  constexpr std::size_t kMax = 4096;
  LineAssembler a(kMax);
  std::string big;
  for (int i = 0; i < 20000; ++i) big += "allocate 0 4K\n";
  big += "cut";  // 280 KiB of lines, ending inside one
  for (int round = 0; round < 4; ++round) {
    Lines lines = a.Feed(round == 0 ? std::string_view("\npart") : big);
    std::size_t n = 0;
    Line line;
    std::string first;
    while (lines.Next(&line)) {
      if (n++ == 0) first = std::string(line.text);
      EXPECT_EQ(line.status, Status::kOk);
    }
    EXPECT_LE(a.kept_bytes(), kMax) << "round " << round;
    if (round > 0) {
      EXPECT_EQ(n, 20000u);
      // The kept piece joined the first line of the write.
      EXPECT_EQ(first, round == 1 ? "partallocate 0 4K" : "cutallocate 0 4K");
      EXPECT_EQ(a.pending(), "cut");
    }
  }
  // A write without a newline after a kept piece is one line, and is kept
  // only as far as it takes to fail.
  const std::string huge(512 << 10, 'x');
  Lines lines = a.Feed(huge);
  Line line;
  ASSERT_TRUE(lines.Next(&line));
  EXPECT_EQ(line.status, Status::kTooLong);
  EXPECT_EQ(line.text.size(), kMax + 1);
  EXPECT_FALSE(lines.Next(&line));
  EXPECT_LE(a.kept_bytes(), kMax);
}

TEST(LineAssemblerTest, MovesWithItsKeptLine) {
  LineAssembler a(4096);
  a.Feed("x\npart");
  LineAssembler b(4096);
  std::swap(a, b);
  EXPECT_TRUE(a.pending().empty());
  EXPECT_EQ(b.pending(), "part");
  EXPECT_EQ(All(b.Feed("ial\n")), Ok({"partial"}));
}

}  // namespace
}  // namespace taskfs::fs
