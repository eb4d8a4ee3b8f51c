// Layer compression of the layerwise SparseGPT / GPTQ driver (src/optimize/sparsegpt/):
//   compressLayers({hessians, output, layers: [...]}, onProgress, cancelToken) -> Promise<report[]>
// For each layer: read its weight from the model's weight file, view it as SparseGPT's
// [rows, columns] matrix (linear [out, in]; conv one group at a time [C_out/g, C_in/g·kh·kw];
// a matmul's const y [K, N] transposed), run kernels::sparse_gpt or kernels::gptq against the
// captured Hessian, and append the FINAL blobs to a temporary blob file:
//   sparse: nonzero_data (weight dtype), mask (iOS16 packed uint8 / iOS18 uint1) — prune's form;
//   gptq:   iOS16 quantized_data uint8, zero_point uint8, scale  (constexpr_affine_dequantize)
//           iOS18 data uint{4,8}, scale, offset uint{4,8}        (constexpr_blockwise_shift_scale)
// The driver runs the next sub-program on those records (the executor decodes them) and, at the
// end, the weight stream copies them into the model's new weight.bin ("layerwise_copy" entries),
// so the weights go from C++ to C++ without passing through JS.
// Each report has the reconstruction error ‖WX − ŴX‖²/‖WX‖² from the Hessian, and the same error of
// the baseline (magnitude pruning at the same sparsity / n:m; round-to-nearest on GPTQ's grid).
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>

#include "../blob/blob.h"
#include "../blob/storage_reader.h"
#include "../blob/storage_writer.h"
#include "../kernels/prune.h"
#include "../kernels/sparsegpt.h"
#include "../util/fp16.h"
#include "../util/free_memory.h"
#include "../util/thread_pool.h"
#include "async_job.h"
#include "compress_entries.h"
#include "compress_sources.h"
#include "hessian_set.h"
#include "module_registry.h"

namespace cmo::addon {

namespace {

struct LayerJob {
  std::string name, file;
  uint64_t offset = 0;
  std::vector<int64_t> shape;
  bool transposed = false;  // matmul y [K, N]: SparseGPT's matrix is yᵀ
  std::vector<int64_t> hessians;  // one per conv group
  std::vector<int64_t> release;   // Hessians to free after this layer
  bool gptq = false;
  bool ios16 = false;
  // SparseGPT with quantized survivors, iOS18: write constexpr_sparse_blockwise_shift_scale records
  // (mask, survivor codes, scale, offset) instead of the dequantized survivors.
  bool sparse_codes = false;
  kernels::SparseGptOptions sparse;
  kernels::GptqOptions quant;
};

struct LayerReport {
  std::string name;
  int64_t rows = 0, columns = 0, groups = 1, dead = 0;
  double sparsity = 0, error = 0, baseline_error = 0, loss = 0;
  std::string note;
  std::vector<uint64_t> offsets, counts;  // records written (metadata offset, element count)
  std::vector<double> scale_shape;
  std::string data_dtype;
};

struct CompressLayersJob {
  std::shared_ptr<HessianSet> set;
  std::string output;
  std::vector<LayerJob> layers;
};

// The weight as float [rows, columns] (SparseGPT's view).
std::vector<float> load_matrix(const blob::StorageReader& reader, const LayerJob& l, int64_t* rows, int64_t* cols,
                               blob::DType* dtype) {
  blob::Record rec = reader.record(l.offset);
  const int64_t n = kernels::shape_numel(l.shape);
  if (static_cast<int64_t>(rec.element_count) != n)
    throw Error("EWEIGHTS", "blob at " + std::to_string(l.offset) + " holds " + std::to_string(rec.element_count) + " values, the weight " +
                                kernels::shape_string(l.shape) + " needs " + std::to_string(n));
  if (rec.dtype != blob::DType::Float16 && rec.dtype != blob::DType::Float32)
    throw Error("EUNSUPPORTED", std::string("dtype ") + blob::dtype_name(rec.dtype) + " is not a float weight");
  *dtype = rec.dtype;
  const uint8_t* p = reader.data(rec);
  std::vector<float> raw(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    if (rec.dtype == blob::DType::Float16) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      raw[static_cast<size_t>(i)] = half_to_float(h);
    } else {
      std::memcpy(&raw[static_cast<size_t>(i)], p + 4 * i, 4);
    }
  }
  if (l.transposed) {
    if (l.shape.size() != 2) throw Error("EINVAL", "a transposed weight must be rank 2");
    const int64_t k = l.shape[0], m = l.shape[1];
    std::vector<float> t(raw.size());
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < m; ++j) t[static_cast<size_t>(j * k + i)] = raw[static_cast<size_t>(i * m + j)];
    *rows = m, *cols = k;
    return t;
  }
  *rows = l.shape[0];
  *cols = *rows ? n / *rows : 0;
  return raw;
}

