// LSB-first sub-byte packing used by MIL blobs, MIL immediates and iOS16 constexpr indices/masks:
// element i occupies bits [i*b, i*b + b) of the byte stream, bit 0 of a byte being its least
// significant bit; 3- and 6-bit elements straddle byte boundaries. Unused high bits of the last byte
// are written as 0 and ignored on read.
//
// Values are passed one per byte: UIntN in [0, 2^N - 1]; Int4 as int8 two's complement in [-8, 7]
// (stored as the low nibble, sign-extended back on unpack). 8-bit dtypes (uint8, int8, float8*) are
// accepted too and packed as a plain copy, so callers need not special-case 8-bit indices.
#pragma once
#include <cstdint>

#include "dtype.h"

namespace cmo::blob {

// Writes packed_size(dtype, n) bytes to `out`. Throws cmo::Error("ERANGE") naming the first
// out-of-range value and its index (nothing useful is left in `out` then), cmo::Error("EWEIGHTS")
// for a dtype that is neither sub-byte nor 8-bit. `out` may be `values` itself (packing in place:
// every byte is written at or before the values already read, and nothing is written before the
// range check passes).
void pack_sub_byte(DType dtype, const uint8_t* values, uint64_t n, uint8_t* out);
// Reads packed_size(dtype, n) bytes from `packed`, writes n values one per byte.
void unpack_sub_byte(DType dtype, const uint8_t* packed, uint64_t n, uint8_t* out);

// Bit-at-a-time reference versions: the oracle for the tests of the fast paths above.
void pack_sub_byte_ref(DType dtype, const uint8_t* values, uint64_t n, uint8_t* out);
void unpack_sub_byte_ref(DType dtype, const uint8_t* packed, uint64_t n, uint8_t* out);

// Throws cmo::Error("ERANGE") for the first value outside the dtype's range (no-op for 8-bit types).
void check_sub_byte_range(DType dtype, const uint8_t* values, uint64_t n);

}  // namespace cmo::blob
