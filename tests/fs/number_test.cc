#include "fs/number.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace taskfs::fs {
namespace {

using Error = ParsedNumber::Error;

std::uint64_t Value(const char* text, NumberForm form) {
  const ParsedNumber n = ParseNumber(text, form);
  EXPECT_TRUE(n.ok()) << "'" << text << "'";
  return n.value;
}

Error ErrorOf(const char* text, NumberForm form) {
  return ParseNumber(text, form).error;
}

TEST(NumberTest, DecimalAndHexInBothForms) {
  for (NumberForm form : {NumberForm::kPlain, NumberForm::kSize}) {
    EXPECT_EQ(Value("0", form), 0u);
    EXPECT_EQ(Value("4096", form), 4096u);
    EXPECT_EQ(Value("0x1000", form), 0x1000u);
    EXPECT_EQ(Value("0XaBcD", form), 0xabcdu);
    EXPECT_EQ(Value("18446744073709551615", form), UINT64_MAX);
    EXPECT_EQ(Value("0xffffffffffffffff", form), UINT64_MAX);
  }
}

TEST(NumberTest, LeadingZerosAreDecimalNotOctal) {
  EXPECT_EQ(Value("010", NumberForm::kPlain), 10u);
  EXPECT_EQ(Value("08M", NumberForm::kSize), std::uint64_t{8} << 20);
  // Leading zeros do not make a fitting value too large.
  EXPECT_EQ(
      Value("0x0000000000000000000000000000000040000", NumberForm::kPlain),
      0x40000u);
}

TEST(NumberTest, SizesTakeKMGTInEitherCase) {
  EXPECT_EQ(Value("64K", NumberForm::kSize), 64u << 10);
  EXPECT_EQ(Value("64k", NumberForm::kSize), 64u << 10);
  EXPECT_EQ(Value("64M", NumberForm::kSize), std::uint64_t{64} << 20);
  EXPECT_EQ(Value("2G", NumberForm::kSize), std::uint64_t{2} << 30);
  EXPECT_EQ(Value("3T", NumberForm::kSize), std::uint64_t{3} << 40);
  EXPECT_EQ(Value("3t", NumberForm::kSize), std::uint64_t{3} << 40);
  EXPECT_EQ(Value("0x10M", NumberForm::kSize), std::uint64_t{16} << 20);
  EXPECT_EQ(Value("17179869183G", NumberForm::kSize),
            std::uint64_t{17179869183} << 30);
  EXPECT_EQ(Value("16777215T", NumberForm::kSize),
            std::uint64_t{16777215} << 40);
}

TEST(NumberTest, PlainNumbersTakeNoSuffix) {
  for (const char* text : {"4K", "1M", "1G", "1T"}) {
    EXPECT_EQ(ErrorOf(text, NumberForm::kPlain), Error::kMalformed) << text;
  }
}

TEST(NumberTest, RejectsMalformed) {
  for (NumberForm form : {NumberForm::kPlain, NumberForm::kSize}) {
    for (const char* text :
         {"", "abc", "-1", "+1", " 1", "1 ", "\t-1", " -0x10M", "1X", "1MB",
          "1.5G", "0x", "0xg", "12a", "K", "4KK", "0x-1", "1e3"}) {
      const ParsedNumber n = ParseNumber(text, form);
      EXPECT_EQ(n.error, Error::kMalformed) << "'" << text << "'";
    }
  }
}

TEST(NumberTest, RejectsWhatDoesNotFitIn64Bits) {
  for (const char* text : {"18446744073709551616", "0x10000000000000000",
                           "99999999999999999999999999"}) {
    EXPECT_EQ(ErrorOf(text, NumberForm::kPlain), Error::kTooLarge) << text;
    EXPECT_EQ(ErrorOf(text, NumberForm::kSize), Error::kTooLarge) << text;
  }
  for (const char* text :
       {"17179869184G", "16777216T", "18014398509481984K", "0x100000000000T"}) {
    EXPECT_EQ(ErrorOf(text, NumberForm::kSize), Error::kTooLarge) << text;
  }
}

}  // namespace
}  // namespace taskfs::fs
