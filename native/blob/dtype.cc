#include "dtype.h"

#include "../util/error.h"

namespace cmo::blob {

namespace {
struct Info {
  DType dtype;
  unsigned bits;
  const char* name;
};
// Indexed by code - 1.
constexpr Info kInfo[] = {
    {DType::Float16, 16, "float16"},    {DType::Float32, 32, "float32"},
    {DType::UInt8, 8, "uint8"},         {DType::Int8, 8, "int8"},
    {DType::BFloat16, 16, "bfloat16"},  {DType::Int16, 16, "int16"},
    {DType::UInt16, 16, "uint16"},      {DType::Int4, 4, "int4"},
    {DType::UInt1, 1, "uint1"},         {DType::UInt2, 2, "uint2"},
    {DType::UInt4, 4, "uint4"},         {DType::UInt3, 3, "uint3"},
    {DType::UInt6, 6, "uint6"},         {DType::Int32, 32, "int32"},
    {DType::UInt32, 32, "uint32"},      {DType::Float8E4M3FN, 8, "float8e4m3fn"},
    {DType::Float8E5M2, 8, "float8e5m2"},
};
constexpr uint32_t kCount = sizeof(kInfo) / sizeof(kInfo[0]);

const Info* info_of(DType dtype) {
  uint32_t code = static_cast<uint32_t>(dtype);
  return code >= 1 && code <= kCount ? &kInfo[code - 1] : nullptr;
}
}  // namespace

bool dtype_is_known(uint32_t code) { return code >= 1 && code <= kCount; }

unsigned bits_of(DType dtype) {
  const Info* i = info_of(dtype);
  return i ? i->bits : 0;
}

bool is_sub_byte(DType dtype) {
  unsigned b = bits_of(dtype);
  return b > 0 && b < 8;
}

const char* dtype_name(DType dtype) {
  const Info* i = info_of(dtype);
  return i ? i->name : "unknown";
}

bool dtype_from_name(const std::string& name, DType* out) {
  for (const Info& i : kInfo) {
    if (name == i.name) {
      if (out) *out = i.dtype;
      return true;
    }
  }
  return false;
}

uint64_t packed_size(DType dtype, uint64_t element_count) {
  uint64_t bits = bits_of(dtype);
  if (bits == 0) throw Error("EWEIGHTS", "unknown blob dtype " + std::to_string(static_cast<uint32_t>(dtype)));
  // n*bits may overflow for absurd counts; split so the result is exact whenever it fits.
  uint64_t whole = element_count / 8;  // each group of 8 elements takes exactly `bits` bytes
  uint64_t rest = element_count % 8;
  if (whole > UINT64_MAX / bits) throw Error("EWEIGHTS", "element count " + std::to_string(element_count) + " is too large");
  return whole * bits + (rest * bits + 7) / 8;
}

uint64_t padding_bits(DType dtype, uint64_t element_count) {
  if (!is_sub_byte(dtype)) return 0;
  uint64_t used = (element_count % 8) * bits_of(dtype) % 8;
  return (8 - used) % 8;
}

}  // namespace cmo::blob
