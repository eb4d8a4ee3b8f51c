// Read-only memory map of a whole file. Large weight files (> 4 GB) are never read into memory:
// kernels work on views of the mapping (the compression stream reads its inputs with pread instead:
// util/file_reader.h) and the OS pages data in and out as needed.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace cmo {

class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const std::string& path);  // throws cmo::Error("ENOENT"/"EIO", ...)
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const noexcept { return data_; }
  uint64_t size() const noexcept { return size_; }
  const std::string& path() const noexcept { return path_; }

  // Tells the kernel we read [offset, offset+length) once, front to back (streaming passes).
  void advise_sequential(uint64_t offset, uint64_t length) const;
  // Lets the kernel drop pages we are done with, bounding resident memory on huge files.
  void release(uint64_t offset, uint64_t length) const;

 private:
  void reset() noexcept;
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace cmo
