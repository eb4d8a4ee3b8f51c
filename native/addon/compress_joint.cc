// Joint-compression transforms of compressWeights (spec §4.5), palettizing what an earlier step
// produced:
//   "palettize_sparse" (prune → palettize): sources = non-zero values [D], uint1 mask. Only the
//     non-zeros are clustered, grouped by the channel groups of the dense weight (a value belongs
//     to the group of its dense position). Blobs: indices_mask (copied), indices_nonzero_data
//     (uint{n} [D]), lut [groups…, 2^n, 1]  (constexpr_lut_to_sparse).
//   "palettize_int" (quantize → palettize): sources = int8/uint8 data, scale[, offset]. The integer
//     data is clustered as numbers, the LUT rounded back to the data type, and written in the P1 file
//     form: blockwise_shift_scale(data = LUT repeated over the scale's blocks, scale, offset) →
//     lut_to_dense; with repeatLut = false (iOS26+, P2 form) the LUT is written as it is.
//     Blobs: data, scale (copied), offset (copied), indices.
#include <cmath>
#include <cstring>
#include <numeric>

#include "../kernels/palettize.h"
#include "../util/thread_pool.h"
#include "compress_entries.h"
#include "compress_sources.h"

namespace cmo::addon {

namespace {

struct JointPalettizeEntry {
  std::vector<int64_t> shape;  // dense weight shape
  kernels::PalettizeParams params;
  std::shared_ptr<CancelToken> cancel;
};

kernels::PalettizeHooks hooks_of(const JointPalettizeEntry& e) {
  kernels::PalettizeHooks h;
  auto cancel = e.cancel;
  h.cancelled = [cancel] { return cancel && cancel->cancelled.load(); };
  return h;
}

stream::OutputBlob indices_blob(const std::vector<uint8_t>& indices, int nbits) {
  stream::OutputBlob b;
  b.dtype = uint_dtype_for_bits(nbits);
  b.element_count = indices.size();
  b.bytes.resize(blob::packed_size(b.dtype, indices.size()));
  blob::pack_sub_byte(b.dtype, indices.data(), indices.size(), b.bytes.data());
  b.inline_if_small = true;
  return b;
}

stream::TransformOutput run_sparse(const JointPalettizeEntry& e, const std::vector<stream::Source>& sources) {
  stream::TransformOutput out;
  if (sources.size() < 2) throw Error("EINVAL", "palettize_sparse: needs the non-zero values and the mask");
  if (e.params.cluster_dim > 1 || e.params.per_channel_scale) {
    out.skipped = "vector palettization and per-channel scale of sparse weights are not supported";
    return out;
  }
  const auto d = static_cast<int64_t>(sources[0].record.element_count);
  SourceTensor values = source_tensor(sources[0], {d}, "palettize_sparse non-zero values");
  SourceTensor mask = source_tensor(sources[1], e.shape, "palettize_sparse mask");
  const auto vt = values.view.dtype;
  if (vt != kernels::DType::Float16 && vt != kernels::DType::Float32) {
    out.skipped = std::string("dtype ") + kernels::mil_dtype_name(vt) + " is not a float weight";
    return out;
  }
  const size_t es = kernels::dtype_unpacked_size(vt);
  const int rank = static_cast<int>(e.shape.size());
  const int axis = e.params.channel_axis;
  if (axis < 0 || axis >= rank) throw Error("EINVAL", "palettize_sparse: channel axis out of range");
  const int64_t channels = e.shape[static_cast<size_t>(axis)];
  int64_t inner = 1;
  for (int a = axis + 1; a < rank; ++a) inner *= e.shape[static_cast<size_t>(a)];
  const int64_t gs = e.params.group_size > 0 ? e.params.group_size : channels;
  if (channels % gs != 0) {
    out.skipped = "the channel axis (" + std::to_string(channels) + ") is not divisible by group_size " + std::to_string(gs);
    return out;
  }
  const int64_t groups = channels / gs;
  // Dense row-major position (o·channels + c)·inner + r belongs to channel group c / gs: walking
  // the mask by (o, c) rows gives every non-zero its group without a division per element.
  const int64_t n = mask.view.numel();
  const int64_t outer = channels * inner == 0 ? 0 : n / (channels * inner);
  const uint8_t* mask_data = mask.view.data;
  std::vector<int64_t> group_count(static_cast<size_t>(groups), 0);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < channels; ++c) {
      const uint8_t* row = mask_data + (o * channels + c) * inner;
      int64_t ones = 0;
      for (int64_t r = 0; r < inner; ++r) ones += row[r] != 0;
      group_count[static_cast<size_t>(c / gs)] += ones;
    }
  int64_t total = 0;
  for (int64_t cnt : group_count) total += cnt;
  if (total != d)
    throw Error("EINVAL", "palettize_sparse: the mask has " + std::to_string(total) + " ones but there are " + std::to_string(d) + " non-zero values");
  // Each group's values in dense order. Branch-free (the mask is close to random): every value is
  // stored at the group's fill position, which advances only past kept ones (one spare slot).
  std::vector<std::vector<uint8_t>> group_values(static_cast<size_t>(groups));
  for (int64_t g = 0; g < groups; ++g) group_values[static_cast<size_t>(g)].resize(static_cast<size_t>(group_count[static_cast<size_t>(g)] + 1) * es);
  if (d > 0) {
    std::vector<int64_t> fill(static_cast<size_t>(groups), 0);
    const uint8_t* src = values.view.data;
    int64_t k = 0;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t c = 0; c < channels; ++c) {
        const uint8_t* row = mask_data + (o * channels + c) * inner;
        const auto g = static_cast<size_t>(c / gs);
        uint8_t* dst = group_values[g].data();
        int64_t f = fill[g];
        for (int64_t r = 0; r < inner; ++r) {
          const int64_t keep = row[r] != 0;
          std::memcpy(dst + f * static_cast<int64_t>(es), src + std::min(k, d - 1) * static_cast<int64_t>(es), es);
          f += keep;
          k += keep;
        }
        fill[g] = f;
      }
  }
  for (auto& gv : group_values) gv.resize(gv.size() - es);

