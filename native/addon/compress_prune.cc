// "prune" entries of compressWeights: a keep-mask from kernels/prune (coremltools' numerics), then
// the blobs of constexpr_sparse_to_dense in coremltools' order (spec §2.6): nonzero_data, mask.
// iOS16 stores the mask as packed uint8 bytes; iOS18 as uint1 with the weight's element count —
// the same LSB-first bit stream either way.
#include "../kernels/prune.h"
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

stream::TransformOutput run(const PruneEntry& e, const std::vector<stream::Source>& sources) {
  stream::TransformOutput out;
  SourceTensor w = source_tensor(sources[0], e.shape, "prune");
  if (w.view.dtype != kernels::DType::Float16 && w.view.dtype != kernels::DType::Float32) {
    out.skipped = std::string("dtype ") + kernels::dtype_name(w.view.dtype) + " is not a float weight";
    return out;
  }
  std::vector<uint8_t> keep;
  switch (e.method) {
    case Method::Magnitude: keep = kernels::magnitude_prune_mask(w.view, e.target); break;
    case Method::Block:
      out.skipped = kernels::block_prune_skip_reason(e.shape, e.block_size, e.dim);
      if (!out.skipped.empty()) return out;
      keep = kernels::block_prune_mask(w.view, e.target, e.block_size, e.dim);
      break;
    case Method::NM:
      out.skipped = kernels::nm_prune_skip_reason(e.shape, e.m, e.dim);
      if (!out.skipped.empty()) return out;
      keep = kernels::nm_prune_mask(w.view, e.n, e.m, e.dim);
      break;
    case Method::Threshold: keep = kernels::threshold_prune_mask(w.view, e.threshold); break;
  }
  kernels::PruneResult r = kernels::prune_result(w.view, keep);
  if (r.sparsity < e.minimum_sparsity) {
    out.skipped = "sparsity " + std::to_string(r.sparsity) + " < minimum_sparsity_percentile " + std::to_string(e.minimum_sparsity);
    return out;
  }
  double signal = 0, sse = 0;
  for (size_t i = 0; i < r.mask.size(); ++i) {
    const double v = w.view.get_float(i);
    signal += v * v;
    if (!r.mask[i]) sse += v * v;
  }
  out.blobs.push_back(blob_of(r.nonzero));
  kernels::Tensor mask(kernels::DType::UInt1, e.shape);
  mask.bytes = r.mask;
  stream::OutputBlob mb = blob_of(mask);
  if (e.ios16) {
    mb.dtype = blob::DType::UInt8;
    mb.element_count = mb.bytes.size();
  }
  out.blobs.push_back(std::move(mb));
  out.info.push_back({"sparsity", {r.sparsity}});
  out.info.push_back({"nonzeroCount", {static_cast<double>(r.nonzero.numel())}});
  out.info.push_back({"sse", {sse}});
  out.info.push_back({"signal", {signal}});
  return out;
}

stream::Transform parse(const Napi::Object& o, const std::shared_ptr<CancelToken>&) {
  auto e = std::make_shared<PruneEntry>();
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
  const std::string name = get_string(o, "name", "");
  return [e, name](const std::vector<stream::Source>& sources) { return named_transform(name, [&] { return run(*e, sources); }); };
}

}  // namespace

CMO_COMPRESS_ENTRY(prune, parse);

}  // namespace cmo::addon
