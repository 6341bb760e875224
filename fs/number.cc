#include "fs/number.h"

#include <charconv>
#include <system_error>

namespace taskfs::fs {

ParsedNumber ParseNumber(std::string_view text, NumberForm form) {
  using Error = ParsedNumber::Error;
  std::string_view digits = text;
  unsigned shift = 0;
  if (form == NumberForm::kSize && !digits.empty()) {
    switch (digits.back()) {
      case 'K':
      case 'k':
        shift = 10;
        break;
      case 'M':
      case 'm':
        shift = 20;
        break;
      case 'G':
      case 'g':
        shift = 30;
        break;
      case 'T':
      case 't':
        shift = 40;
        break;
      default:
        break;
    }
    if (shift != 0) digits.remove_suffix(1);
  }
  int base = 10;
  if (digits.size() > 2 && digits[0] == '0' &&
      (digits[1] == 'x' || digits[1] == 'X')) {
    base = 16;
    digits.remove_prefix(2);
  }
  // from_chars takes no sign for an unsigned type and skips no blanks; a
  // leading '+' or '-' fails the whole-string test below.
  ParsedNumber out;
  if (digits.empty()) {
    out.error = Error::kMalformed;
    return out;
  }
  const char* const end = digits.data() + digits.size();
  const auto [stop, ec] = std::from_chars(digits.data(), end, out.value, base);
  if (stop != end ||
      (ec != std::errc() && ec != std::errc::result_out_of_range)) {
    out.error = Error::kMalformed;
  } else if (ec == std::errc::result_out_of_range ||
             (shift != 0 && out.value > (UINT64_MAX >> shift))) {
    out.error = Error::kTooLarge;
  } else {
    out.value <<= shift;
  }
  return out;
}

}  // namespace taskfs::fs
