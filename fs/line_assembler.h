// Reassembles the command lines of a stream that arrives in pieces (the
// writes to one open ctl file, docs/reference.md §6), and splits a whole text
// (a manifest, docs/reference.md §8) the same way. No FUSE, no VM core.
#ifndef TASKFS_FS_LINE_ASSEMBLER_H_
#define TASKFS_FS_LINE_ASSEMBLER_H_

#include <cstddef>
#include <limits>
#include <string>
#include <string_view>
#include <utility>

namespace taskfs::fs {

// One line, without its newline, and what is wrong with it as a command.
struct Line {
  enum class Status { kOk, kTooLong, kNulByte };
  std::string_view text;  // valid as long as the text it was split from
  Status status = Status::kOk;

  // "" for kOk, else the one-line error a command gets for it.
  std::string_view error() const;
};

// The lines of a text, in order: the pieces between newlines, and the piece
// after the last newline if it is not empty ("a\n" is one line, "a\n\nb"
// three). A line longer than max_line bytes is kTooLong; else one holding a
// NUL byte is kNulByte.
class Lines {
 public:
  static constexpr std::size_t kNoLimit =
      std::numeric_limits<std::size_t>::max();

  explicit Lines(std::string_view text, std::size_t max_line = kNoLimit)
      : rest_(text), max_line_(max_line) {}
  // head, one line (no newline), first; then the lines of rest.
  Lines(std::string head, std::string_view rest, std::size_t max_line)
      : head_(std::move(head)),
        has_head_(true),
        rest_(rest),
        max_line_(max_line) {}

  // The next line in *out: valid while this Lines is, unmoved, and the text
  // it was split from.
  bool Next(Line* out);

 private:
  std::string head_;  // a line joined from pieces, owned here
  bool has_head_ = false;
  std::string_view rest_;
  std::size_t max_line_;
};

// A stream's writes go in one at a time; out come the lines to run now.
// A write holding a newline but ending inside a line keeps that cut line,
// and the next write continues it: tools that write in fixed-size chunks
// (cat, dd, stdio), and the kernel, which splits a large write(2), cut
// lines anywhere, and no command may run cut in two. A write without any
// newline is a whole command and runs at once, after the kept piece if
// there is one. A kept piece is never longer than max_line: a cut line
// already longer runs at once, and fails as kTooLong.
//
// Memory: whatever the writes, an assembler holds at most the kept piece,
// max_line bytes (kept_bytes() says what it holds). The lines of a write
// are views of the write itself, but for the one line a kept piece starts:
// that line is joined into the Lines returned, as far as max_line + 1 bytes
// (enough to run it, or to fail it as kTooLong), and goes with them.
//
// Not thread-safe; a value type, so that a caller may take it out from
// under its lock, feed it, and put it back.
class LineAssembler {
 public:
  explicit LineAssembler(std::size_t max_line) : max_line_(max_line) {}

  // The lines complete after write; they refer to write.
  Lines Feed(std::string_view write);

  // The end of the stream (close(2)): the kept cut line, if any, as a line
  // to run; the assembler is empty afterwards.
  Lines Finish();

  // The cut line kept for the next write; empty if none.
  std::string_view pending() const { return pending_; }
  std::size_t max_line() const { return max_line_; }
  // The bytes the assembler holds now (its kept piece's capacity): at most
  // max_line, or std::string's smallest allocation.
  std::size_t kept_bytes() const { return pending_.capacity(); }

 private:
  std::size_t max_line_;
  std::string pending_;  // the start of a line cut by the last write
};

}  // namespace taskfs::fs

#endif  // TASKFS_FS_LINE_ASSEMBLER_H_
