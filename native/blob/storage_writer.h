// Writer of a MIL blob storage file (weight.bin), byte-identical to coremltools' MILBlob writer:
// header, 64-byte metadata records, data at metadata + 64, records 64-aligned with zero gap bytes,
// no trailing padding, padding_size_in_bits set for sub-byte dtypes, reserved words zero.
// Writes sequentially through a bounded buffer (never the whole file in memory); 64-bit offsets
// throughout, so files over 4 GB work. append() is thread-safe (one mutex): parallel jobs compute
// their data outside and append in any order, each getting its record's offset back.
#pragma once
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "dtype.h"
#include "storage_reader.h"

namespace cmo::blob {

class StorageWriter {
 public:
  // Creates or truncates `path` and writes a header with count 0, version 2.
  // Throws cmo::Error("EIO", "<path>: ...") when the file cannot be created.
  explicit StorageWriter(const std::string& path);
  ~StorageWriter();  // closes quietly (errors are swallowed: call close() to see them)
  StorageWriter(const StorageWriter&) = delete;
  StorageWriter& operator=(const StorageWriter&) = delete;

  // Appends one blob; `data` is already packed for sub-byte dtypes and must be exactly
  // packed_size(dtype, element_count) bytes (element_count * width for the others).
  // Returns the record's metadata offset (the BlobFileValue.offset to put in the program).
  uint64_t append(DType dtype, const void* data, uint64_t size_in_bytes, uint64_t element_count);
  // Appends values given one per byte, packing sub-byte dtypes (range-checked, cmo::Error("ERANGE")).
  // Only for sub-byte and 8-bit dtypes.
  uint64_t append_unpacked(DType dtype, const uint8_t* values_one_per_byte, uint64_t n);
  // Appends a record read from another file (data copied from its mapping; padding recomputed,
  // reserved words zeroed).
  uint64_t copy_record(const StorageReader& reader, const Record& record);

  uint32_t count() const;
  uint64_t size() const;  // bytes in the file so far (including buffered bytes)
  const std::string& path() const { return path_; }
  bool closed() const;

  // Flushes, rewrites the header with the final count, fsyncs and closes. Idempotent. Appending
  // after close() throws cmo::Error("EWEIGHTS").
  void close();

 private:
  void write_locked(const void* data, uint64_t n);
  void flush_locked();
  void write_fully(const uint8_t* p, uint64_t n, uint64_t at);
  void close_locked();
  [[noreturn]] void io_fail(const char* what, int err);

  std::string path_;
  mutable std::mutex mutex_;
  int fd_ = -1;
  bool failed_ = false;  // an earlier write failed: the file is unusable
  uint32_t count_ = 0;
  uint64_t size_ = 0;        // logical file size (written + buffered)
  uint64_t flushed_ = 0;     // bytes already written to the fd
  std::vector<uint8_t> buffer_;
};

}  // namespace cmo::blob