// Back to the weight's layout ([rows, columns] or transposed).
template <class T>
std::vector<T> to_layout(const std::vector<T>& m, int64_t rows, int64_t cols, bool transposed) {
  if (!transposed) return m;
  std::vector<T> t(m.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) t[static_cast<size_t>(c * rows + r)] = m[static_cast<size_t>(r * cols + c)];
  return t;
}

// Magnitude pruning of one group at the same sparsity (or n:m along the columns, tail
// proportionally like sparse_gpt): the baseline of the report.
std::vector<float> magnitude_baseline(const float* w, int64_t rows, int64_t cols, const kernels::SparseGptOptions& o, double sparsity) {
  std::vector<float> out(w, w + rows * cols);
  if (o.n > 0 && o.m > 0) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c0 = 0; c0 < cols; c0 += o.m) {
        const int64_t len = std::min<int64_t>(o.m, cols - c0);
        const int64_t prune = len == o.m ? o.n : (o.n * len) / o.m;
        std::vector<int64_t> idx(static_cast<size_t>(len));
        for (int64_t k = 0; k < len; ++k) idx[static_cast<size_t>(k)] = c0 + k;
        std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return std::fabs(w[r * cols + a]) < std::fabs(w[r * cols + b]); });
        for (int64_t k = 0; k < prune; ++k) out[static_cast<size_t>(r * cols + idx[static_cast<size_t>(k)])] = 0;
      }
    return out;
  }
  // The k smallest |w| (ties at the threshold in index order): a float copy of |w| for the
  // threshold instead of an 8-byte index per weight.
  const size_t n = out.size();
  const size_t k = std::min(n, static_cast<size_t>(std::llround(sparsity * static_cast<double>(n))));
  if (k == 0) return out;
  float t;
  {
    std::vector<float> mag(n);
    for (size_t i = 0; i < n; ++i) mag[i] = std::fabs(w[i]);
    std::nth_element(mag.begin(), mag.begin() + static_cast<std::ptrdiff_t>(k - 1), mag.end());
    t = mag[k - 1];
  }
  size_t pruned = 0;
  for (size_t i = 0; i < n; ++i)
    if (std::fabs(w[i]) < t) out[i] = 0, ++pruned;
  for (size_t i = 0; i < n && pruned < k; ++i)
    if (std::fabs(w[i]) == t) out[i] = 0, ++pruned;
  return out;
}

kernels::Tensor as_weight_tensor(const std::vector<float>& v, const std::vector<int64_t>& shape, blob::DType dtype) {
  kernels::Tensor t(dtype, shape);
  if (dtype == blob::DType::Float16) {
    uint16_t* o = t.as<uint16_t>();
    for (size_t i = 0; i < v.size(); ++i) o[i] = float_to_half(v[i]);
  } else {
    std::memcpy(t.bytes.data(), v.data(), v.size() * 4);
  }
  return t;
}

void append_blob(blob::StorageWriter& w, const kernels::Tensor& t, LayerReport* rep) {
  stream::OutputBlob b = blob_of(t, false);
  rep->offsets.push_back(w.append(b.dtype, b.bytes.data(), b.bytes.size(), b.element_count));
  rep->counts.push_back(b.element_count);
}

void append_codes(blob::StorageWriter& w, blob::DType dtype, const std::vector<uint8_t>& v, LayerReport* rep) {
  rep->offsets.push_back(w.append_unpacked(dtype, v.data(), v.size()));
  rep->counts.push_back(v.size());
}

blob::DType quant_dtype(int bits) {
  if (bits != 8 && bits != 4) throw Error("EUNSUPPORTED", std::to_string(bits) + "-bit data: constexpr ops store 4- or 8-bit integers");
  return bits == 8 ? blob::DType::UInt8 : blob::DType::UInt4;
}

