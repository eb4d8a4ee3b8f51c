// Fast sub-byte packing: whole bytes at a time for 1/2/4 bits (no element straddles a byte), a
// 64-bit bit buffer for 3/6 bits. Linear, branch-light, no per-element calls; sub_byte_ref.cc is the
// oracle these are tested against.
#include <cstring>
#include <string>

#include "../util/error.h"
#include "sub_byte.h"

namespace cmo::blob {

namespace {

unsigned packable_bits(DType dtype, const char* what) {
  unsigned bits = bits_of(dtype);
  if (bits == 0 || bits > 8)
    throw Error("EWEIGHTS", std::string(what) + ": dtype " + dtype_name(dtype) + " is not a sub-byte or 8-bit type");
  return bits;
}

// OR of all values, or of the int4 values offset into [0, 15]: one pass that only looks for "any bad".
bool all_in_range(DType dtype, unsigned bits, const uint8_t* values, uint64_t n) {
  unsigned acc = 0;
  if (dtype == DType::Int4) {
    for (uint64_t i = 0; i < n; ++i) acc |= static_cast<uint8_t>(values[i] + 8u);
  } else {
    for (uint64_t i = 0; i < n; ++i) acc |= values[i];
  }
  return (acc >> bits) == 0;
}

template <unsigned Bits>
void pack_whole_bytes(const uint8_t* values, uint64_t n, uint8_t* out) {
  constexpr unsigned per = 8 / Bits;
  constexpr unsigned mask = (1u << Bits) - 1;
  uint64_t full = n / per;
  for (uint64_t o = 0; o < full; ++o) {
    const uint8_t* v = values + o * per;
    unsigned byte = 0;
    for (unsigned k = 0; k < per; ++k) byte |= (v[k] & mask) << (k * Bits);
    out[o] = static_cast<uint8_t>(byte);
  }
  uint64_t rest = n - full * per;
  if (rest) {
    unsigned byte = 0;
    for (unsigned k = 0; k < rest; ++k) byte |= (values[full * per + k] & mask) << (k * Bits);
    out[full] = static_cast<uint8_t>(byte);
  }
}

template <unsigned Bits>
void unpack_whole_bytes(const uint8_t* packed, uint64_t n, uint8_t* out) {
  constexpr unsigned per = 8 / Bits;
  constexpr unsigned mask = (1u << Bits) - 1;
  uint64_t full = n / per;
  for (uint64_t o = 0; o < full; ++o) {
    unsigned byte = packed[o];
    uint8_t* v = out + o * per;
    for (unsigned k = 0; k < per; ++k) v[k] = static_cast<uint8_t>((byte >> (k * Bits)) & mask);
  }
  uint64_t rest = n - full * per;
  for (unsigned k = 0; k < rest; ++k) out[full * per + k] = static_cast<uint8_t>((packed[full] >> (k * Bits)) & mask);
}

void pack_bit_buffer(unsigned bits, const uint8_t* values, uint64_t n, uint8_t* out) {
  const unsigned mask = (1u << bits) - 1;
  uint64_t acc = 0;
  unsigned filled = 0;
  for (uint64_t i = 0; i < n; ++i) {
    acc |= static_cast<uint64_t>(values[i] & mask) << filled;
    filled += bits;
    while (filled >= 8) {
      *out++ = static_cast<uint8_t>(acc);
      acc >>= 8;
      filled -= 8;
    }
  }
  if (filled) *out = static_cast<uint8_t>(acc);
}

void unpack_bit_buffer(unsigned bits, const uint8_t* packed, uint64_t n, uint8_t* out) {
  const unsigned mask = (1u << bits) - 1;
  uint64_t acc = 0;
  unsigned filled = 0;
  for (uint64_t i = 0; i < n; ++i) {
    if (filled < bits) {  // reads only bytes that belong to element i, never past the packed size
      acc |= static_cast<uint64_t>(*packed++) << filled;
      filled += 8;
    }
    out[i] = static_cast<uint8_t>(acc & mask);
    acc >>= bits;
    filled -= bits;
  }
}

}  // namespace

void pack_sub_byte(DType dtype, const uint8_t* values, uint64_t n, uint8_t* out) {
  unsigned bits = packable_bits(dtype, "pack");
  if (bits == 8) {
    if (n) std::memcpy(out, values, n);
    return;
  }
  if (!all_in_range(dtype, bits, values, n)) check_sub_byte_range(dtype, values, n);  // throws with the index
  switch (bits) {
    case 1: pack_whole_bytes<1>(values, n, out); break;
    case 2: pack_whole_bytes<2>(values, n, out); break;
    case 4: pack_whole_bytes<4>(values, n, out); break;
    default: pack_bit_buffer(bits, values, n, out); break;
  }
}

void unpack_sub_byte(DType dtype, const uint8_t* packed, uint64_t n, uint8_t* out) {
  unsigned bits = packable_bits(dtype, "unpack");
  switch (bits) {
    case 8:
      if (n) std::memcpy(out, packed, n);
      return;
    case 1: unpack_whole_bytes<1>(packed, n, out); break;
    case 2: unpack_whole_bytes<2>(packed, n, out); break;
    case 4: unpack_whole_bytes<4>(packed, n, out); break;
    default: unpack_bit_buffer(bits, packed, n, out); break;
  }
  if (dtype == DType::Int4) {
    for (uint64_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>((out[i] ^ 8u) - 8u);  // sign-extend bit 3
  }
}

}  // namespace cmo::blob
