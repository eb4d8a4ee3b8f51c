#include "storage_reader.h"

#include <string>

#include "../util/error.h"
#include "storage_format.h"

namespace cmo::blob {

namespace {
std::string hex(uint64_t v) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  do {
    s.insert(s.begin(), digits[v & 0xF]);
    v >>= 4;
  } while (v);
  return "0x" + s;
}
}  // namespace

StorageReader::StorageReader(const std::string& path) : file_(path) {
  const uint64_t size = file_.size();
  if (size < kHeaderSize)
    throw Error("EWEIGHTS", path + ": not a blob storage file: " + std::to_string(size) +
                                " bytes is shorter than the 64-byte header");
  const uint8_t* p = file_.data();
  uint32_t version = load_u32_le(p + kHeaderVersionAt);
  if (version != kStorageVersion)
    throw Error("EWEIGHTS", path + ": unsupported blob storage version " + std::to_string(version) + " (expected 2)");
  count_ = load_u32_le(p + kHeaderCountAt);
  // Every record needs at least its 64-byte metadata, so a larger count cannot be right.
  uint64_t capacity = (size - kHeaderSize) / kMetadataSize;
  if (count_ > capacity)
    throw Error("EWEIGHTS", path + ": header claims " + std::to_string(count_) + " blobs but the " +
                                std::to_string(size) + "-byte file can hold at most " + std::to_string(capacity));
}

void StorageReader::fail(uint64_t offset, const std::string& what) const {
  throw Error("EWEIGHTS", path() + ": blob at offset " + std::to_string(offset) + ": " + what);
}

Record StorageReader::record(uint64_t off) const {
  const uint64_t size = file_.size();
  if (off < kHeaderSize) fail(off, "offset points into the 64-byte file header");
  if (off > size || size - off < kMetadataSize)
    fail(off, "metadata record extends past the end of the " + std::to_string(size) + "-byte file");
  const uint8_t* m = file_.data() + off;
  uint32_t sentinel = load_u32_le(m + kMetaSentinelAt);
  if (sentinel != kSentinel) fail(off, "no blob metadata here (sentinel " + hex(sentinel) + ", expected 0xdeadbeef)");
  uint32_t code = load_u32_le(m + kMetaDTypeAt);
  if (!dtype_is_known(code)) fail(off, "unknown dtype code " + std::to_string(code));
  Record r;
  r.metadata_offset = off;
  r.dtype = static_cast<DType>(code);
  r.size_in_bytes = load_u64_le(m + kMetaSizeAt);
  r.data_offset = load_u64_le(m + kMetaOffsetAt);
  // Data after its own metadata also guarantees that walking the records always moves forward.
  if (r.data_offset < off + kMetadataSize)
    fail(off, "data offset " + std::to_string(r.data_offset) + " is before the end of its metadata (" +
                  std::to_string(off + kMetadataSize) + ")");
  if (r.data_offset > size || r.size_in_bytes > size - r.data_offset)
    fail(off, "data [" + std::to_string(r.data_offset) + ", +" + std::to_string(r.size_in_bytes) +
                  ") extends past the end of the " + std::to_string(size) + "-byte file");
  const unsigned bits = bits_of(r.dtype);
  if (is_sub_byte(r.dtype)) {
    uint64_t padding = load_u64_le(m + kMetaPaddingAt);
    if (padding >= 8) fail(off, "padding_size_in_bits " + std::to_string(padding) + " is not below 8");
    if ((bits == 1 || bits == 2 || bits == 4) && padding % bits != 0)
      fail(off, "padding_size_in_bits " + std::to_string(padding) + " is not a multiple of " + std::to_string(bits) +
                    " for " + dtype_name(r.dtype));
    if (r.size_in_bytes == 0 && padding != 0) fail(off, "empty blob with non-zero padding_size_in_bits");
    // size <= file size < 2^63, so size*8 cannot overflow... unless the file is > 2 EiB; guard anyway.
    if (r.size_in_bytes > UINT64_MAX / 8) fail(off, "size in bytes is too large");
    uint64_t used_bits = r.size_in_bytes * 8 - padding;
    if (used_bits % bits != 0)
      fail(off, std::to_string(r.size_in_bytes) + " bytes minus " + std::to_string(padding) +
                    " padding bits is not a whole number of " + dtype_name(r.dtype) + " elements");
    r.element_count = used_bits / bits;
  } else {
    uint64_t width = bits / 8;
    if (r.size_in_bytes % width != 0)
      fail(off, "size " + std::to_string(r.size_in_bytes) + " bytes is not a multiple of the " + dtype_name(r.dtype) +
                    " element size (" + std::to_string(width) + ")");
    r.element_count = r.size_in_bytes / width;
  }
  return r;
}

uint64_t StorageReader::next_metadata_offset(const Record& r) {
  uint64_t next = 0;
  // data_offset + size <= file size was checked, so neither step can wrap for a validated record.
  round_up64(r.data_offset + r.size_in_bytes, &next);
  return next;
}

std::vector<Record> StorageReader::records() const {
  std::vector<Record> out;
  out.reserve(count_);
  uint64_t off = kHeaderSize;
  for (uint32_t i = 0; i < count_; ++i) {
    if (i > 0 && off >= file_.size())
      throw Error("EWEIGHTS", path() + ": header claims " + std::to_string(count_) + " blobs but the file ends after " +
                                  std::to_string(i));
    out.push_back(record(off));
    off = next_metadata_offset(out.back());
  }
  return out;
}

const uint8_t* StorageReader::data(const Record& r) const {
  const uint64_t size = file_.size();
  if (r.data_offset > size || r.size_in_bytes > size - r.data_offset)
    fail(r.metadata_offset, "data range is not inside this file");
  return file_.data() + r.data_offset;
}

}  // namespace cmo::blob
