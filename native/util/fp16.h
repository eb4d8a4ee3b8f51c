// IEEE 754 binary16 <-> binary32, exact and branch-light. Scalar on purpose: it is the reference
// that vector paths (F16C / NEON) are tested against.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace cmo {

inline float half_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      mant &= 0x3FFu;
      bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | (mant << 13);
    }
  } else if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even, as numpy's astype(float16) does.
inline uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t absx = x & 0x7FFFFFFFu;
  if (absx >= 0x7F800000u) {  // Inf or NaN
    uint32_t mant = absx > 0x7F800000u ? (0x200u | ((absx >> 13) & 0x3FFu)) : 0;
    return static_cast<uint16_t>(sign | 0x7C00u | mant);
  }
  if (absx >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // overflow -> Inf
  if (absx < 0x38800000u) {  // result is subnormal or zero
    if (absx < 0x33000000u) return static_cast<uint16_t>(sign);  // < half of smallest subnormal
    uint32_t mant = (absx & 0x7FFFFFu) | 0x800000u;
    int shift = 126 - static_cast<int>(absx >> 23);  // 14..24 (+1 for the implicit bit)
    uint32_t rounded = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (rounded & 1u))) ++rounded;
    return static_cast<uint16_t>(sign | rounded);
  }
  uint32_t rounded = absx + 0xFFFu + ((absx >> 13) & 1u);  // round half to even on bit 13
  return static_cast<uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
}

// All 65,536 halves as floats (built once, 256 KB): a lookup beats the software conversion in
// loops over every element of a weight.
inline const float* half_to_float_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(65536);
    for (uint32_t h = 0; h < 65536; ++h) t[h] = half_to_float(static_cast<uint16_t>(h));
    return t;
  }();
  return table.data();
}

// Element i of a raw fp16 (F16) or fp32 array as float; no alignment assumed (blob data in a
// mapping, packed buffers). Chosen at compile time so hot loops carry no dtype switch.
template <bool F16>
inline float load_float_element(const uint8_t* data, size_t i) {
  if constexpr (F16) {
    uint16_t h;
    std::memcpy(&h, data + 2 * i, 2);
    return half_to_float(h);
  } else {
    float f;
    std::memcpy(&f, data + 4 * i, 4);
    return f;
  }
}

}  // namespace cmo