// The iOS18 scale (weight dtype) and offset (uint{bits}) records of a [rows, groups] grid: shape
// [rows, groups] padded with 1s to the weight's rank ([groups, rows] transposed); a per-tensor grid
// is written per row (the same value repeated).
void write_scale_offset(blob::StorageWriter& out, const LayerJob& l, int64_t rows, int64_t cols, const std::vector<float>& scales,
                        const std::vector<float>& zeros, int64_t ngroups_q, blob::DType dtype, LayerReport* rep) {
  const int bits = l.gptq ? l.quant.quant.bits : l.sparse.quant.bits;
  std::vector<int64_t> sshape(l.shape.size(), 1);
  std::vector<float> s = scales, z = zeros;
  if (l.transposed) {
    sshape[0] = ngroups_q, sshape[1] = rows;
    s = to_layout(scales, rows, ngroups_q, true);
    z = to_layout(zeros, rows, ngroups_q, true);
  } else {
    sshape[0] = rows;
    if (sshape.size() > 1) sshape[1] = ngroups_q;
    if (l.shape.size() > 2 && ngroups_q > 1) {
      int64_t kk = 1;
      for (size_t d = 2; d < l.shape.size(); ++d) kk *= l.shape[d];
      if ((cols / ngroups_q) % kk != 0) throw Error("EUNSUPPORTED", "per_block groups that split a conv kernel window cannot be written");
    }
  }
  std::vector<uint8_t> zq(z.size());
  for (size_t i = 0; i < z.size(); ++i) zq[i] = static_cast<uint8_t>(std::lround(z[i]));
  append_blob(out, as_weight_tensor(s, sshape, dtype), rep);
  append_codes(out, quant_dtype(bits), zq, rep);
  rep->scale_shape = dims_of(sshape);
  rep->data_dtype = bits == 8 ? "uint8" : "uint4";
}