  kernels::PalettizeParams p = e.params;
  p.group_size = 0;
  p.channel_axis = 0;
  std::vector<kernels::PalettizeResult> results(static_cast<size_t>(groups));
  // Groups are independent: cluster them in parallel, one thread each.
  p.threads = 1;
  const auto hooks = hooks_of(e);
  parallel_for(static_cast<size_t>(groups), [&](size_t g) {
    auto& gv = group_values[g];
    const auto count = static_cast<int64_t>(gv.size() / es);
    if (count == 0) return;
    kernels::WeightView view;
    view.type = vt == kernels::DType::Float16 ? kernels::WeightType::kFloat16 : kernels::WeightType::kFloat32;
    view.data = gv.data();
    view.shape = {count};
    results[g] = kernels::palettize_tensor(view, p, hooks);
  });
  int nbits = e.params.mode == kernels::PalettizeMode::kUnique ? 1 : e.params.nbits;
  double sse = 0, signal = 0;
  for (const auto& r : results) {
    if (r.skipped) {
      out.skipped = r.skip_reason.empty() ? "skipped" : r.skip_reason;
      return out;
    }
    if (r.nbits == 0) continue;  // an empty group
    nbits = std::max(nbits, r.nbits);
    sse += r.sse;
    signal += r.signal;
  }
  const int64_t entries = int64_t{1} << nbits;
  kernels::Tensor lut(vt, {});
  std::vector<int64_t> lut_shape(static_cast<size_t>(rank) + 2, 1);
  lut_shape[static_cast<size_t>(axis)] = groups;
  lut_shape[static_cast<size_t>(rank)] = entries;
  lut = kernels::Tensor(vt, lut_shape);  // zero padded (unused entries, empty groups)
  for (int64_t g = 0; g < groups; ++g) {
    const auto& r = results[static_cast<size_t>(g)];
    if (r.nbits == 0) continue;
    const size_t m = r.lut_type == kernels::WeightType::kFloat16 ? r.lut_f16.size() : r.lut_f32.size();
    const void* src = r.lut_type == kernels::WeightType::kFloat16 ? static_cast<const void*>(r.lut_f16.data()) : r.lut_f32.data();
    std::memcpy(&lut.bytes[static_cast<size_t>(g * entries) * es], src, m * es);
  }
  // Back to dense order: the same (o, c) walk hands out each group's indices in turn.
  std::vector<uint8_t> indices(static_cast<size_t>(d));
  {
    std::vector<size_t> cursor(static_cast<size_t>(groups), 0);
    size_t k = 0;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t c = 0; c < channels; ++c) {
        const uint8_t* row = mask_data + (o * channels + c) * inner;
        const auto g = static_cast<size_t>(c / gs);
        const std::vector<uint8_t>& gi = results[g].indices;
        size_t cur = cursor[g];
        for (int64_t r = 0; r < inner; ++r)
          if (row[r]) indices[k++] = gi[cur++];
        cursor[g] = cur;
      }
  }
  out.blobs.push_back(copy_of(sources[1]));
  out.blobs.push_back(indices_blob(indices, nbits));
  out.blobs.push_back(blob_of(lut));
  out.info.push_back({"nbits", {static_cast<double>(nbits)}});
  out.info.push_back({"lutShape", dims_of(lut_shape)});
  out.info.push_back({"sse", {sse}});
  out.info.push_back({"signal", {signal}});
  return out;
}

int64_t lcm64(int64_t a, int64_t b) { return a / std::gcd(a, b) * b; }

