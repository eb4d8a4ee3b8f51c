// Helpers shared by the compression transforms of the weight-stream job: typed views of input
// records (sub-byte records unpacked to one value per byte, as the kernels want them) and output
// blobs built from kernel tensors (packed again for sub-byte dtypes).
#pragma once
#include <cstring>
#include <string>
#include <vector>

#include "../blob/blob.h"
#include "../kernels/tensor_view.h"
#include "../stream/weight_stream.h"
#include "../util/error.h"

namespace cmo::addon {

// A record as an owned-or-borrowed kernel view with `shape` (element count checked).
struct SourceTensor {
  std::vector<uint8_t> unpacked;  // filled for sub-byte records
  kernels::TensorData view;
};

inline SourceTensor source_tensor(const stream::Source& s, const std::vector<int64_t>& shape, const char* what) {
  SourceTensor out;
  const kernels::DType t = s.record.dtype;
  if (static_cast<uint64_t>(kernels::shape_numel(shape)) != s.record.element_count)
    throw Error("EINVAL", std::string(what) + ": blob at offset " + std::to_string(s.record.metadata_offset) + " holds " +
                              std::to_string(s.record.element_count) + " elements, expected " + kernels::shape_string(shape));
  out.view.dtype = t;
  out.view.shape = shape;
  if (kernels::dtype_is_subbyte(t)) {
    out.unpacked.resize(static_cast<size_t>(s.record.element_count));
    blob::unpack_sub_byte(s.record.dtype, s.data, s.record.element_count, out.unpacked.data());
    out.view.data = out.unpacked.data();
    out.view.byte_size = out.unpacked.size();
  } else {
    out.view.data = s.data;
    out.view.byte_size = static_cast<size_t>(s.record.size_in_bytes);
  }
  out.view.validate(what);
  return out;
}

// An output blob holding a kernel tensor (sub-byte dtypes packed LSB-first).
inline stream::OutputBlob blob_of(const kernels::Tensor& t, bool inline_if_small = true) {
  stream::OutputBlob b;
  b.dtype = t.dtype;
  b.element_count = static_cast<uint64_t>(t.numel());
  b.inline_if_small = inline_if_small;
  b.dedup_shape = kernels::shape_string(t.shape);
  if (kernels::dtype_is_subbyte(t.dtype)) {
    b.bytes.resize(blob::packed_size(b.dtype, b.element_count));
    blob::pack_sub_byte(b.dtype, t.bytes.data(), b.element_count, b.bytes.data());
  } else {
    b.bytes = t.bytes;
  }
  return b;
}

// The record's bytes unchanged (a value the new chain keeps, e.g. a mask or indices).
inline stream::OutputBlob copy_of(const stream::Source& s, bool inline_if_small = true) {
  stream::OutputBlob b;
  b.dtype = s.record.dtype;
  b.element_count = s.record.element_count;
  b.bytes.assign(s.data, s.data + s.record.size_in_bytes);
  b.inline_if_small = inline_if_small;
  return b;
}

inline std::vector<double> dims_of(const std::vector<int64_t>& s) { return std::vector<double>(s.begin(), s.end()); }

// Dense tensor from non-zero values and a 0/1 mask (row-major fill), in the values' dtype.
inline kernels::Tensor densify(const kernels::TensorData& nonzero, const std::vector<uint8_t>& mask,
                               const std::vector<int64_t>& shape, const char* what) {
  kernels::Tensor dense(nonzero.dtype, shape);
  const size_t es = kernels::dtype_unpacked_size(nonzero.dtype);
  size_t k = 0;
  const size_t d = static_cast<size_t>(nonzero.numel());
  for (size_t i = 0; i < mask.size(); ++i) {
    if (!mask[i]) continue;
    if (k >= d) throw Error("EINVAL", std::string(what) + ": the mask has more ones than the " + std::to_string(d) + " non-zero values");
    std::memcpy(&dense.bytes[i * es], nonzero.data + k * es, es);
    ++k;
  }
  if (k != d) throw Error("EINVAL", std::string(what) + ": the mask has " + std::to_string(k) + " ones for " + std::to_string(d) + " non-zero values");
  return dense;
}

// Runs a transform, prefixing its errors with the weight's name (cancellation passes through).
template <class F>
stream::TransformOutput named_transform(const std::string& name, F&& f) {
  try {
    return f();
  } catch (const Cancelled&) {
    throw;
  } catch (const Error& e) {
    if (name.empty()) throw;
    throw Error(e.code(), "weight " + name + ": " + e.what());
  }
}

}  // namespace cmo::addon
