// Memory-mapped reader of a MIL blob storage file (weight.bin). Opening validates the header only;
// each record is validated when it is accessed, so opening a 5 GB file touches one page. Views
// returned by data() point into the mapping and stay valid as long as the reader lives (hold it in a
// shared_ptr to share it with jobs).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "../util/mapped_file.h"
#include "dtype.h"

namespace cmo::blob {

struct Record {
  uint64_t metadata_offset = 0;  // what a MIL BlobFileValue.offset holds
  uint64_t data_offset = 0;
  uint64_t size_in_bytes = 0;
  uint64_t element_count = 0;
  DType dtype = DType::Float16;
};

class StorageReader {
 public:
  // Throws cmo::Error("EWEIGHTS", "<path>: ...") for a file that is not a version-2 blob file
  // (and ENOENT/EIO when it cannot be opened or mapped).
  explicit StorageReader(const std::string& path);

  const std::string& path() const { return file_.path(); }
  uint64_t file_size() const { return file_.size(); }
  uint32_t count() const { return count_; }

  // The record whose metadata starts at `metadata_offset`. Checks: metadata inside the file, the
  // sentinel, a known dtype, data after its metadata and inside the file, a size that is a whole
  // number of elements; for sub-byte types padding_size_in_bits < 8 (and a multiple of the width for
  // 1/2/4 bits). padding and reserved words of 8-bit-and-wider types are ignored (older writers leave
  // garbage there). Throws cmo::Error("EWEIGHTS", "<path>: blob at offset N: ...").
  Record record(uint64_t metadata_offset) const;
  // All `count()` records in file order: the first at 64, each next at roundUp64(end of data).
  std::vector<Record> records() const;
  // Offset of the record following `r` in the walk order (no validation of what is there).
  static uint64_t next_metadata_offset(const Record& r);

  // View of the record's data inside the mapping (bounds re-checked, throws if `r` is not from this file).
  const uint8_t* data(const Record& r) const;
  const MappedFile& file() const { return file_; }

 private:
  [[noreturn]] void fail(uint64_t offset, const std::string& what) const;
  MappedFile file_;
  uint32_t count_ = 0;
};

}  // namespace cmo::blob
