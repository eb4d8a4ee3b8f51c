// Fast sub-byte packing: 8 values at a time as one 64-bit word, gathered into / spread out of
// `bits` bytes with three shift-and-mask steps (SWAR), for every width 1..6; the tail (< 8 values)
// goes through a 64-bit bit buffer. Linear, branch-free inner loop, no per-element calls.
// sub_byte_ref.cc is the oracle these are tested against.
#include <cstring>
#include <string>

#include "../util/error.h"
#include "sub_byte.h"

namespace cmo::blob {

namespace {

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
constexpr bool kLittleEndian = true;
#else
constexpr bool kLittleEndian = false;  // big-endian hosts use the bit buffer for everything
#endif

unsigned packable_bits(DType dtype, const char* what) {
  unsigned bits = bits_of(dtype);
  if (bits == 0 || bits > 8)
    throw Error("EWEIGHTS", std::string(what) + ": dtype " + dtype_name(dtype) + " is not a sub-byte or 8-bit type");
  return bits;
}

// `keep` low bits set in every `lane`-bit lane of a 64-bit word.
constexpr uint64_t lanes(unsigned lane, unsigned keep) {
  uint64_t m = 0;
  for (unsigned at = 0; at < 64; at += lane) m |= ((uint64_t{1} << keep) - 1) << at;
  return m;
}

// One merge step: in every `2h`-bit lane, the payload of the upper half (p bits at bit h) moves down
// next to the payload of the lower half (p bits at bit 0). Masks are compile-time constants.
template <unsigned H, unsigned P>
inline uint64_t merge(uint64_t w) {
  constexpr uint64_t low = lanes(2 * H, P);
  constexpr uint64_t high = lanes(2 * H, H + P) & ~lanes(2 * H, H);
  return (w & low) | ((w & high) >> (H - P));
}
// Inverse of merge: bits [p, 2p) of every 2h-bit lane move up to [h, h + p).
template <unsigned H, unsigned P>
inline uint64_t split(uint64_t w) {
  constexpr uint64_t low = lanes(2 * H, P);
  constexpr uint64_t high = lanes(2 * H, 2 * P) & ~lanes(2 * H, P);
  return (w & low) | ((w & high) << (H - P));
}

// 8 values (one per byte, masked to B bits) -> 8*B packed bits in the low bytes.
template <unsigned B>
inline uint64_t gather8(uint64_t w) {
  return merge<32, 4 * B>(merge<16, 2 * B>(merge<8, B>(w)));
}
// Inverse of gather8 (input: 8*B bits in the low bytes, zero above).
template <unsigned B>
inline uint64_t spread8(uint64_t w) {
  return split<8, B>(split<16, 2 * B>(split<32, 4 * B>(w)));
}

// Generic LSB-first bit buffer (tails and big-endian hosts).
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
    if (filled < bits) {  // reads only bytes that hold part of element i: never past the packed size
      acc |= static_cast<uint64_t>(*packed++) << filled;
      filled += 8;
    }
    out[i] = static_cast<uint8_t>(acc & mask);
    acc >>= bits;
    filled -= bits;
  }
}

template <unsigned B>
void pack_swar(const uint8_t* values, uint64_t n, uint8_t* out) {
  if (kLittleEndian) {
    for (; n >= 8; n -= 8, values += 8, out += B) {
      uint64_t w;
      std::memcpy(&w, values, 8);
      constexpr uint64_t value_mask = lanes(8, B);
      uint64_t packed = gather8<B>(w & value_mask);
      std::memcpy(out, &packed, B);  // the low B bytes of a little-endian word
    }
  }
  pack_bit_buffer(B, values, n, out);
}

// SignExtend4: int4 nibbles become int8 (bit 3 copied into bits 4..7 of every byte; no carries).
template <unsigned B, bool SignExtend4>
void unpack_swar(const uint8_t* packed, uint64_t n, uint8_t* out) {
  auto emit = [&out](uint64_t values) {
    if (SignExtend4) values |= (values & 0x0808080808080808ull) * 0x1E;
    std::memcpy(out, &values, 8);
    out += 8;
  };
  if (kLittleEndian) {
    // While at least 64 values remain, at least 8 packed bytes do: load a whole word (one load
    // instead of a B-byte copy) and keep its low 8*B bits.
    constexpr uint64_t keep = B == 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * B)) - 1;
    for (; n >= 64; n -= 8, packed += B) {
      uint64_t w;
      std::memcpy(&w, packed, 8);
      emit(spread8<B>(w & keep));
    }
    for (; n >= 8; n -= 8, packed += B) {
      uint64_t w = 0;
      std::memcpy(&w, packed, B);
      emit(spread8<B>(w));
    }
  }
  unpack_bit_buffer(B, packed, n, out);
  if (SignExtend4)
    for (uint64_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>((out[i] ^ 8u) - 8u);
}

// One pass that only answers "is any value out of range": OR of all values (int4 shifted to [0, 15]).
bool all_in_range(DType dtype, unsigned bits, const uint8_t* values, uint64_t n) {
  unsigned acc = 0;
  if (dtype == DType::Int4) {
    for (uint64_t i = 0; i < n; ++i) acc |= static_cast<uint8_t>(values[i] + 8u);
  } else {
    for (uint64_t i = 0; i < n; ++i) acc |= values[i];
  }
  return (acc >> bits) == 0;
}

}  // namespace

void pack_sub_byte(DType dtype, const uint8_t* values, uint64_t n, uint8_t* out) {
  unsigned bits = packable_bits(dtype, "pack");
  if (bits == 8) {
    if (n && out != values) std::memmove(out, values, n);
    return;
  }
  if (!all_in_range(dtype, bits, values, n)) check_sub_byte_range(dtype, values, n);  // throws with the index
  switch (bits) {
    case 1: pack_swar<1>(values, n, out); break;
    case 2: pack_swar<2>(values, n, out); break;
    case 3: pack_swar<3>(values, n, out); break;
    case 4: pack_swar<4>(values, n, out); break;
    case 6: pack_swar<6>(values, n, out); break;
    default: pack_bit_buffer(bits, values, n, out); break;
  }
}

void unpack_sub_byte(DType dtype, const uint8_t* packed, uint64_t n, uint8_t* out) {
  unsigned bits = packable_bits(dtype, "unpack");
  switch (bits) {
    case 8:
      if (n) std::memcpy(out, packed, n);
      return;
    case 1: unpack_swar<1, false>(packed, n, out); break;
    case 2: unpack_swar<2, false>(packed, n, out); break;
    case 3: unpack_swar<3, false>(packed, n, out); break;
    case 4:
      if (dtype == DType::Int4)
        unpack_swar<4, true>(packed, n, out);
      else
        unpack_swar<4, false>(packed, n, out);
      break;
    case 6: unpack_swar<6, false>(packed, n, out); break;
    default: unpack_bit_buffer(bits, packed, n, out); break;  // not reached: every width has a case
  }
}

}  // namespace cmo::blob
