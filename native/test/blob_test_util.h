// Helpers shared by the blob storage tests and fuzz driver: temp files, whole-file reads, and the
// list of weight.bin files under the fixtures directory.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace cmo::test {

// Leaked on purpose: it must outlive the static TempDirCleanup that removes it at exit.
inline const std::string& temp_dir() {
  static const std::string* dir = [] {
    std::string tmpl = (std::filesystem::temp_directory_path() / "cmo-blob-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) std::abort();
    return new std::string(tmpl);
  }();
  return *dir;
}

// Removes the temp dir at exit (tests create their files under it).
struct TempDirCleanup {
  ~TempDirCleanup() {
    std::error_code ec;
    std::filesystem::remove_all(temp_dir(), ec);
  }
};

inline std::string temp_path(const std::string& name) { return temp_dir() + "/" + name; }

inline std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  std::vector<uint8_t> bytes(in ? static_cast<size_t>(in.tellg()) : 0);
  in.seekg(0);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return bytes;
}

inline void write_all(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

inline const char* fixtures_dir() { return "../shared/fixtures"; }

// Every weight.bin under `root`, sorted (empty when the directory is missing).
inline std::vector<std::string> find_weight_files(const std::string& root) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!std::filesystem::is_directory(root, ec)) return out;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec) && it->path().filename() == "weight.bin") out.push_back(it->path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace cmo::test
