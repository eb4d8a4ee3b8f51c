#include "tensor_view.h"

#include <cmath>
#include <cstring>

#include "../util/fp16.h"
#include "../util/thread_pool.h"

#include <algorithm>

namespace cmo::kernels {

const char* mil_dtype_name(DType t) {
  switch (t) {
    case DType::Float16: return "fp16";
    case DType::Float32: return "fp32";
    case DType::UInt8: return "uint8";
    case DType::Int8: return "int8";
    case DType::BFloat16: return "bf16";
    case DType::Int16: return "int16";
    case DType::UInt16: return "uint16";
    case DType::Int4: return "int4";
    case DType::UInt1: return "uint1";
    case DType::UInt2: return "uint2";
    case DType::UInt4: return "uint4";
    case DType::UInt3: return "uint3";
    case DType::UInt6: return "uint6";
    case DType::Int32: return "int32";
    case DType::UInt32: return "uint32";
    case DType::Float8E4M3FN: return "fp8e4m3fn";  // stored by blob files; no kernel computes in them
    case DType::Float8E5M2: return "fp8e5m2";
  }
  return "unknown";
}

DType mil_dtype_from_name(const std::string& n) {
  if (n == "fp16" || n == "float16") return DType::Float16;
  if (n == "fp32" || n == "float32") return DType::Float32;
  if (n == "uint8") return DType::UInt8;
  if (n == "int8") return DType::Int8;
  if (n == "int16") return DType::Int16;
  if (n == "uint16") return DType::UInt16;
  if (n == "int4") return DType::Int4;
  if (n == "uint1") return DType::UInt1;
  if (n == "uint2") return DType::UInt2;
  if (n == "uint3") return DType::UInt3;
  if (n == "uint4") return DType::UInt4;
  if (n == "uint6") return DType::UInt6;
  if (n == "int32") return DType::Int32;
  if (n == "uint32") return DType::UInt32;
  throw Error("EINVAL", "unknown tensor dtype '" + n + "'");
}

int dtype_bits(DType t) { return static_cast<int>(blob::bits_of(t)); }

size_t dtype_unpacked_size(DType t) {
  int b = dtype_bits(t);
  return b <= 8 ? 1 : static_cast<size_t>(b / 8);
}

bool dtype_is_float(DType t) { return t == DType::Float16 || t == DType::Float32 || t == DType::BFloat16; }
bool dtype_is_subbyte(DType t) { return dtype_bits(t) < 8; }
bool dtype_is_signed_int(DType t) {
  return t == DType::Int8 || t == DType::Int4 || t == DType::Int16 || t == DType::Int32;
}

int64_t shape_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error("EINVAL", "negative dimension in shape " + shape_string(shape));
    if (d != 0 && n > (int64_t{1} << 48) / d) throw Error("EINVAL", "shape " + shape_string(shape) + " is too large");
    n *= d;
  }
  return n;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

void TensorData::validate(const std::string& what) const {
  int64_t n = numel();
  size_t need = static_cast<size_t>(n) * dtype_unpacked_size(dtype);
  if (n > 0 && data == nullptr) throw Error("EINVAL", what + ": no data for shape " + shape_string(shape));
  if (byte_size < need)
    throw Error("EINVAL", what + ": " + std::to_string(byte_size) + " bytes of " + mil_dtype_name(dtype) +
                              " data cannot hold shape " + shape_string(shape) + " (" + std::to_string(need) +
                              " bytes needed)");
}

float TensorData::get_float(size_t i) const {
  switch (dtype) {
    case DType::Float16: {
      uint16_t h;
      std::memcpy(&h, data + 2 * i, 2);
      return half_to_float(h);
    }
    case DType::Float32: {
      float f;
      std::memcpy(&f, data + 4 * i, 4);
      return f;
    }
    case DType::BFloat16: {
      uint16_t h;
      std::memcpy(&h, data + 2 * i, 2);
      uint32_t b = static_cast<uint32_t>(h) << 16;
      float f;
      std::memcpy(&f, &b, 4);
      return f;
    }
    default:
      return static_cast<float>(get_int(i));
  }
}

int64_t TensorData::get_int(size_t i) const {
  switch (dtype) {
    case DType::Int8: case DType::Int4: return static_cast<int8_t>(data[i]);
    case DType::UInt8: case DType::UInt1: case DType::UInt2: case DType::UInt3: case DType::UInt4: case DType::UInt6:
      return data[i];
    case DType::Int16: { int16_t v; std::memcpy(&v, data + 2 * i, 2); return v; }
    case DType::UInt16: { uint16_t v; std::memcpy(&v, data + 2 * i, 2); return v; }
    case DType::Int32: { int32_t v; std::memcpy(&v, data + 4 * i, 4); return v; }
    case DType::UInt32: { uint32_t v; std::memcpy(&v, data + 4 * i, 4); return v; }
    default:
      return static_cast<int64_t>(get_float(i));
  }
}

Tensor::Tensor(DType t, std::vector<int64_t> s) : dtype(t), shape(std::move(s)) {
  bytes.assign(static_cast<size_t>(shape_numel(shape)) * dtype_unpacked_size(t), 0);
}

void Tensor::set_float(size_t i, float v) {
  switch (dtype) {
    case DType::Float16: { uint16_t h = float_to_half(v); std::memcpy(bytes.data() + 2 * i, &h, 2); break; }
    case DType::Float32: std::memcpy(bytes.data() + 4 * i, &v, 4); break;
    case DType::Int8: case DType::Int4: bytes[i] = static_cast<uint8_t>(static_cast<int8_t>(v)); break;
    case DType::Int16: { int16_t x = static_cast<int16_t>(v); std::memcpy(bytes.data() + 2 * i, &x, 2); break; }
    case DType::UInt16: { uint16_t x = static_cast<uint16_t>(v); std::memcpy(bytes.data() + 2 * i, &x, 2); break; }
    case DType::Int32: { int32_t x = static_cast<int32_t>(v); std::memcpy(bytes.data() + 4 * i, &x, 4); break; }
    case DType::UInt32: { uint32_t x = static_cast<uint32_t>(v); std::memcpy(bytes.data() + 4 * i, &x, 4); break; }
    default: bytes[i] = static_cast<uint8_t>(v); break;
  }
}

std::vector<float> to_float32(const TensorData& t) {
  t.validate("to_float32");
  const size_t n = static_cast<size_t>(t.numel());
  std::vector<float> out(n);
  if (t.dtype == DType::Float32) {
    if (n) std::memcpy(out.data(), t.data, n * 4);
    return out;
  }
  // Type dispatch outside the element loop; chunks in parallel for large weights.
  constexpr size_t chunk = 1 << 16;
  parallel_for((n + chunk - 1) / chunk, [&](size_t c) {
    const size_t b = c * chunk, e = std::min(n, b + chunk);
    if (t.dtype == DType::Float16) {
      for (size_t i = b; i < e; ++i) {
        uint16_t h;
        std::memcpy(&h, t.data + 2 * i, 2);
        out[i] = half_to_float(h);
      }
    } else if (t.dtype == DType::UInt8 || t.dtype == DType::UInt1 || t.dtype == DType::UInt2 || t.dtype == DType::UInt3 ||
               t.dtype == DType::UInt4 || t.dtype == DType::UInt6) {
      for (size_t i = b; i < e; ++i) out[i] = static_cast<float>(t.data[i]);
    } else {
      for (size_t i = b; i < e; ++i) out[i] = t.get_float(i);
    }
  });
  return out;
}

}  // namespace cmo::kernels
