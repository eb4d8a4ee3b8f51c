// Reference (bit-at-a-time) sub-byte packing. Deliberately naive: it is the test oracle.
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
}  // namespace

void check_sub_byte_range(DType dtype, const uint8_t* values, uint64_t n) {
  unsigned bits = packable_bits(dtype, "pack");
  if (bits == 8) return;
  for (uint64_t i = 0; i < n; ++i) {
    bool ok;
    if (dtype == DType::Int4) {
      int v = static_cast<int8_t>(values[i]);
      ok = v >= -8 && v <= 7;
    } else {
      ok = values[i] < (1u << bits);
    }
    if (!ok) {
      int shown = dtype == DType::Int4 ? static_cast<int8_t>(values[i]) : values[i];
      std::string range = dtype == DType::Int4 ? "[-8, 7]" : "[0, " + std::to_string((1u << bits) - 1) + "]";
      throw Error("ERANGE", std::string(dtype_name(dtype)) + " value " + std::to_string(shown) + " at index " +
                                std::to_string(i) + " is out of range " + range);
    }
  }
}

void pack_sub_byte_ref(DType dtype, const uint8_t* values, uint64_t n, uint8_t* out) {
  unsigned bits = packable_bits(dtype, "pack");
  check_sub_byte_range(dtype, values, n);
  uint64_t bytes = packed_size(dtype, n);
  if (bytes) std::memset(out, 0, bytes);
  uint64_t pos = 0;
  for (uint64_t i = 0; i < n; ++i) {
    for (unsigned b = 0; b < bits; ++b, ++pos) {
      if ((values[i] >> b) & 1u) out[pos / 8] |= static_cast<uint8_t>(1u << (pos % 8));
    }
  }
}

void unpack_sub_byte_ref(DType dtype, const uint8_t* packed, uint64_t n, uint8_t* out) {
  unsigned bits = packable_bits(dtype, "unpack");
  uint64_t pos = 0;
  for (uint64_t i = 0; i < n; ++i) {
    unsigned v = 0;
    for (unsigned b = 0; b < bits; ++b, ++pos) v |= ((packed[pos / 8] >> (pos % 8)) & 1u) << b;
    if (dtype == DType::Int4 && (v & 0x8u)) v |= 0xF0u;  // sign-extend from bit 3
    out[i] = static_cast<uint8_t>(v);
  }
}

}  // namespace cmo::blob
