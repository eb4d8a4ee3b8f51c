// LSB-first sub-byte packing (spec §3.5): element i occupies bits [i*b, i*b+b) of the byte stream,
// low bit first. Same order for MIL blobs, immediates, iOS16 LUT indices and iOS16 sparse masks.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace cmo::kernels {

size_t packed_size_bytes(size_t count, int bits);

// values: one element per byte (int4 as two's complement int8 is accepted; only the low `bits` are
// stored). Unused high bits of the last byte are 0.
std::vector<uint8_t> pack_bits_lsb(const uint8_t* values, size_t count, int bits);

// Reads `count` elements of `bits` each. sign_extend: int4 style (bit bits-1 is the sign).
// Throws cmo::Error when `packed_bytes` is too short.
std::vector<uint8_t> unpack_bits_lsb(const uint8_t* packed, size_t packed_bytes, size_t count, int bits,
                                     bool sign_extend);

}  // namespace cmo::kernels