LayerReport compress_layer(const LayerJob& job, HessianSet& set, blob::StorageWriter& out,
                           std::map<std::string, std::shared_ptr<blob::StorageReader>>& readers, const JobContext& ctx) {
  // Cancellation between the blocks of a large layer (a 23k-column conv takes minutes).
  LayerJob l = job;
  l.sparse.on_block = [&ctx](int64_t, int64_t) { ctx.check_cancelled(); };
  l.quant.on_block = l.sparse.on_block;
  auto& reader = readers[l.file];
  if (!reader) reader = std::make_shared<blob::StorageReader>(l.file);
  LayerReport rep;
  rep.name = l.name;
  int64_t rows = 0, cols = 0;
  blob::DType dtype;
  std::vector<float> w = load_matrix(*reader, l, &rows, &cols, &dtype);
  const int64_t groups = static_cast<int64_t>(l.hessians.size());
  if (groups < 1 || rows % groups != 0) throw Error("EINVAL", std::to_string(rows) + " rows do not split into " + std::to_string(groups) + " groups");
  const int64_t gr = rows / groups;
  rep.rows = rows, rep.columns = cols, rep.groups = groups;
  ThreadPool* pool = ThreadPool::global().get();
  std::vector<float> result(w.size());
  std::vector<uint8_t> keep(w.size(), 1), codes;
  std::vector<float> scales, zeros;
  int64_t ngroups_q = 0;
  double err_sum = 0, base_sum = 0;
  for (int64_t g = 0; g < groups; ++g) {
    auto h = set.get(static_cast<size_t>(l.hessians[static_cast<size_t>(g)]));
    if (!h) throw Error("EINVAL", "its Hessian was released before use");
    if (h->columns() != cols) throw Error("EINVAL", "the Hessian has " + std::to_string(h->columns()) + " columns, the weight " + std::to_string(cols));
    const float* wg = w.data() + g * gr * cols;
    float* rg = result.data() + g * gr * cols;
    if (!l.gptq) {
      kernels::SparseGptOptions so = l.sparse;
      // Quantized survivors of an fp16 weight: the grid scale is rounded to fp16 first (as the iOS18
      // form stores it), so the decoded codes equal this result bit for bit and both forms
      // (codes or values) hold the same weights.
      so.quant.fp16_scales = dtype == blob::DType::Float16;
      kernels::SparseGptResult r = kernels::sparse_gpt(wg, gr, cols, *h, so, pool);
      std::copy(r.weight.begin(), r.weight.end(), rg);
      std::copy(r.keep_mask.begin(), r.keep_mask.end(), keep.begin() + g * gr * cols);
      if (l.sparse_codes) {
        codes.insert(codes.end(), r.q.begin(), r.q.end());
        scales.insert(scales.end(), r.scales.begin(), r.scales.end());
        zeros.insert(zeros.end(), r.zero_points.begin(), r.zero_points.end());
        ngroups_q = 1;
      }
      std::vector<float> base = magnitude_baseline(wg, gr, cols, l.sparse, r.sparsity);
      err_sum += kernels::relative_reconstruction_error(wg, rg, gr, cols, *h, pool);
      base_sum += kernels::relative_reconstruction_error(wg, base.data(), gr, cols, *h, pool);
      rep.dead += r.dead_columns;
      rep.loss += r.error;
      if (!r.tail_note.empty()) rep.note = r.tail_note;
    } else {
      kernels::GptqResult r = kernels::gptq(wg, gr, cols, *h, l.quant, pool);
      std::copy(r.weight.begin(), r.weight.end(), rg);
      codes.insert(codes.end(), r.q.begin(), r.q.end());
      scales.insert(scales.end(), r.scales.begin(), r.scales.end());
      zeros.insert(zeros.end(), r.zero_points.begin(), r.zero_points.end());
      ngroups_q = gr ? static_cast<int64_t>(r.scales.size()) / gr : 0;
      const int64_t gs = l.quant.quant.group_size;
      for (int64_t c = 0; c < cols && gs > 0; ++c)
        if (r.group_index[static_cast<size_t>(c)] != c / gs)
          throw Error("EUNSUPPORTED", "act_order with per_block groups made non-contiguous blocks, which no constexpr op can express");
      // Baseline: round-to-nearest on the same grid.
      const double maxq = std::ldexp(1.0, l.quant.quant.bits) - 1;
      std::vector<float> rtn(static_cast<size_t>(gr * cols));
      for (int64_t i = 0; i < gr; ++i)
        for (int64_t c = 0; c < cols; ++c) {
          const int64_t q = gs > 0 ? c / gs : 0;
          const double s = r.scales[static_cast<size_t>(i * ngroups_q + q)], z = r.zero_points[static_cast<size_t>(i * ngroups_q + q)];
          const double v = std::clamp(std::nearbyint(wg[i * cols + c] / s) + z, 0.0, maxq);
          rtn[static_cast<size_t>(i * cols + c)] = static_cast<float>(s * (v - z));
        }
      err_sum += kernels::relative_reconstruction_error(wg, rg, gr, cols, *h, pool);
      base_sum += kernels::relative_reconstruction_error(wg, rtn.data(), gr, cols, *h, pool);
      rep.dead += r.dead_columns;
      rep.loss += r.error;
    }
  }
  rep.error = err_sum / static_cast<double>(groups);
  rep.baseline_error = base_sum / static_cast<double>(groups);
  for (int64_t k : l.release) set.release(static_cast<size_t>(k));

  if (!l.gptq) {
    kernels::Tensor wt = as_weight_tensor(to_layout(result, rows, cols, l.transposed), l.shape, dtype);
    const std::vector<uint8_t> keep_layout = to_layout(keep, rows, cols, l.transposed);
    kernels::PruneResult pr = kernels::prune_result(wt.view(), keep_layout);
    rep.sparsity = pr.sparsity;
    kernels::Tensor mask(kernels::DType::UInt1, l.shape);
    mask.bytes = pr.mask;
    stream::OutputBlob mb = blob_of(mask, false);
    if (l.sparse_codes) {
      // constexpr_sparse_blockwise_shift_scale(data_mask, nonzero_data = the survivors' codes, scale,
      // offset) → constexpr_sparse_to_dense: records mask, codes, scale, offset.
      rep.offsets.push_back(out.append(mb.dtype, mb.bytes.data(), mb.bytes.size(), mb.element_count));
      rep.counts.push_back(mb.element_count);
      const std::vector<uint8_t> code_layout = to_layout(codes, rows, cols, l.transposed);
      std::vector<uint8_t> nz;
      nz.reserve(static_cast<size_t>(pr.nonzero.numel()));
      const kernels::TensorData wv = wt.view();
      for (size_t i = 0; i < keep_layout.size(); ++i)  // prune_result's mask: kept and non-zero
        if (keep_layout[i] && wv.get_float(i) != 0.0f) nz.push_back(code_layout[i]);
      append_codes(out, quant_dtype(l.sparse.quant.bits), nz, &rep);
      write_scale_offset(out, l, rows, cols, scales, zeros, ngroups_q, dtype, &rep);
      return rep;
    }
    append_blob(out, pr.nonzero, &rep);
    if (l.ios16) {
      mb.dtype = blob::DType::UInt8;
      mb.element_count = mb.bytes.size();
    }
    rep.offsets.push_back(out.append(mb.dtype, mb.bytes.data(), mb.bytes.size(), mb.element_count));
    rep.counts.push_back(mb.element_count);
    return rep;
  }
  const int bits = l.quant.quant.bits;
  if (bits != 8 && bits != 4) throw Error("EUNSUPPORTED", std::to_string(bits) + "-bit data: constexpr ops store 4- or 8-bit integers");
  if (l.ios16 && (bits != 8 || ngroups_q != 1)) throw Error("EUNSUPPORTED", "iOS16 constexpr_affine_dequantize takes 8-bit per-channel data; use an iOS18 model for 4-bit or per-block");
  if (l.ios16) {
    std::vector<uint8_t> zq(zeros.size());
    for (size_t i = 0; i < zeros.size(); ++i) zq[i] = static_cast<uint8_t>(std::lround(zeros[i]));
    append_codes(out, blob::DType::UInt8, to_layout(codes, rows, cols, l.transposed), &rep);
    append_codes(out, blob::DType::UInt8, zq, &rep);
    append_blob(out, as_weight_tensor(scales, {static_cast<int64_t>(scales.size())}, dtype), &rep);
    rep.scale_shape = {static_cast<double>(scales.size())};
    rep.data_dtype = "uint8";
    return rep;
  }
  append_codes(out, quant_dtype(bits), to_layout(codes, rows, cols, l.transposed), &rep);
  write_scale_offset(out, l, rows, cols, scales, zeros, ngroups_q, dtype, &rep);
  return rep;
}

