// Plain (napi-free) tensor views shared by the compression kernels.
// DType is blob::DType (the MIL blob BlobDataType codes, spec §3.2), so a blob record's dtype is used
// directly. Sub-byte types (int4, uint1..uint6) are held UNPACKED here: one value per byte (int4 as a
// sign-extended int8), because every kernel wants random access; packing lives in decompress_bitpack.h.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../blob/dtype.h"
#include "../util/error.h"

namespace cmo::kernels {

// The blob record codes themselves: a weight record's dtype is a kernel dtype, no conversion.
using DType = blob::DType;

const char* mil_dtype_name(DType t);
// Parses the names used in the JS API ("fp16", "float16", "uint4", ...). Throws cmo::Error on unknown.
DType mil_dtype_from_name(const std::string& name);
// Bits of one element in a packed blob (fp16 = 16, uint3 = 3, ...).
int dtype_bits(DType t);
// Bytes per element in the UNPACKED in-memory form used by TensorData (sub-byte types: 1).
size_t dtype_unpacked_size(DType t);
bool dtype_is_float(DType t);
bool dtype_is_subbyte(DType t);
bool dtype_is_signed_int(DType t);

int64_t shape_numel(const std::vector<int64_t>& shape);
std::string shape_string(const std::vector<int64_t>& shape);

// A borrowed view. `data` holds numel() elements in the unpacked form, little-endian.
struct TensorData {
  DType dtype = DType::Float32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t byte_size = 0;  // bytes available at `data` (checked against numel() by validate()).

  int64_t numel() const { return shape_numel(shape); }
  // Throws cmo::Error when byte_size does not cover the shape (never read out of bounds).
  void validate(const std::string& what) const;
  // Element i as float (fp16 converted exactly; integers widened). No bounds check: call validate().
  float get_float(size_t i) const;
  // Element i as an integer (integer dtypes only).
  int64_t get_int(size_t i) const;
};

// An owned tensor in the same unpacked layout.
struct Tensor {
  DType dtype = DType::Float32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;

  Tensor() = default;
  Tensor(DType t, std::vector<int64_t> s);  // zero-filled
  int64_t numel() const { return shape_numel(shape); }
  TensorData view() const { return TensorData{dtype, shape, bytes.data(), bytes.size()}; }
  // Stores a float into element i converting to dtype (fp16: round to nearest even; ints: must be integral).
  void set_float(size_t i, float v);
  template <class T>
  T* as() {
    return reinterpret_cast<T*>(bytes.data());
  }
  template <class T>
  const T* as() const {
    return reinterpret_cast<const T*>(bytes.data());
  }
};

// Every element as float32 (the "sha256_f32le" materialization).
std::vector<float> to_float32(const TensorData& t);

}  // namespace cmo::kernels
