// On-disk layout of the MIL blob storage file, format version 2 (MILBlob StorageFormat.hpp):
//   [0, 64)      storage header: u32 count, u32 version (= 2), 7 x u64 reserved
//   then per blob, starting at 64 and each at a multiple of 64:
//                blob metadata (64 bytes): u32 sentinel 0xDEADBEEF, u32 dtype, u64 sizeInBytes,
//                u64 data offset (= metadata + 64), u64 padding_size_in_bits, 4 x u64 reserved
//                data (sizeInBytes bytes), then zero bytes up to the next multiple of 64
// The file ends at the last data byte. All integers little-endian; decoded byte-wise so the code
// does not depend on host endianness or alignment.
#pragma once
#include <cstdint>

namespace cmo::blob {

constexpr uint32_t kStorageVersion = 2;
constexpr uint32_t kSentinel = 0xDEADBEEFu;
constexpr uint64_t kHeaderSize = 64;
constexpr uint64_t kMetadataSize = 64;
constexpr uint64_t kAlignment = 64;

// Header field offsets.
constexpr uint64_t kHeaderCountAt = 0;
constexpr uint64_t kHeaderVersionAt = 4;
// Metadata field offsets (relative to the record).
constexpr uint64_t kMetaSentinelAt = 0;
constexpr uint64_t kMetaDTypeAt = 4;
constexpr uint64_t kMetaSizeAt = 8;
constexpr uint64_t kMetaOffsetAt = 16;
constexpr uint64_t kMetaPaddingAt = 24;

// Rounds up to a multiple of 64; returns false instead of wrapping around.
inline bool round_up64(uint64_t v, uint64_t* out) {
  if (v > UINT64_MAX - (kAlignment - 1)) return false;
  *out = (v + kAlignment - 1) & ~(kAlignment - 1);
  return true;
}

inline uint32_t load_u32_le(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}
inline uint64_t load_u64_le(const uint8_t* p) {
  return static_cast<uint64_t>(load_u32_le(p)) | static_cast<uint64_t>(load_u32_le(p + 4)) << 32;
}
inline void store_u32_le(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void store_u64_le(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

}  // namespace cmo::blob
