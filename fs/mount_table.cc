#include "fs/mount_table.h"

#include <fstream>
#include <iterator>
#include <vector>

namespace taskfs::fs {
namespace {

// mountinfo writes space, tab, newline and backslash in paths as \ooo.
std::string Unescape(std::string_view field) {
  std::string out;
  out.reserve(field.size());
  for (std::size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && field[i + 1] >= '0' &&
        field[i + 1] <= '3' && field[i + 2] >= '0' && field[i + 2] <= '7' &&
        field[i + 3] >= '0' && field[i + 3] <= '7') {
      out.push_back(static_cast<char>((field[i + 1] - '0') * 64 +
                                      (field[i + 2] - '0') * 8 +
                                      (field[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(field[i]);
    }
  }
  return out;
}

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> fields;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ') ++i;
    if (i > start) fields.push_back(line.substr(start, i - start));
  }
  return fields;
}

}  // namespace

std::optional<std::string> MountTypeAt(std::string_view mountinfo,
                                       std::string_view path) {
  std::optional<std::string> type;
  while (!mountinfo.empty()) {
    const std::size_t end = mountinfo.find('\n');
    const std::string_view line = mountinfo.substr(0, end);
    mountinfo.remove_prefix(end == std::string_view::npos ? mountinfo.size()
                                                          : end + 1);
    // ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - TYPE SOURCE
    const std::vector<std::string_view> f = Fields(line);
    if (f.size() < 7 || Unescape(f[4]) != path) continue;
    for (std::size_t i = 6; i + 1 < f.size(); ++i) {
      if (f[i] == "-") {
        type = Unescape(f[i + 1]);
        break;
      }
    }
  }
  return type;
}

std::optional<std::string> CurrentMountTypeAt(std::string_view path) {
  std::ifstream in("/proc/self/mountinfo");
  if (!in) return std::nullopt;
  const std::string text{std::istreambuf_iterator<char>(in),
                         std::istreambuf_iterator<char>()};
  return MountTypeAt(text, path);
}

}  // namespace taskfs::fs
