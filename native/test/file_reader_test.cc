// FileReader: exact positional reads, and errors that name the file (missing file, read past end).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "check.h"
#include "util/error.h"
#include "util/file_reader.h"

using cmo::FileReader;

namespace {
std::string temp_path() { return "/tmp/cmo_file_reader_" + std::to_string(::getpid()) + ".bin"; }
}  // namespace

TEST(reads_the_bytes_at_an_offset) {
  const std::string path = temp_path();
  std::vector<uint8_t> bytes(10000);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 7 + 3);
  FILE* f = std::fopen(path.c_str(), "wb");
  CHECK(f != nullptr);
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
  FileReader reader(path);
  std::vector<uint8_t> got(4001, 0);
  reader.read_at(1234, got.size(), got.data());
  CHECK(std::equal(got.begin(), got.end(), bytes.begin() + 1234));
  reader.read_at(0, 0, got.data());  // nothing to read: fine
  std::string message;
  try {
    reader.read_at(9000, 2000, got.data());  // 1000 bytes short
  } catch (const cmo::Error& e) {
    CHECK(e.code() == "EIO");
    message = e.what();
  }
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("ends before offset 11000") != std::string::npos);
  std::remove(path.c_str());
}

TEST(a_missing_file_is_enoent) {
  std::string code;
  try {
    FileReader reader("/tmp/cmo_file_reader_missing_" + std::to_string(::getpid()));
  } catch (const cmo::Error& e) {
    code = e.code();
  }
  CHECK(code == "ENOENT");
}

CMO_TEST_MAIN()
