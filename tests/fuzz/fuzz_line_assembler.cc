// Fuzz target: ctl line reassembly (fs/line_assembler.h; docs/reference.md §6).
// A stream cut into writes at any points yields the lines of the uncut stream.
//
// Input: byte 0 chooses the line limit (high bit set: kMaxCtlLine, else
// the low 7 bits, so that short limits are reached); byte 1 mod 32 is the
// number of cuts, and that many bytes follow, each the distance from the
// previous cut; the rest is the stream. A piece without a newline is a
// whole command by contract (`printf 'allocate 0 4K' > ctl`), so a cut that
// would leave a piece other than the last without a newline is dropped.
//
// Checked:
//   - the lines of a text, joined with newlines, give back the text;
//   - no line holds a newline; a kept piece is never longer than the limit,
//     nor is what the assembler keeps;
//   - the cut stream's lines (each write's, then Finish's) equal the uncut
//     stream's, up to the first line too long: there both are too long,
//     the cut one a prefix of the uncut one (a write that holds it fails,
//     and what the stream holds after it does not run).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "fs/line_assembler.h"
#include "fs/open_file.h"
#include "tests/fuzz/fuzz_input.h"

namespace taskfs::fuzz {
namespace {

using fs::Line;
using fs::LineAssembler;
using fs::Lines;

struct Got {
  std::string text;
  Line::Status status;
};

[[noreturn]] void Fail(std::string_view what, std::size_t index) {
  std::fprintf(stderr, "\n%.*s (line %zu)\n", static_cast<int>(what.size()),
               what.data(), index);
  std::abort();
}

void Collect(Lines lines, std::vector<Got>* out) {
  Line line;
  while (lines.Next(&line)) {
    if (line.text.find('\n') != std::string_view::npos) {
      Fail("a line holds a newline", out->size());
    }
    out->push_back({std::string(line.text), line.status});
  }
}

// The lines of text joined by newlines, plus the final newline if it had
// one, are text again.
void CheckSplit(std::string_view text, const std::vector<Got>& lines) {
  std::string joined;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i != 0) joined += '\n';
    joined += lines[i].text;
  }
  if (!text.empty() && text.back() == '\n') joined += '\n';
  if (joined != text) Fail("the lines do not give back the text", 0);
}

}  // namespace
}  // namespace taskfs::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  using namespace taskfs::fuzz;
  FuzzInput in(data, size);
  const std::uint8_t limit = in.Byte();
  const std::size_t max_line =
      (limit & 0x80) != 0 ? taskfs::fs::kMaxCtlLine : (limit & 0x7f);
  const unsigned cuts = in.Byte() % 32;
  std::vector<std::size_t> gaps;
  for (unsigned i = 0; i < cuts; ++i) gaps.push_back(in.Byte());
  const std::string_view stream = in.Rest();

  std::vector<Got> uncut;
  Collect(Lines(stream, max_line), &uncut);
  CheckSplit(stream, uncut);

  // Cut points, ascending, inside the stream.
  std::vector<std::size_t> at;
  std::size_t position = 0;
  for (std::size_t gap : gaps) {
    position = std::min(position + gap, stream.size());
    at.push_back(position);
  }
  at.push_back(stream.size());
  std::vector<std::string_view> pieces;
  std::size_t start = 0;
  for (std::size_t end : at) {
    const std::string_view piece = stream.substr(start, end - start);
    if (end != stream.size() && piece.find('\n') == std::string_view::npos) {
      continue;  // merged with the next piece
    }
    pieces.push_back(piece);
    start = end;
  }

  LineAssembler assembler(max_line);
  std::vector<Got> cut;
  for (std::string_view piece : pieces) {
    Collect(assembler.Feed(piece), &cut);
    if (assembler.pending().size() > max_line) {
      Fail("a kept piece is longer than the limit", cut.size());
    }
    if (assembler.pending().find('\n') != std::string_view::npos) {
      Fail("a kept piece holds a newline", cut.size());
    }
    // What it keeps is bounded by the limit (or std::string's smallest
    // allocation), however large the writes.
    if (assembler.kept_bytes() > std::max<std::size_t>(max_line, 30)) {
      Fail("the assembler keeps more than its limit", cut.size());
    }
  }
  Collect(assembler.Finish(), &cut);
  if (!assembler.pending().empty()) Fail("Finish keeps a piece", cut.size());

  for (std::size_t i = 0; i < std::max(cut.size(), uncut.size()); ++i) {
    if (i >= cut.size() || i >= uncut.size()) {
      Fail("the cut stream yields a different number of lines", i);
    }
    const bool cut_long = cut[i].status == Line::Status::kTooLong;
    const bool uncut_long = uncut[i].status == Line::Status::kTooLong;
    if (cut_long || uncut_long) {
      if (!cut_long || !uncut_long) Fail("only one line is too long", i);
      if (uncut[i].text.compare(0, cut[i].text.size(), cut[i].text) != 0) {
        Fail("a too-long cut line is not a prefix of the uncut one", i);
      }
      break;
    }
    if (cut[i].text != uncut[i].text || cut[i].status != uncut[i].status) {
      Fail("the cut stream yields a different line", i);
    }
  }
  return 0;
}
