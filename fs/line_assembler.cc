#include "fs/line_assembler.h"

#include <utility>

namespace taskfs::fs {

std::string_view Line::error() const {
  switch (status) {
    case Status::kOk:
      return "";
    case Status::kTooLong:
      return "line too long";
    case Status::kNulByte:
      return "unexpected byte 0x00 in command";
  }
  return "";
}

namespace {

Line Classify(std::string_view text, std::size_t max_line) {
  Line line;
  line.text = text;
  if (text.size() > max_line) {
    line.status = Line::Status::kTooLong;
  } else if (text.find('\0') != std::string_view::npos) {
    line.status = Line::Status::kNulByte;
  }
  return line;
}

}  // namespace

bool Lines::Next(Line* out) {
  if (has_head_) {
    has_head_ = false;
    *out = Classify(head_, max_line_);
    return true;
  }
  if (rest_.empty()) return false;
  const std::size_t end = rest_.find('\n');
  *out = Classify(rest_.substr(0, end), max_line_);
  rest_.remove_prefix(end == std::string_view::npos ? rest_.size() : end + 1);
  return true;
}

Lines LineAssembler::Feed(std::string_view write) {
  const std::size_t newline = write.find('\n');
  // The lines of write after the piece that continues a kept line.
  std::string_view rest = write;
  std::string joined;
  const bool continues = !pending_.empty();
  if (continues) {
    // The kept piece (never longer than max_line) and the rest of its
    // line, as far as max_line + 1 bytes.
    joined = std::exchange(pending_, std::string());
    joined.append(
        write.substr(0, newline).substr(0, max_line_ + 1 - joined.size()));
    rest = newline == std::string_view::npos ? std::string_view()
                                             : write.substr(newline + 1);
  }
  // A write that holds a newline keeps the line it ends inside, if short.
  if (newline != std::string_view::npos && !rest.empty() &&
      rest.back() != '\n') {
    const std::size_t last = rest.rfind('\n');
    const std::size_t keep = last == std::string_view::npos ? 0 : last + 1;
    if (rest.size() - keep <= max_line_) {
      pending_.assign(rest.substr(keep));
      rest = rest.substr(0, keep);
    }
  }
  return continues ? Lines(std::move(joined), rest, max_line_)
                   : Lines(rest, max_line_);
}

Lines LineAssembler::Finish() {
  if (pending_.empty()) return Lines(std::string_view());
  return Lines(std::exchange(pending_, std::string()), std::string_view(),
               max_line_);
}

}  // namespace taskfs::fs
