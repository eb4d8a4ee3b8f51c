// "quantize" entries of compressWeights: linear quantization with kernels/quantize (coremltools'
// numerics) and the blobs of the op it feeds, in coremltools' order (spec §2.6 / §4.5):
//   form "dense", iOS18:  data, scale[, offset]                 (constexpr_blockwise_shift_scale)
//   form "dense", iOS16:  quantized_data, zero_point, scale     (constexpr_affine_dequantize; the
//                         zero point is always present: zeros of the data dtype when symmetric)
//   form "sparse":        data_mask (copied), nonzero_data, scale[, offset]
//                         (constexpr_sparse_blockwise_shift_scale; joint prune → quantize)
//   form "lut":           data, scale[, offset], then every extra source copied (the LUT of a
//                         palettized weight, quantized per tensor; joint palettize → quantize)
#include <algorithm>
#include <cmath>
#include <cstring>

#include "../kernels/quantize.h"
#include "../util/fp16.h"
#include "../util/thread_pool.h"
#include "compress_entries.h"
#include "compress_sources.h"

namespace cmo::addon {

namespace {

enum class Form { Dense, Sparse, Lut };

struct QuantizeEntry {
  std::vector<int64_t> shape;
  kernels::QuantizeOptions options;
  Form form = Form::Dense;
  bool ios16 = false;
};

// Float weights only (the caller checked). fp16 inf is exponent 0x1F with a zero mantissa, so the
// fp16 scan is integer-only; both scans are split over the pool.
bool has_inf(const kernels::TensorData& t) {
  const size_t n = static_cast<size_t>(t.numel());
  constexpr size_t kChunk = 1 << 16;
  const size_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<uint8_t> found(chunks, 0);
  const bool f16 = t.dtype == kernels::DType::Float16;
  parallel_for(chunks, [&](size_t c) {
    const size_t begin = c * kChunk, end = std::min(n, begin + kChunk);
    bool any = false;
    if (f16) {
      for (size_t i = begin; i < end; ++i) {
        uint16_t h;
        std::memcpy(&h, t.data + 2 * i, 2);
        any |= (h & 0x7FFFu) == 0x7C00u;
      }
    } else {
      for (size_t i = begin; i < end; ++i) {
        uint32_t x;
        std::memcpy(&x, t.data + 4 * i, 4);
        any |= (x & 0x7FFFFFFFu) == 0x7F800000u;
      }
    }
    found[c] = any;
  });
  for (uint8_t f : found)
    if (f) return true;
  return false;
}


// Σ w² and Σ (w − scale·(q − zero point))² for the report, in parallel chunks of kChunk elements,
// each summed in element order (so the totals do not depend on the thread count). Within a chunk
// the scale block is found per row and then per run of the last axis's block, not per element.
template <bool F16, bool Signed>
void quantization_error_typed(const kernels::TensorData& w, const kernels::QuantizeResult& r, double* signal, double* sse) {
  const auto& shape = r.quantized.shape;
  const auto& sshape = r.scale.shape;
  const size_t rank = shape.size();
  const size_t n = static_cast<size_t>(r.quantized.numel());
  constexpr size_t kChunk = 1 << 16;
  const size_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> sig(chunks, 0), err(chunks, 0);
  const uint8_t* q = r.quantized.bytes.data();
  const uint8_t* sc = r.scale.bytes.data();
  const uint8_t* zp = r.zero_point ? r.zero_point->bytes.data() : nullptr;
  std::vector<int64_t> block(rank), sstride(rank, 1);
  for (size_t a = 0; a < rank; ++a) block[a] = shape[a] / sshape[a];
  for (size_t a = rank; a-- > 1;) sstride[a - 1] = sstride[a] * sshape[a];
  const size_t last = rank ? static_cast<size_t>(shape[rank - 1]) : 1;
  const size_t blast = rank ? static_cast<size_t>(block[rank - 1]) : 1;
  auto row_base = [&](size_t row) {
    size_t s = 0;
    for (size_t a = rank - 1; a-- > 0;) {
      const size_t ia = row % static_cast<size_t>(shape[a]);
      row /= static_cast<size_t>(shape[a]);
      s += ia / static_cast<size_t>(block[a]) * static_cast<size_t>(sstride[a]);
    }
    return s;
  };
  auto qval = [&](const uint8_t* p, size_t i) {
    return Signed ? static_cast<float>(static_cast<int8_t>(p[i])) : static_cast<float>(p[i]);
  };
  parallel_for(chunks, [&](size_t c) {
    const size_t begin = c * kChunk, end = std::min(n, begin + kChunk);
    double s_sig = 0, s_err = 0;
    size_t i = begin;
    while (i < end) {
      const size_t row = i / last, rbase = rank > 1 ? row_base(row) : 0;
      const size_t row_end = std::min(end, (row + 1) * last);
      while (i < row_end) {
        const size_t j = i - row * last;
        const size_t s = rbase + j / blast;
        const size_t run_end = std::min(row_end, i + (blast - j % blast));
        const float scale = load_float_element<F16>(sc, s);
        const float z = zp ? qval(zp, s) : 0.f;
        for (; i < run_end; ++i) {
          const double approx = scale * (qval(q, i) - z);
          const double x = load_float_element<F16>(w.data, i);
          s_sig += x * x;
          s_err += (x - approx) * (x - approx);
        }
      }
    }
    sig[c] = s_sig;
    err[c] = s_err;
  });
  for (size_t c = 0; c < chunks; ++c) {
    *signal += sig[c];
    *sse += err[c];
  }
}

void quantization_error(const kernels::TensorData& w, const kernels::QuantizeResult& r, double* signal, double* sse) {
  const bool f16 = w.dtype == kernels::DType::Float16;
  const bool sgn = r.quantized.dtype == kernels::DType::Int8 || r.quantized.dtype == kernels::DType::Int4;
  if (f16) {
    if (sgn) quantization_error_typed<true, true>(w, r, signal, sse);
    else quantization_error_typed<true, false>(w, r, signal, sse);
  } else {
    if (sgn) quantization_error_typed<false, true>(w, r, signal, sse);
    else quantization_error_typed<false, false>(w, r, signal, sse);
  }
}

stream::TransformOutput run(const QuantizeEntry& e, const std::vector<stream::Source>& sources) {
  stream::TransformOutput out;
  kernels::Tensor dense_storage;
  SourceTensor primary;
  std::vector<uint8_t> mask;
  kernels::TensorData weight;
  if (e.form == Form::Sparse) {
    if (sources.size() < 2) throw Error("EINVAL", "quantize (sparse): needs the non-zero values and the mask");
    const auto& ms = sources[1];
    SourceTensor m = source_tensor(ms, e.shape, "quantize (sparse) mask");
    mask.assign(m.view.data, m.view.data + m.view.numel());
    const auto d = static_cast<int64_t>(sources[0].record.element_count);
    primary = source_tensor(sources[0], {d}, "quantize (sparse) non-zero values");
    dense_storage = densify(primary.view, mask, e.shape, "quantize (sparse)");
    weight = dense_storage.view();
  } else {
    primary = source_tensor(sources[0], e.shape, "quantize");
    weight = primary.view;
  }
  if (weight.dtype != kernels::DType::Float16 && weight.dtype != kernels::DType::Float32) {
    out.skipped = std::string("dtype ") + kernels::mil_dtype_name(weight.dtype) + " is not a float weight";
    return out;
  }
  if (has_inf(weight)) {
    out.skipped = "the weight contains inf";
    return out;
  }
  const std::string why = kernels::check_block_sizes(e.shape, e.options.block_sizes);
  if (!why.empty()) {
    out.skipped = why;
    return out;
  }
  kernels::QuantizeResult r = kernels::quantize_linear(weight, e.options);
  double signal = 0, sse = 0;
  quantization_error(weight, r, &signal, &sse);

  if (e.form == Form::Dense && e.ios16) {
    out.blobs.push_back(blob_of(r.quantized));
    if (r.zero_point) {
      out.blobs.push_back(blob_of(*r.zero_point));
    } else {
      kernels::Tensor zeros(r.quantized.dtype, r.scale.shape);
      out.blobs.push_back(blob_of(zeros));
    }
    out.blobs.push_back(blob_of(r.scale));
  } else if (e.form == Form::Sparse) {
    out.blobs.push_back(copy_of(sources[1]));
    kernels::Tensor nz(r.quantized.dtype, {static_cast<int64_t>(primary.view.numel())});
    size_t k = 0;
    for (size_t i = 0; i < mask.size(); ++i)
      if (mask[i]) nz.bytes[k++] = r.quantized.bytes[i];
    out.blobs.push_back(blob_of(nz));
    out.blobs.push_back(blob_of(r.scale));
    if (r.zero_point) out.blobs.push_back(blob_of(*r.zero_point));
  } else {
    out.blobs.push_back(blob_of(r.quantized));
    out.blobs.push_back(blob_of(r.scale));
    if (r.zero_point) out.blobs.push_back(blob_of(*r.zero_point));
    if (e.form == Form::Lut)
      for (size_t i = 1; i < sources.size(); ++i) out.blobs.push_back(copy_of(sources[i]));
  }
  out.info.push_back({"scaleShape", dims_of(r.scale.shape)});
  out.info.push_back({"hasOffset", {r.zero_point ? 1.0 : 0.0}});
  out.info.push_back({"sse", {sse}});
  out.info.push_back({"signal", {signal}});
  return out;
}

stream::Transform parse(const Napi::Object& o, const std::shared_ptr<CancelToken>&) {
  auto e = std::make_shared<QuantizeEntry>();
  e->shape = get_shape(o, "shape");
  const std::string mode = get_string(o, "mode", "linear_symmetric");
  if (mode == "linear_symmetric") e->options.mode = kernels::QuantMode::LinearSymmetric;
  else if (mode == "linear") e->options.mode = kernels::QuantMode::Linear;
  else throw Napi::TypeError::New(o.Env(), "quantize entry: mode must be linear_symmetric or linear, got " + mode);
  const std::string dtype = get_string(o, "dtype", "int8");
  if (dtype == "int8") e->options.dtype = kernels::DType::Int8;
  else if (dtype == "uint8") e->options.dtype = kernels::DType::UInt8;
  else if (dtype == "int4") e->options.dtype = kernels::DType::Int4;
  else if (dtype == "uint4") e->options.dtype = kernels::DType::UInt4;
  else throw Napi::TypeError::New(o.Env(), "quantize entry: dtype must be int8, uint8, int4 or uint4, got " + dtype);
  e->options.block_sizes = get_shape(o, "blockSizes");
  if (e->options.block_sizes.size() != e->shape.size())
    throw Napi::TypeError::New(o.Env(), "quantize entry: blockSizes needs one entry per axis of shape");
  const std::string form = get_string(o, "form", "dense");
  if (form == "dense") e->form = Form::Dense;
  else if (form == "sparse") e->form = Form::Sparse;
  else if (form == "lut") e->form = Form::Lut;
  else throw Napi::TypeError::New(o.Env(), "quantize entry: form must be dense, sparse or lut, got " + form);
  e->ios16 = get_bool(o, "ios16", false);
  const std::string name = get_string(o, "name", "");
  return [e, name](const std::vector<stream::Source>& sources) { return named_transform(name, [&] { return run(*e, sources); }); };
}

}  // namespace

CMO_COMPRESS_ENTRY(quantize, parse);

}  // namespace cmo::addon
