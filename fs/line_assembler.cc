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

bool Lines::Next(Line* out) {
  if (rest_.empty()) return false;
  const std::size_t end = rest_.find('\n');
  out->text = rest_.substr(0, end);
  rest_.remove_prefix(end == std::string_view::npos ? rest_.size() : end + 1);
  if (out->text.size() > max_line_) {
    out->status = Line::Status::kTooLong;
  } else if (out->text.find('\0') != std::string_view::npos) {
    out->status = Line::Status::kNulByte;
  } else {
    out->status = Line::Status::kOk;
  }
  return true;
}

Lines LineAssembler::Feed(std::string_view write) {
  std::string_view text = write;
  if (!pending_.empty()) {
    joined_ = std::move(pending_);
    pending_.clear();
    joined_.append(write);
    text = joined_;
  }
  if (write.find('\n') != std::string_view::npos && text.back() != '\n') {
    const std::size_t keep = text.rfind('\n') + 1;
    if (text.size() - keep <= max_line_) {
      pending_.assign(text.substr(keep));
      text = text.substr(0, keep);
    }
  }
  return Lines(text, max_line_);
}

Lines LineAssembler::Finish() {
  joined_ = std::move(pending_);
  pending_.clear();
  return Lines(joined_, max_line_);
}

}  // namespace taskfs::fs
