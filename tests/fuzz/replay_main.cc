// A main for fuzz targets built without libFuzzer: runs
// LLVMFuzzerTestOneInput once over each input file, as a libFuzzer binary
// does when given files, so that every build replays the seed corpus and
// every saved regression input under CTest.
//
//   fuzz_TARGET_replay PATH...
//
// A PATH is a file or a directory whose regular files (recursively) are run
// in name order; a missing directory is skipped, since a target may have no
// regressions yet. Each input is named on stderr before it runs, so a target
// that aborts names its input last. Exit status 0 once every input has run,
// 1 for an unreadable path or no input at all.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size);

namespace {

namespace fs = std::filesystem;

bool RunFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  if (in.bad()) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return false;
  }
  std::fprintf(stderr, "Running: %s (%zu bytes)\n", path.c_str(), bytes.size());
  // A copy of exactly size bytes, as libFuzzer passes: an over-read is
  // caught by ASan.
  const std::vector<std::uint8_t> data(bytes.begin(), bytes.end());
  LLVMFuzzerTestOneInput(data.empty() ? nullptr : data.data(), data.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t inputs = 0;
  for (int i = 1; i < argc; ++i) {
    const fs::path path = argv[i];
    std::error_code error;
    if (fs::is_regular_file(path, error)) {
      if (!RunFile(path)) return 1;
      ++inputs;
      continue;
    }
    if (!fs::is_directory(path, error)) {
      if (fs::exists(path, error)) {
        std::fprintf(stderr, "not a file or directory: %s\n", argv[i]);
        return 1;
      }
      continue;
    }
    std::vector<fs::path> files;
    for (const fs::directory_entry& entry :
         fs::recursive_directory_iterator(path)) {
      if (entry.is_regular_file()) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& file : files) {
      if (!RunFile(file)) return 1;
      ++inputs;
    }
  }
  if (inputs == 0) {
    std::fprintf(stderr, "no inputs found\n");
    return 1;
  }
  std::fprintf(stderr, "replayed %zu inputs\n", inputs);
  return 0;
}
