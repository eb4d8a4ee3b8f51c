// "quantize" entries of compressWeights: linear quantization with kernels/quantize (coremltools'
// numerics) and the blobs of the op it feeds, in coremltools' order (spec §2.6 / §4.5):
//   form "dense", iOS18:  data, scale[, offset]                 (constexpr_blockwise_shift_scale)
//   form "dense", iOS16:  quantized_data, zero_point, scale     (constexpr_affine_dequantize; the
//                         zero point is always present: zeros of the data dtype when symmetric)
//   form "sparse":        data_mask (copied), nonzero_data, scale[, offset]
//                         (constexpr_sparse_blockwise_shift_scale; joint prune → quantize)
//   form "lut":           data, scale[, offset], then every extra source copied (the LUT of a
//                         palettized weight, quantized per tensor; joint palettize → quantize)
#include <cmath>

#include "../kernels/quantize.h"
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

bool has_inf(const kernels::TensorData& t) {
  for (int64_t i = 0; i < t.numel(); ++i)
    if (std::isinf(t.get_float(static_cast<size_t>(i)))) return true;
  return false;
}

// Σ w² and Σ (w − scale·(q − zero point))² for the report, in parallel chunks (each chunk walks
// its multi-index incrementally to find the element's scale block).
void quantization_error(const kernels::TensorData& w, const kernels::QuantizeResult& r, double* signal, double* sse) {
  const auto& shape = r.quantized.shape;
  const auto& sshape = r.scale.shape;
  const size_t rank = shape.size();
  const size_t n = static_cast<size_t>(r.quantized.numel());
  constexpr size_t kChunk = 1 << 16;
  const size_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> sig(chunks, 0), err(chunks, 0);
  const kernels::TensorData qv = r.quantized.view(), sv = r.scale.view();
  const kernels::TensorData zv = r.zero_point ? r.zero_point->view() : kernels::TensorData{};
  std::vector<int64_t> block(rank);
  for (size_t a = 0; a < rank; ++a) block[a] = shape[a] / sshape[a];
  parallel_for(chunks, [&](size_t c) {
    const size_t begin = c * kChunk, end = std::min(n, begin + kChunk);
    std::vector<int64_t> idx(rank, 0);
    size_t rem = begin;
    for (size_t a = rank; a-- > 0;) {
      idx[a] = static_cast<int64_t>(rem % static_cast<size_t>(shape[a]));
      rem /= static_cast<size_t>(shape[a]);
    }
    double s_sig = 0, s_err = 0;
    for (size_t i = begin; i < end; ++i) {
      int64_t s = 0;
      for (size_t a = 0; a < rank; ++a) s = s * sshape[a] + idx[a] / block[a];
      const float zp = r.zero_point ? static_cast<float>(zv.get_int(static_cast<size_t>(s))) : 0.f;
      const double approx = sv.get_float(static_cast<size_t>(s)) * (static_cast<float>(qv.get_int(i)) - zp);
      const double x = w.get_float(i);
      s_sig += x * x;
      s_err += (x - approx) * (x - approx);
      for (size_t a = rank; a-- > 0;) {
        if (++idx[a] < shape[a]) break;
        idx[a] = 0;
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
    out.skipped = std::string("dtype ") + kernels::dtype_name(weight.dtype) + " is not a float weight";
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
