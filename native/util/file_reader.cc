#include "file_reader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include "error.h"

namespace cmo {

FileReader::FileReader(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    const int e = errno;
    throw Error(e == ENOENT ? "ENOENT" : "EIO", path + ": cannot open: " + std::strerror(e));
  }
}

FileReader::~FileReader() {
  if (fd_ >= 0) ::close(fd_);
}

void FileReader::read_at(uint64_t offset, size_t length, uint8_t* out) const {
  size_t done = 0;
  while (done < length) {
    // One call reads at most ~2 GB on Linux; chunks keep each call well inside that.
    const size_t want = std::min<size_t>(length - done, size_t{1} << 30);
    const ssize_t got = ::pread(fd_, out + done, want, static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      throw Error("EIO", path_ + ": cannot read " + std::to_string(length) + " bytes at offset " + std::to_string(offset) +
                             ": " + std::strerror(errno));
    }
    if (got == 0)
      throw Error("EIO", path_ + ": file ends before offset " + std::to_string(offset + length) + " (read " +
                             std::to_string(offset + done) + ")");
    done += static_cast<size_t>(got);
  }
}

}  // namespace cmo
