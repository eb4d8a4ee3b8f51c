#include "storage_writer.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../util/error.h"
#include "storage_format.h"
#include "sub_byte.h"

namespace cmo::blob {

namespace {
constexpr size_t kBufferSize = 4u << 20;  // data larger than this bypasses the buffer
constexpr uint64_t kMaxWriteChunk = 1u << 30;  // macOS write() rejects counts above INT_MAX
const uint8_t kZeros[kAlignment] = {};
}  // namespace

StorageWriter::StorageWriter(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    int e = errno;
    throw Error("EIO", path + ": cannot create blob storage file: " + std::strerror(e));
  }
  buffer_.reserve(kBufferSize);
  uint8_t header[kHeaderSize] = {};
  store_u32_le(header + kHeaderCountAt, 0);
  store_u32_le(header + kHeaderVersionAt, kStorageVersion);
  std::lock_guard<std::mutex> lock(mutex_);
  write_locked(header, sizeof header);
}

StorageWriter::~StorageWriter() {
  try {
    close();
  } catch (...) {  // NOLINT: destructors must not throw; close() reports errors to callers who ask
  }
}

void StorageWriter::io_fail(const char* what, int err) {
  failed_ = true;
  throw Error("EIO", path_ + ": " + what + ": " + std::strerror(err));
}

void StorageWriter::write_fully(const uint8_t* p, uint64_t n, uint64_t at) {
  while (n > 0) {
    size_t chunk = static_cast<size_t>(n < kMaxWriteChunk ? n : kMaxWriteChunk);
    ssize_t w = ::pwrite(fd_, p, chunk, static_cast<off_t>(at));
    if (w < 0) {
      if (errno == EINTR) continue;
      io_fail("write failed", errno);
    }
    if (w == 0) io_fail("write failed", EIO);
    p += w;
    at += static_cast<uint64_t>(w);
    n -= static_cast<uint64_t>(w);
  }
}

void StorageWriter::flush_locked() {
  if (buffer_.empty()) return;
  write_fully(buffer_.data(), buffer_.size(), flushed_);
  flushed_ += buffer_.size();
  buffer_.clear();
}

void StorageWriter::write_locked(const void* data, uint64_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  if (n == 0) return;
  if (buffer_.size() + n > kBufferSize) flush_locked();
  if (n >= kBufferSize) {
    write_fully(p, n, flushed_);
    flushed_ += n;
  } else {
    buffer_.insert(buffer_.end(), p, p + n);
  }
  size_ += n;
}

uint64_t StorageWriter::append(DType dtype, const void* data, uint64_t size_in_bytes, uint64_t element_count) {
  if (!dtype_is_known(static_cast<uint32_t>(dtype)))
    throw Error("EWEIGHTS", path_ + ": cannot append a blob of unknown dtype " + std::to_string(static_cast<uint32_t>(dtype)));
  uint64_t expected = packed_size(dtype, element_count);
  if (size_in_bytes != expected)
    throw Error("EWEIGHTS", path_ + ": cannot append " + std::to_string(element_count) + " " + dtype_name(dtype) +
                                " elements as " + std::to_string(size_in_bytes) + " bytes (expected " +
                                std::to_string(expected) + ")");
  if (size_in_bytes > 0 && data == nullptr) throw Error("EWEIGHTS", path_ + ": append: no data");

  std::lock_guard<std::mutex> lock(mutex_);
  if (fd_ < 0) throw Error("EWEIGHTS", path_ + ": cannot append to a closed blob writer");
  if (failed_) throw Error("EIO", path_ + ": cannot append after an earlier write error");
  if (count_ == UINT32_MAX) throw Error("EWEIGHTS", path_ + ": too many blobs for one file");
  uint64_t metadata_offset = 0;
  if (!round_up64(size_, &metadata_offset) || metadata_offset > UINT64_MAX - kMetadataSize - size_in_bytes)
    throw Error("EWEIGHTS", path_ + ": file would exceed 2^64 bytes");

  uint8_t meta[kMetadataSize] = {};
  store_u32_le(meta + kMetaSentinelAt, kSentinel);
  store_u32_le(meta + kMetaDTypeAt, static_cast<uint32_t>(dtype));
  store_u64_le(meta + kMetaSizeAt, size_in_bytes);
  store_u64_le(meta + kMetaOffsetAt, metadata_offset + kMetadataSize);
  store_u64_le(meta + kMetaPaddingAt, padding_bits(dtype, element_count));

  write_locked(kZeros, metadata_offset - size_);  // gap < 64 bytes
  write_locked(meta, sizeof meta);
  write_locked(data, size_in_bytes);
  ++count_;
  return metadata_offset;
}

uint64_t StorageWriter::append_unpacked(DType dtype, const uint8_t* values, uint64_t n) {
  unsigned bits = bits_of(dtype);
  if (bits == 0 || bits > 8)
    throw Error("EWEIGHTS", path_ + ": append_unpacked needs a sub-byte or 8-bit dtype, not " + dtype_name(dtype));
  if (bits == 8) return append(dtype, values, n, n);
  std::vector<uint8_t> packed(packed_size(dtype, n));
  pack_sub_byte(dtype, values, n, packed.data());
  return append(dtype, packed.data(), packed.size(), n);
}

uint64_t StorageWriter::copy_record(const StorageReader& reader, const Record& record) {
  return append(record.dtype, reader.data(record), record.size_in_bytes, record.element_count);
}

uint32_t StorageWriter::count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return count_;
}

uint64_t StorageWriter::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return size_;
}

bool StorageWriter::closed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return fd_ < 0;
}

void StorageWriter::close() {
  std::lock_guard<std::mutex> lock(mutex_);
  close_locked();
}

void StorageWriter::close_locked() {
  if (fd_ < 0) return;
  struct FdCloser {  // the fd is released whatever happens below
    int& fd;
    ~FdCloser() {
      ::close(fd);
      fd = -1;
    }
  } closer{fd_};
  if (failed_) throw Error("EIO", path_ + ": not finalized after an earlier write error");
  flush_locked();
  uint8_t count_le[4];
  store_u32_le(count_le, count_);
  write_fully(count_le, sizeof count_le, kHeaderCountAt);
  if (::fsync(fd_) != 0) io_fail("fsync failed", errno);
}

}  // namespace cmo::blob