kernels::QuantGrid grid_of(const Napi::Object& o) {
  kernels::QuantGrid g;
  g.bits = static_cast<int>(get_int(o, "bits", 0));
  g.symmetric = get_bool(o, "symmetric", true);
  g.group_size = get_int(o, "groupSize", 0);
  return g;
}

std::vector<int64_t> int_list(const Napi::Object& o, const char* key) {
  std::vector<int64_t> out;
  if (!o.Get(key).IsArray()) return out;
  Napi::Array a = o.Get(key).As<Napi::Array>();
  for (uint32_t k = 0; k < a.Length(); ++k) out.push_back(a.Get(k).As<Napi::Number>().Int64Value());
  return out;
}

Napi::Value CompressLayers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "compressLayers(job): job must be an object");
  Napi::Object jo = info[0].As<Napi::Object>();
  auto job = std::make_shared<CompressLayersJob>();
  job->set = hessian_set_from(jo.Get("hessians"));
  job->output = get_string(jo, "output", "");
  if (job->output.empty()) throw Napi::TypeError::New(env, "compressLayers: output path is required");
  Napi::Array layers = jo.Get("layers").As<Napi::Array>();
  for (uint32_t i = 0; i < layers.Length(); ++i) {
    Napi::Object o = layers.Get(i).As<Napi::Object>();
    LayerJob l;
    l.name = get_string(o, "name", "");
    l.file = get_string(o, "file", "");
    l.offset = static_cast<uint64_t>(get_number(o, "offset", 0));
    l.shape = get_shape(o, "shape");
    l.transposed = get_bool(o, "transposed", false);
    l.hessians = int_list(o, "hessians");
    l.release = int_list(o, "release");
    l.gptq = get_string(o, "method", "sparsegpt") == "gptq";
    l.ios16 = get_bool(o, "ios16", false);
    l.sparse_codes = get_bool(o, "sparseCodes", false);
    l.sparse.target_sparsity = get_number(o, "targetSparsity", 0.5);
    l.sparse.n = static_cast<int>(get_int(o, "n", 0));
    l.sparse.m = static_cast<int>(get_int(o, "m", 0));
    l.sparse.block_size = get_int(o, "blockSize", 128);
    l.sparse.dampening = get_number(o, "dampening", 0.01);
    l.sparse.quant = grid_of(o);
    l.quant.quant = grid_of(o);
    l.quant.act_order = get_bool(o, "actOrder", false);
    l.quant.static_groups = l.quant.act_order;  // coremltools forces static groups with act-order
    l.quant.block_size = l.sparse.block_size;
    l.quant.dampening = l.sparse.dampening;
    job->layers.push_back(std::move(l));
  }
  return run_job<std::vector<LayerReport>>(
      env, info[1], info[2],
      [job](JobContext& ctx) {
        blob::StorageWriter out(job->output);
        std::map<std::string, std::shared_ptr<blob::StorageReader>> readers;
        std::vector<LayerReport> reports;
        for (size_t i = 0; i < job->layers.size(); ++i) {
          ctx.check_cancelled();
          const LayerJob& l = job->layers[i];
          try {
            reports.push_back(compress_layer(l, *job->set, out, readers, ctx));
            release_free_memory();  // the layer's copies and the Hessians it released, before the next
          } catch (const Error& e) {
            throw Error(e.code(), "weight " + l.name + ": " + e.what());
          }
          ctx.progress(static_cast<double>(i + 1), static_cast<double>(job->layers.size()));
        }
        out.close();
        return reports;
      },
      [](Napi::Env env, std::vector<LayerReport>& rs) -> Napi::Value {
        Napi::Array a = Napi::Array::New(env, rs.size());
        for (size_t i = 0; i < rs.size(); ++i) {
          const LayerReport& r = rs[i];
          Napi::Object o = Napi::Object::New(env);
          o.Set("name", r.name);
          o.Set("rows", Napi::Number::New(env, static_cast<double>(r.rows)));
          o.Set("columns", Napi::Number::New(env, static_cast<double>(r.columns)));
          o.Set("groups", Napi::Number::New(env, static_cast<double>(r.groups)));
          o.Set("deadColumns", Napi::Number::New(env, static_cast<double>(r.dead)));
          o.Set("sparsity", r.sparsity);
          o.Set("error", r.error);
          o.Set("baselineError", r.baseline_error);
          o.Set("loss", r.loss);
          if (!r.note.empty()) o.Set("note", r.note);
          Napi::Array off = Napi::Array::New(env, r.offsets.size());
          for (size_t k = 0; k < r.offsets.size(); ++k) off.Set(static_cast<uint32_t>(k), Napi::Number::New(env, static_cast<double>(r.offsets[k])));
          o.Set("offsets", off);
          Napi::Array cnt = Napi::Array::New(env, r.counts.size());
          for (size_t k = 0; k < r.counts.size(); ++k) cnt.Set(static_cast<uint32_t>(k), Napi::Number::New(env, static_cast<double>(r.counts[k])));
          o.Set("counts", cnt);
          if (!r.scale_shape.empty()) {
            Napi::Array ss = Napi::Array::New(env, r.scale_shape.size());
            for (size_t k = 0; k < r.scale_shape.size(); ++k) ss.Set(static_cast<uint32_t>(k), r.scale_shape[k]);
            o.Set("scaleShape", ss);
            o.Set("dataDtype", r.data_dtype);
          }
          a.Set(static_cast<uint32_t>(i), o);
        }
        return a;
      });
}

