// "prune" entries of compressWeights: a keep-mask from kernels/prune (coremltools' numerics), then
// the blobs of constexpr_sparse_to_dense in coremltools' order (spec §2.6): nonzero_data, mask.
// iOS16 stores the mask as packed uint8 bytes; iOS18 as uint1 with the weight's element count —
// the same LSB-first bit stream either way.
// "prune_compressed" (joint: quantize → prune, palettize → prune; spec §4.5): the chain's output is
// materialized and pruned; the mask then selects the stored data / indices. Blobs: mask (uint1),
// the selected data or indices, then the op's other records copied (scale, offset / lut).
#include <cstring>
#include <utility>

#include "../kernels/prune.h"
#include "../util/fp16.h"
#include "../util/thread_pool.h"
#include "compress_chain.h"
#include "compress_entries.h"
#include "compress_sources.h"

namespace cmo::addon {

namespace {

enum class Method { Magnitude, Block, NM, Threshold };

struct PruneEntry {
  std::vector<int64_t> shape;
  Method method = Method::Magnitude;
  double target = 0.5, threshold = 1e-12, minimum_sparsity = -1;
  int64_t block_size = 2, n = 2, m = 4, dim = 0;
  bool ios16 = false;
};

// The pruned form of `w`, or a reason (in *skipped) to leave it as it is.
kernels::PruneResult prune_weight(const PruneEntry& e, const kernels::TensorData& w, std::string* skipped) {
  std::vector<uint8_t> keep;
  switch (e.method) {
    case Method::Magnitude: keep = kernels::magnitude_prune_mask(w, e.target); break;
    case Method::Block:
      *skipped = kernels::block_prune_skip_reason(e.shape, e.block_size, e.dim);
      if (!skipped->empty()) return {};
      keep = kernels::block_prune_mask(w, e.target, e.block_size, e.dim);
      break;
    case Method::NM:
      *skipped = kernels::nm_prune_skip_reason(e.shape, e.m, e.dim);
      if (!skipped->empty()) return {};
      keep = kernels::nm_prune_mask(w, e.n, e.m, e.dim);
      break;
    case Method::Threshold: keep = kernels::threshold_prune_mask(w, e.threshold); break;
  }
  kernels::PruneResult r = kernels::prune_result(w, std::move(keep));
  if (r.sparsity < e.minimum_sparsity)
    *skipped = "sparsity " + std::to_string(r.sparsity) + " < minimum_sparsity_percentile " + std::to_string(e.minimum_sparsity);
  return r;
}

template <bool F16>
void energy_chunk(const uint8_t* data, const std::vector<uint8_t>& mask, size_t begin, size_t end, double* signal, double* sse) {
  double s = 0, e = 0;
  for (size_t i = begin; i < end; ++i) {
    double v;
    if constexpr (F16) {  // table lookup: the software fp16 conversion dominated this loop
      uint16_t h;
      std::memcpy(&h, data + 2 * i, 2);
      v = half_to_float_table()[h];
    } else {
      v = load_float_element<false>(data, i);
    }
    s += v * v;
    e += mask[i] ? 0.0 : v * v;
  }
  *signal = s;
  *sse = e;
}

// Weight energy and pruned energy for the SQNR, in fixed chunks summed in order: the same figures
// for any thread count.
void add_prune_info(const kernels::PruneResult& r, const kernels::TensorData& w, stream::TransformOutput* out) {
  const size_t n = r.mask.size();
  constexpr size_t kChunk = size_t{1} << 16;
  const size_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> signals(chunks, 0.0), sses(chunks, 0.0);
  parallel_for(chunks, [&](size_t c) {
    const size_t b = c * kChunk, e = std::min(n, b + kChunk);
    if (w.dtype == kernels::DType::Float16) energy_chunk<true>(w.data, r.mask, b, e, &signals[c], &sses[c]);
    else if (w.dtype == kernels::DType::Float32) energy_chunk<false>(w.data, r.mask, b, e, &signals[c], &sses[c]);
    else
      for (size_t i = b; i < e; ++i) {
        const double v = w.get_float(i);
        signals[c] += v * v;
        if (!r.mask[i]) sses[c] += v * v;
      }
  });
  double signal = 0, sse = 0;
  for (size_t c = 0; c < chunks; ++c) {
    signal += signals[c];
    sse += sses[c];
  }
  out->info.push_back({"sparsity", {r.sparsity}});
  out->info.push_back({"nonzeroCount", {static_cast<double>(r.nonzero.numel())}});
  out->info.push_back({"sse", {sse}});
  out->info.push_back({"signal", {signal}});
}

stream::TransformOutput run(const PruneEntry& e, const std::vector<stream::Source>& sources) {
  stream::TransformOutput out;
  SourceTensor w = source_tensor(sources[0], e.shape, "prune");
  if (w.view.dtype != kernels::DType::Float16 && w.view.dtype != kernels::DType::Float32) {
    out.skipped = std::string("dtype ") + kernels::mil_dtype_name(w.view.dtype) + " is not a float weight";
    return out;
  }
  kernels::PruneResult r = prune_weight(e, w.view, &out.skipped);
  if (!out.skipped.empty()) return out;
  out.blobs.push_back(blob_of(r.nonzero));
  kernels::Tensor mask(kernels::DType::UInt1, e.shape);
  mask.bytes = r.mask;
  stream::OutputBlob mb = blob_of(mask);
  if (e.ios16) {
    mb.dtype = blob::DType::UInt8;
    mb.element_count = mb.bytes.size();
  }
  out.blobs.push_back(std::move(mb));
  add_prune_info(r, w.view, &out);
  return out;
}

stream::TransformOutput run_compressed(const PruneEntry& e, const ChainSpec& chain, const std::vector<stream::Source>& sources) {
  stream::TransformOutput out;
  kernels::Tensor dense = run_chain(chain, sources);
  if (dense.shape != e.shape) throw Error("EINVAL", "prune_compressed: the chain yields " + kernels::shape_string(dense.shape) + ", expected " + kernels::shape_string(e.shape));
  kernels::PruneResult r = prune_weight(e, dense.view(), &out.skipped);
  if (!out.skipped.empty()) return out;
  // The stored values (data or indices) have the weight's shape: keep those under the mask.
  SourceTensor stored = source_tensor(sources[0], e.shape, "prune_compressed");
  const size_t es = kernels::dtype_unpacked_size(stored.view.dtype);
  kernels::Tensor selected(stored.view.dtype, {r.nonzero.numel()});
  size_t k = 0;
  for (size_t i = 0; i < r.mask.size(); ++i)
    if (r.mask[i]) std::memcpy(&selected.bytes[(k++) * es], stored.view.data + i * es, es);
  kernels::Tensor mask(kernels::DType::UInt1, e.shape);
  mask.bytes = r.mask;
  out.blobs.push_back(blob_of(mask));
  out.blobs.push_back(blob_of(selected));
  for (size_t s = 1; s < sources.size(); ++s) out.blobs.push_back(copy_of(sources[s]));
  add_prune_info(r, dense.view(), &out);
  return out;
}

void parse_params(const Napi::Object& o, PruneEntry* e) {
  e->shape = get_shape(o, "shape");
  const std::string method = get_string(o, "method", "magnitude");
  if (method == "magnitude") e->method = Method::Magnitude;
  else if (method == "block") e->method = Method::Block;
  else if (method == "nm") e->method = Method::NM;
  else if (method == "threshold") e->method = Method::Threshold;
  else throw Napi::TypeError::New(o.Env(), "prune entry: method must be magnitude, block, nm or threshold, got " + method);
  e->target = get_number(o, "targetSparsity", 0.5);
  e->threshold = get_number(o, "threshold", 1e-12);
  e->minimum_sparsity = get_number(o, "minimumSparsity", -1);
  e->block_size = get_int(o, "blockSize", 2);
  e->n = get_int(o, "n", 2);
  e->m = get_int(o, "m", 4);
  e->dim = get_int(o, "dim", e->method == Method::NM ? 1 : 0);
  e->ios16 = get_bool(o, "ios16", false);
}

stream::Transform parse(const Napi::Object& o, const std::shared_ptr<CancelToken>&) {
  auto e = std::make_shared<PruneEntry>();
  parse_params(o, e.get());
  const std::string name = get_string(o, "name", "");
  return [e, name](const std::vector<stream::Source>& sources) { return named_transform(name, [&] { return run(*e, sources); }); };
}

stream::Transform parse_compressed(const Napi::Object& o, const std::shared_ptr<CancelToken>&) {
  auto e = std::make_shared<PruneEntry>();
  parse_params(o, e.get());
  auto chain = std::make_shared<ChainSpec>(parse_chain(o));
  const std::string name = get_string(o, "name", "");
  return [e, chain, name](const std::vector<stream::Source>& sources) {
    return named_transform(name, [&] { return run_compressed(*e, *chain, sources); });
  };
}

}  // namespace

CMO_COMPRESS_ENTRY(prune, parse);
CMO_COMPRESS_ENTRY(prune_compressed, parse_compressed);

}  // namespace cmo::addon