stream::TransformOutput run_int(const JointPalettizeEntry& e, const std::vector<stream::Source>& sources, const std::vector<int64_t>& scale_shape,
                                bool repeat) {
  stream::TransformOutput out;
  SourceTensor data = source_tensor(sources[0], e.shape, "palettize_int data");
  const auto dt = data.view.dtype;
  if (dt != kernels::DType::Int8 && dt != kernels::DType::UInt8) {
    out.skipped = std::string("quantized data of dtype ") + kernels::mil_dtype_name(dt) + " is not palettized (int8/uint8 only)";
    return out;
  }
  const size_t n = static_cast<size_t>(data.view.numel());
  std::vector<float> widened(n);
  for (size_t i = 0; i < n; ++i) widened[i] = static_cast<float>(data.view.get_int(i));
  kernels::WeightView view;
  view.type = kernels::WeightType::kFloat32;
  view.data = widened.data();
  view.shape = e.shape;
  kernels::PalettizeResult r = kernels::palettize_tensor(view, e.params, hooks_of(e));
  if (r.skipped) {
    out.skipped = r.skip_reason.empty() ? "skipped" : r.skip_reason;
    return out;
  }
  if (e.params.per_channel_scale) {
    out.skipped = "per-channel scale palettization of quantized data is not supported";
    return out;
  }
  // The LUT goes back to the data's integer type (centroids lie inside its range).
  const int lo = dt == kernels::DType::Int8 ? -128 : 0, hi = dt == kernels::DType::Int8 ? 127 : 255;
  std::vector<uint8_t> lut_int(r.lut_f32.size());
  for (size_t i = 0; i < r.lut_f32.size(); ++i) {
    const int v = std::min(hi, std::max(lo, static_cast<int>(std::nearbyint(r.lut_f32[i]))));
    lut_int[i] = static_cast<uint8_t>(static_cast<int8_t>(v));
  }
  // P1: repeat the LUT's leading dims over the scale's blocks (P2, iOS26+: the LUT as it is).
  const size_t rank = e.shape.size();
  if (scale_shape.size() != rank) throw Error("EINVAL", "palettize_int: the scale's rank differs from the data's");
  std::vector<int64_t> rep_shape(rank + 2);
  for (size_t a = 0; a < rank; ++a) rep_shape[a] = repeat ? lcm64(r.lut_shape[a], scale_shape[a]) : r.lut_shape[a];
  rep_shape[rank] = r.lut_shape[rank];
  rep_shape[rank + 1] = r.lut_shape[rank + 1];
  const int64_t tail = rep_shape[rank] * rep_shape[rank + 1];
  int64_t positions = 1;
  for (size_t a = 0; a < rank; ++a) positions *= rep_shape[a];
  kernels::Tensor rep(dt, rep_shape);
  std::vector<int64_t> idx(rank, 0);
  for (int64_t pos = 0; pos < positions; ++pos) {
    int64_t src = 0;
    for (size_t a = 0; a < rank; ++a) src = src * r.lut_shape[a] + idx[a] / (rep_shape[a] / r.lut_shape[a]);
    std::memcpy(&rep.bytes[static_cast<size_t>(pos * tail)], &lut_int[static_cast<size_t>(src * tail)], static_cast<size_t>(tail));
    for (size_t a = rank; a-- > 0;) {
      if (++idx[a] < rep_shape[a]) break;
      idx[a] = 0;
    }
  }
  // Error in the integer domain (the scale multiplies it uniformly per block).
  const double sse = r.sse, signal = r.signal;
  out.blobs.push_back(blob_of(rep));
  for (size_t s = 1; s < sources.size(); ++s) out.blobs.push_back(copy_of(sources[s]));
  std::vector<uint8_t> indices = std::move(r.indices);
  out.blobs.push_back(indices_blob(indices, r.nbits));
  out.info.push_back({"nbits", {static_cast<double>(r.nbits)}});
  out.info.push_back({"dataShape", dims_of(rep_shape)});
  out.info.push_back({"indicesShape", dims_of(r.indices_shape)});
  out.info.push_back({"vectorAxis", {static_cast<double>(r.vector_axis)}});
  out.info.push_back({"sse", {sse}});
  out.info.push_back({"signal", {signal}});
  return out;
}

void parse_params(const Napi::Object& o, JointPalettizeEntry* e) {
  e->shape = get_shape(o, "shape");
  e->params = get_palettize_params(o, "joint palettize");
}

stream::Transform parse_sparse(const Napi::Object& o, const std::shared_ptr<CancelToken>& cancel) {
  auto e = std::make_shared<JointPalettizeEntry>();
  parse_params(o, e.get());
  e->cancel = cancel;
  const std::string name = get_string(o, "name", "");
  return [e, name](const std::vector<stream::Source>& sources) { return named_transform(name, [&] { return run_sparse(*e, sources); }); };
}

stream::Transform parse_int(const Napi::Object& o, const std::shared_ptr<CancelToken>& cancel) {
  auto e = std::make_shared<JointPalettizeEntry>();
  parse_params(o, e.get());
  e->cancel = cancel;
  auto scale_shape = get_shape(o, "scaleShape");
  const bool repeat = get_bool(o, "repeatLut", true);
  const std::string name = get_string(o, "name", "");
  return [e, scale_shape, repeat, name](const std::vector<stream::Source>& sources) {
    return named_transform(name, [&] { return run_int(*e, sources, scale_shape, repeat); });
  };
}

}  // namespace

CMO_COMPRESS_ENTRY(palettize_sparse, parse_sparse);
CMO_COMPRESS_ENTRY(palettize_int, parse_int);

}  // namespace cmo::addon
