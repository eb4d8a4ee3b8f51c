// Element types of the MIL blob storage file (MILBlob `BlobDataType`, an append-only u32 enum) and
// their bit widths. Sub-byte types (1/2/3/4/6 bits) are packed LSB-first, see sub_byte.h.
#pragma once
#include <cstdint>
#include <string>

namespace cmo::blob {

enum class DType : uint32_t {
  Float16 = 1,
  Float32 = 2,
  UInt8 = 3,
  Int8 = 4,
  BFloat16 = 5,
  Int16 = 6,
  UInt16 = 7,
  Int4 = 8,
  UInt1 = 9,
  UInt2 = 10,
  UInt4 = 11,
  UInt3 = 12,
  UInt6 = 13,
  Int32 = 14,
  UInt32 = 15,
  Float8E4M3FN = 16,
  Float8E5M2 = 17,
};

// True for the 17 codes above; anything else read from a file is rejected.
bool dtype_is_known(uint32_t code);
// Bits per element (1..32). 0 for an unknown value.
unsigned bits_of(DType dtype);
// Int4, UInt1, UInt2, UInt3, UInt4, UInt6.
bool is_sub_byte(DType dtype);
// Lower-case names as used by the TS API: "float16", "uint4", "float8e4m3fn", ... ("unknown" otherwise).
const char* dtype_name(DType dtype);
bool dtype_from_name(const std::string& name, DType* out);
// Bytes the data of `element_count` elements occupies: ceil(n*bits/8). Throws cmo::Error("EWEIGHTS")
// if that does not fit in 64 bits.
uint64_t packed_size(DType dtype, uint64_t element_count);
// Unused bits at the end of the last byte of a sub-byte blob: (8 - n*bits mod 8) mod 8; 0 otherwise.
uint64_t padding_bits(DType dtype, uint64_t element_count);

}  // namespace cmo::blob