// "layerwise_copy" entries of compressWeights: the records compressLayers wrote to its temporary
// file, copied into the new weight.bin at the weight's place in op order (the original record is
// read by the stream but not used). Values of < 10 elements become immediates, as coremltools writes.
stream::Transform parse_copy(const Napi::Object& o, const std::shared_ptr<CancelToken>&) {
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<blob::StorageReader>> open;
  const std::string file = get_string(o, "file", "");
  std::shared_ptr<blob::StorageReader> reader;
  {
    std::lock_guard<std::mutex> lock(mutex);
    reader = open[file].lock();
    if (!reader) {
      try {
        reader = std::make_shared<blob::StorageReader>(file);
      } catch (const Error& e) {
        throw Napi::Error::New(o.Env(), e.what());
      }
      open[file] = reader;
    }
  }
  std::vector<int64_t> offsets = int_list(o, "offsets");
  const std::string name = get_string(o, "name", "");
  return [reader, offsets, name](const std::vector<stream::Source>&) {
    return named_transform(name, [&] {
      stream::TransformOutput out;
      for (int64_t off : offsets) {
        blob::Record r = reader->record(static_cast<uint64_t>(off));
        stream::Source s{r, reader->data(r)};
        out.blobs.push_back(copy_of(s, true));
      }
      return out;
    });
  };
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("compressLayers", Napi::Function::New(env, CompressLayers, "compressLayers"));
}

}  // namespace

CMO_COMPRESS_ENTRY(layerwise_copy, parse_copy);

}  // namespace cmo::addon

CMO_ADDON_MODULE(layerwise, cmo::addon::Init);
