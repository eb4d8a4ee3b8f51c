#include "decompress_bitpack.h"

#include <string>

#include "../util/error.h"

namespace cmo::kernels {

size_t packed_size_bytes(size_t count, int bits) { return (count * static_cast<size_t>(bits) + 7) / 8; }

std::vector<uint8_t> pack_bits_lsb(const uint8_t* values, size_t count, int bits) {
  std::vector<uint8_t> out(packed_size_bytes(count, bits), 0);
  const unsigned mask = (1u << bits) - 1u;
  size_t bit = 0;
  for (size_t i = 0; i < count; ++i, bit += static_cast<size_t>(bits)) {
    unsigned v = values[i] & mask;
    size_t byte = bit >> 3;
    unsigned shift = bit & 7u;
    out[byte] = static_cast<uint8_t>(out[byte] | (v << shift));
    if (shift + static_cast<unsigned>(bits) > 8) out[byte + 1] = static_cast<uint8_t>(out[byte + 1] | (v >> (8 - shift)));
  }
  return out;
}

std::vector<uint8_t> unpack_bits_lsb(const uint8_t* packed, size_t packed_bytes, size_t count, int bits,
                                     bool sign_extend) {
  if (bits < 1 || bits > 8) throw Error("EINVAL", "unpack_bits_lsb: bad bit width " + std::to_string(bits));
  if (packed_bytes < packed_size_bytes(count, bits))
    throw Error("EINVAL", "packed data of " + std::to_string(packed_bytes) + " bytes is too short for " +
                              std::to_string(count) + " elements of " + std::to_string(bits) + " bits");
  std::vector<uint8_t> out(count);
  const unsigned mask = (1u << bits) - 1u;
  size_t bit = 0;
  for (size_t i = 0; i < count; ++i, bit += static_cast<size_t>(bits)) {
    size_t byte = bit >> 3;
    unsigned shift = bit & 7u;
    unsigned v = static_cast<unsigned>(packed[byte]) >> shift;
    if (shift + static_cast<unsigned>(bits) > 8) v |= static_cast<unsigned>(packed[byte + 1]) << (8 - shift);
    v &= mask;
    if (sign_extend && (v & (1u << (bits - 1)))) v |= ~mask;
    out[i] = static_cast<uint8_t>(v);
  }
  return out;
}

}  // namespace cmo::kernels
