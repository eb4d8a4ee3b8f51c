#include "palettize.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <mutex>

#include "../util/byte_pool.h"
#include "../util/error.h"
#include "../util/fp16.h"
#include "../util/thread_pool.h"
#include "kmeans1d.h"
#include "lut_modes.h"
#include "vector_kmeans.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#endif

namespace cmo::kernels {

size_t WeightView::elements() const {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  return n;
}

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

std::vector<size_t> strides_of(const std::vector<int64_t>& shape) {
  std::vector<size_t> st(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;) st[i - 1] = st[i] * static_cast<size_t>(shape[i]);
  return st;
}

// Offsets (in the weight) of group g's elements in coremltools order: channel axis swapped to 0,
// the group's `gs` channels, row-major; for V > 1 vector t = (c', rest…) holds channels c'·V + j.
void group_offsets(const std::vector<int64_t>& shape, int axis, size_t g, size_t gs, size_t V,
                   std::vector<size_t>& out) {
  const size_t rank = shape.size();
  std::vector<int64_t> sw(shape);  // swapped shape
  std::swap(sw[0], sw[static_cast<size_t>(axis)]);
  const std::vector<size_t> st = strides_of(shape);
  // Swapped dims 1..rank−1 map to original dims (dim 'axis' of the swapped array is original dim 0).
  std::vector<size_t> rest_stride(rank, 0);
  size_t rest_count = 1;
  for (size_t d = 1; d < rank; ++d) {
    size_t orig = (d == static_cast<size_t>(axis)) ? 0 : d;
    rest_stride[d] = st[orig];
    rest_count *= static_cast<size_t>(sw[d]);
  }
  const size_t ch_stride = st[static_cast<size_t>(axis)];
  out.resize(gs * rest_count);
  std::vector<int64_t> idx(rank, 0);
  size_t o = 0;
  for (size_t cv = 0; cv < gs / V; ++cv) {
    std::fill(idx.begin(), idx.end(), 0);
    size_t rest_off = 0;
    for (size_t r = 0; r < rest_count; ++r) {
      for (size_t j = 0; j < V; ++j) out[o++] = (g * gs + cv * V + j) * ch_stride + rest_off;
      for (size_t d = rank; d-- > 1;) {  // odometer over the rest dims
        rest_off += rest_stride[d];
        if (++idx[d] < sw[d]) break;
        rest_off -= rest_stride[d] * static_cast<size_t>(sw[d]);
        idx[d] = 0;
      }
    }
  }
}

struct Scratch {
  Fp16Histogram hist;
  DistinctValues distinct;
  std::vector<uint8_t> cluster_of_key = std::vector<uint8_t>(65536, 0);
  std::vector<uint32_t> inverse;
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

// Squared error and signal of a group, when known without a pass over its elements.
struct GroupError {
  bool known = false;
  double sse = 0, signal = 0;
};

// An fp16 group as k-means sees it: its distinct values (ascending, with counts) and their order
// keys, and every weight's order key (kept from the histogram pass for the index mapping).
struct F16Group {
  DistinctValues distinct;
  std::vector<uint16_t> keys;
  std::vector<uint16_t> weight_keys;
};

void histogram_f16_group(const GroupData& g, Fp16Histogram& hist, F16Group& h) {
  hist.clear();
  if (h.weight_keys.size() < g.count) h.weight_keys.resize(g.count);
  try {
    hist.add(g.f16, g.count, 1, h.weight_keys.data());
  } catch (...) {
    hist.clear();
    throw;
  }
  hist.take_distinct(h.distinct, &h.keys);
}

// LUT, indices and error of an fp16 group from the clusters of its distinct values (r == nullptr:
// n <= k, every distinct value is its own LUT entry, as kmeans1d with k = n does).
// LUT entries beyond the clusters stay zero (coremltools pads).
void finish_f16_group(const GroupData& g, const F16Group& h, const Kmeans1dResult* r, size_t k, float* lut,
                      uint8_t* idx, std::vector<uint8_t>& cluster_of_key_table, GroupError& err) {
  std::fill(lut, lut + k, 0.0f);
  const size_t n = h.distinct.values.size();
  uint8_t* __restrict cluster_of_key = cluster_of_key_table.data();
  if (!r) {
    for (size_t i = 0; i < n; ++i) {
      lut[i] = static_cast<float>(h.distinct.values[i]);
      cluster_of_key[h.keys[i]] = static_cast<uint8_t>(i);
    }
  } else {
    for (size_t c = 0; c < r->centroids.size(); ++c) lut[c] = half_to_float(double_to_half(r->centroids[c]));
    // Only the keys of present values are ever looked up: one store per distinct value.
    const uint32_t* a = r->assignment.data();
    for (size_t i = 0; i < n; ++i) cluster_of_key[h.keys[i]] = static_cast<uint8_t>(a[i]);
  }
  // One table lookup per weight, on the keys the histogram pass kept. Through plain pointers: the
  // table lives in thread-local storage, and the uint8_t stores may alias it, so the compiler would
  // otherwise look the thread-local address up (a call, in a shared library) for every weight.
  // The count in a local too: `g` may live in thread-local storage (a stream slot), which the byte
  // stores could alias — the loop bound was re-read through __tls_get_addr for every weight.
  const uint16_t* __restrict keys = h.weight_keys.data();
  uint8_t* __restrict out = idx;
  const size_t count = g.count;
  for (size_t i = 0; i < count; ++i) out[i] = cluster_of_key[keys[i]];
  // Error from the histogram: one term per distinct value. Four partial sums (the terms are
  // independent; one running sum was a chain of dependent adds, 5 % of a 4-bit gs16 group).
  double sse[4] = {0, 0, 0, 0}, sig[4] = {0, 0, 0, 0};
  const double* xs = h.distinct.values.data();
  const double* cs = h.distinct.counts.data();
  size_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (size_t t = 0; t < 4; ++t) {
      const double x = xs[i + t], c = cs[i + t];
      const double d = x - static_cast<double>(lut[cluster_of_key[h.keys[i + t]]]);
      sse[t] += c * (d * d);
      sig[t] += c * (x * x);
    }
  for (; i < n; ++i) {
    const double x = xs[i], c = cs[i];
    const double d = x - static_cast<double>(lut[cluster_of_key[h.keys[i]]]);
    sse[0] += c * (d * d);
    sig[0] += c * (x * x);
  }
  err.known = true;
  err.sse = (sse[0] + sse[1]) + (sse[2] + sse[3]);
  err.signal = (sig[0] + sig[1]) + (sig[2] + sig[3]);
}

// Exact 1-D k-means for one group. LUT entries beyond the clusters stay zero (coremltools pads).
// fp16 groups get their error from the histogram (one term per distinct value, not per element).
void kmeans_scalar_group(const GroupData& g, int nbits, float* lut, uint8_t* idx, const CancelCheck& cancelled,
                         GroupError& err) {
  const size_t k = size_t{1} << nbits;
  std::fill(lut, lut + k, 0.0f);
  Scratch& s = scratch();
  if (g.is_f16()) {
    thread_local F16Group h;
    histogram_f16_group(g, s.hist, h);
    if (h.distinct.values.size() <= k) {
      finish_f16_group(g, h, nullptr, k, lut, idx, s.cluster_of_key, err);
    } else {
      Kmeans1dResult r = kmeans1d_fp16_distinct(h.distinct, k, cancelled);
      finish_f16_group(g, h, &r, k, lut, idx, s.cluster_of_key, err);
    }
  } else {
    distinct_f32(g.f32, g.count, s.distinct, &s.inverse);
    const size_t n = s.distinct.values.size();
    if (n <= k) {
      for (size_t i = 0; i < n; ++i) lut[i] = static_cast<float>(s.distinct.values[i]);
      for (size_t i = 0; i < g.count; ++i) idx[i] = static_cast<uint8_t>(s.inverse[i]);
    } else {
      Kmeans1dResult r = kmeans1d_sorted(s.distinct.values.data(), s.distinct.counts.data(), n, k,
                                         Kmeans1dAlgorithm::kLagrangian, cancelled);
      for (size_t c = 0; c < r.centroids.size(); ++c) lut[c] = static_cast<float>(r.centroids[c]);
      for (size_t i = 0; i < g.count; ++i) idx[i] = static_cast<uint8_t>(r.assignment[s.inverse[i]]);
    }
  }
}

// k-means++ restarts for vector groups, by the size of the whole tensor (elements · LUT entries):
// small tensors get 4, big ones 1 so that a multi-GB model stays affordable (Hartigan's
// transfers, which give most of the gain at cluster_dim 2, run either way).
int vector_restarts(size_t tensor_elements, size_t entries) {
  const double work = static_cast<double>(tensor_elements) * static_cast<double>(entries);
  return work <= 8388608.0 ? 4 : work <= 33554432.0 ? 2 : 1;
}

void kmeans_vector_group(const GroupData& g, int nbits, uint64_t seed, unsigned threads, int restarts, float* lut,
                         uint8_t* idx) {
  const size_t V = static_cast<size_t>(g.V);
  const size_t k = size_t{1} << nbits;
  std::vector<float> pts(g.count);
  for (size_t i = 0; i < g.count; ++i) pts[i] = g.value(i);
  VectorKmeansParams p;
  p.k = k;
  p.seed = seed;
  p.threads = threads;
  p.n_init = restarts;
  VectorKmeansResult r = vector_kmeans(pts.data(), g.count / V, V, p);
  std::fill(lut, lut + k * V, 0.0f);
  for (size_t i = 0; i < r.centers.size(); ++i)
    lut[i] = g.is_f16() ? half_to_float(float_to_half(r.centers[i])) : r.centers[i];
  for (size_t t = 0; t < r.assignment.size(); ++t) idx[t] = static_cast<uint8_t>(r.assignment[t]);
}

}  // namespace

PalettizeResult palettize_tensor(const WeightView& w, const PalettizeParams& p, const PalettizeHooks& hooks) {
  PalettizeResult res;
  const size_t rank = w.shape.size();
  if (rank == 0) throw Error("EINVAL", "palettize: weight must have rank >= 1");
  for (int64_t d : w.shape)
    if (d <= 0) throw Error("EINVAL", "palettize: bad weight shape " + shape_str(w.shape));
  if (!w.data) throw Error("EINVAL", "palettize: no weight data");
  int axis = p.channel_axis < 0 ? p.channel_axis + static_cast<int>(rank) : p.channel_axis;
  if (axis < 0 || axis >= static_cast<int>(rank))
    throw Error("EINVAL", "palettize: channel_axis " + std::to_string(p.channel_axis) + " out of range for shape " +
                              shape_str(w.shape));
  if (p.mode != PalettizeMode::kUnique && !(p.nbits == 1 || p.nbits == 2 || p.nbits == 3 || p.nbits == 4 ||
                                            p.nbits == 6 || p.nbits == 8))
    throw Error("EINVAL", "palettize: nbits must be one of 1, 2, 3, 4, 6, 8 (got " + std::to_string(p.nbits) + ")");
  if (p.cluster_dim < 1) throw Error("EINVAL", "palettize: cluster_dim must be >= 1");
  if (p.group_size < 0) throw Error("EINVAL", "palettize: group_size must be >= 0");
  if (p.mode == PalettizeMode::kUniform && p.cluster_dim > 1)
    throw Error("EINVAL", "palettize: mode 'uniform' does not support cluster_dim > 1");

  const size_t V = static_cast<size_t>(p.cluster_dim);
  const size_t C = static_cast<size_t>(w.shape[static_cast<size_t>(axis)]);
  const size_t gs = p.group_size == 0 ? C : static_cast<size_t>(p.group_size);
  // coremltools' skip rules (warning, weight left uncompressed).
  if (C % gs != 0) {
    res.skipped = true;
    res.skip_reason = "the number of channels at axis " + std::to_string(axis) + " (" + std::to_string(C) +
                      ") is not divisible by group_size (" + std::to_string(gs) + ")";
    return res;
  }
  if (gs % V != 0) {
    res.skipped = true;
    res.skip_reason = "the channel group size at axis " + std::to_string(axis) + " (" + std::to_string(gs) +
                      ") is not divisible by cluster_dim (" + std::to_string(V) + ")";
    return res;
  }
  const size_t n_elem = w.elements();
  const size_t G = C / gs;
  const size_t per_group = n_elem / G;
  const bool f16 = w.type == WeightType::kFloat16;
  const uint16_t* src16 = f16 ? static_cast<const uint16_t*>(w.data) : nullptr;
  const float* src32 = f16 ? nullptr : static_cast<const float*>(w.data);

  // Per-channel scale: max|w| over the channel axis, zeros -> 1, and w / s in the weight dtype.
  std::vector<uint16_t> norm16;
  std::vector<float> norm32;
  if (p.per_channel_scale) {
    const std::vector<size_t> st = strides_of(w.shape);
    const size_t inner = st[static_cast<size_t>(axis)];
    const size_t outer = n_elem / (inner * C);
    std::vector<float> smax(outer * inner, 0.0f);
    for (size_t o = 0; o < outer; ++o)
      for (size_t c = 0; c < C; ++c)
        for (size_t i = 0; i < inner; ++i) {
          size_t off = (o * C + c) * inner + i;
          float v = f16 ? half_to_float(src16[off]) : src32[off];
          if (!std::isfinite(v)) throw Error("EINVAL", "palettize: weight element " + std::to_string(off) + " is NaN or Inf");
          smax[o * inner + i] = std::max(smax[o * inner + i], std::fabs(v));
        }
    for (float& s : smax)
      if (s == 0.0f) s = 1.0f;
    res.scale_shape = w.shape;
    res.scale_shape[static_cast<size_t>(axis)] = 1;
    if (f16) {
      res.scale_f16.resize(smax.size());
      for (size_t i = 0; i < smax.size(); ++i) res.scale_f16[i] = float_to_half(smax[i]);
      norm16.resize(n_elem);
    } else {
      res.scale_f32 = smax;
      norm32.resize(n_elem);
    }
    for (size_t o = 0; o < outer; ++o)
      for (size_t c = 0; c < C; ++c)
        for (size_t i = 0; i < inner; ++i) {
          size_t off = (o * C + c) * inner + i;
          float s = smax[o * inner + i];
          if (f16) norm16[off] = float_to_half(half_to_float(src16[off]) / s);
          else norm32[off] = src32[off] / s;
        }
    if (f16) src16 = norm16.data();
    else src32 = norm32.data();
  }

  // unique: one nbits for the whole op (max over groups); > 256 distinct -> skipped.
  int nbits = p.nbits;
  auto gather = [&](size_t g, std::vector<size_t>& offs, std::vector<uint16_t>& b16, std::vector<float>& b32) {
    group_offsets(w.shape, axis, g, gs, V, offs);
    if (f16) {
      b16.resize(offs.size());
      for (size_t i = 0; i < offs.size(); ++i) b16[i] = src16[offs[i]];
    } else {
      b32.resize(offs.size());
      for (size_t i = 0; i < offs.size(); ++i) b32[i] = src32[offs[i]];
    }
  };
  if (p.mode == PalettizeMode::kUnique) {
    nbits = 0;
    std::vector<size_t> offs;
    std::vector<uint16_t> b16;
    std::vector<float> b32;
    for (size_t g = 0; g < G; ++g) {
      gather(g, offs, b16, b32);
      GroupData gd;
      gd.f16 = f16 ? b16.data() : nullptr;
      gd.f32 = f16 ? nullptr : b32.data();
      gd.count = offs.size();
      gd.V = static_cast<int>(V);
      size_t u = unique_count(gd);
      int nb = unique_nbits_for(u);
      if (nb == 0) {
        res.skipped = true;
        res.skip_reason = "unique mode: a group has " + std::to_string(u) + " distinct values (more than 256)";
        res.scale_f16.clear();
        res.scale_f32.clear();
        res.scale_shape.clear();
        return res;
      }
      nbits = std::max(nbits, nb);
    }
  }
  res.nbits = nbits;
  res.groups = G;
  const size_t entries = size_t{1} << nbits;

  res.indices_shape = w.shape;
  res.indices_shape[static_cast<size_t>(axis)] /= static_cast<int64_t>(V);
  res.indices = BytePool::global().take(n_elem / V);  // recycled pages: no first-touch faults
  res.indices.assign(n_elem / V, 0);
  res.lut_shape.assign(rank + 2, 1);
  res.lut_shape[static_cast<size_t>(axis)] = static_cast<int64_t>(G);
  res.lut_shape[rank] = static_cast<int64_t>(entries);
  res.lut_shape[rank + 1] = static_cast<int64_t>(V);
  res.lut_type = w.type;
  res.vector_axis = V > 1 ? axis : -1;
  std::vector<float> lut(G * entries * V, 0.0f);

  // Index positions of group g in the indices tensor follow the same swapped order with V = 1.
  // Fast path (channel axis 0, scalar): a group is one contiguous slab already in coremltools order,
  // so it is clustered in place and its indices written in place — no gather, no offset tables.
  const bool contiguous = axis == 0 && V == 1;
  std::atomic<size_t> done{0};
  std::mutex progress_mutex;
  const unsigned inner_threads = G > 1 ? 1 : p.threads;
  std::vector<double> group_sse(G, 0.0), group_signal(G, 0.0);
  // Group g's elements: in place when contiguous, else gathered into `b16` / `b32`.
  auto load_group = [&](size_t g, std::vector<size_t>& offs, std::vector<uint16_t>& b16, std::vector<float>& b32) {
    GroupData gd;
    if (contiguous) {
      gd.f16 = f16 ? src16 + g * per_group : nullptr;
      gd.f32 = f16 ? nullptr : src32 + g * per_group;
      gd.count = per_group;
    } else {
      gather(g, offs, b16, b32);
      gd.f16 = f16 ? b16.data() : nullptr;
      gd.f32 = f16 ? nullptr : b32.data();
      gd.count = offs.size();
    }
    gd.V = static_cast<int>(V);
    return gd;
  };
  // Where group g's indices go: in place when contiguous, else a buffer scattered by store_group.
  auto group_indices = [&](size_t g, size_t count, std::vector<uint8_t>& buf) {
    if (contiguous) return res.indices.data() + g * per_group;
    if (buf.size() < count / V) buf.resize(count / V);
    return buf.data();
  };
  auto store_group = [&](size_t g, const GroupData& gd, const uint8_t* gidx, const GroupError& gerr) {
    if (!contiguous) {
      thread_local std::vector<size_t> ioffs;
      group_offsets(res.indices_shape, axis, g, gs / V, 1, ioffs);
      for (size_t t = 0; t < ioffs.size(); ++t) res.indices[ioffs[t]] = gidx[t];
    }
    const float* glut = lut.data() + g * entries * V;
    if (gerr.known) {
      group_sse[g] = gerr.sse;
      group_signal[g] = gerr.signal;
    } else if (!p.per_channel_scale) {  // error vs the weight: decoded value = LUT entry (exact in float)
      double sse = 0, sig = 0;
      const float* ht = half_to_float_table();
      for (size_t t = 0; t < gd.count / V; ++t)
        for (size_t j = 0; j < V; ++j) {
          size_t e = t * V + j;
          double a = f16 ? ht[gd.f16[e]] : gd.f32[e], b = glut[gidx[t] * V + j];
          sse += (a - b) * (a - b);
          sig += a * a;
        }
      group_sse[g] = sse;
      group_signal[g] = sig;
    }
    if (hooks.progress) {
      // Counted under the lock: reports reach the callback in increasing order (the last is the total).
      std::lock_guard<std::mutex> lock(progress_mutex);
      size_t now = done.fetch_add(per_group) + per_group;
      hooks.progress(static_cast<double>(now), static_cast<double>(n_elem));
    }
  };
  auto run_group = [&](size_t g) {
    if (hooks.cancelled && hooks.cancelled()) throw Cancelled();
    thread_local std::vector<size_t> offs;
    thread_local std::vector<uint16_t> b16;
    thread_local std::vector<float> b32;
    thread_local std::vector<uint8_t> gidx_buf;
    const GroupData gd = load_group(g, offs, b16, b32);
    uint8_t* gidx = group_indices(g, gd.count, gidx_buf);
    float* glut = lut.data() + g * entries * V;
    GroupError gerr;
    switch (p.mode) {
      case PalettizeMode::kKmeans:
        if (V == 1) kmeans_scalar_group(gd, nbits, glut, gidx, hooks.cancelled, gerr);
        else kmeans_vector_group(gd, nbits, p.seed, inner_threads, vector_restarts(n_elem, entries), glut, gidx);
        break;
      case PalettizeMode::kUniform:
        uniform_group(gd, nbits, glut, gidx);
        break;
      case PalettizeMode::kUnique:
        unique_group(gd, nbits, glut, gidx);
        break;
    }
    store_group(g, gd, gidx, gerr);
  };
  // fp16 scalar k-means: several groups' exact k-means at once (kmeans1d_fp16_distinct_stream
  // interleaves their passes), each group's histogram made when a slot frees up and its indices
  // written when its clusters come back.
  auto run_f16_kmeans_groups = [&](size_t first, size_t end) {
    struct Slot {
      size_t g = 0;
      GroupData gd;
      F16Group h;
    };
    thread_local Slot slots[kKmeans1dStreamSlots];
    thread_local std::vector<size_t> offs;
    thread_local std::vector<uint16_t> b16;
    thread_local std::vector<float> b32;
    thread_local std::vector<uint8_t> gidx_buf;
    Scratch& s = scratch();
    size_t g = first;
    auto finish = [&](Slot& slot, const Kmeans1dResult* r) {
      uint8_t* gidx = group_indices(slot.g, slot.gd.count, gidx_buf);
      GroupError gerr;
      finish_f16_group(slot.gd, slot.h, r, entries, lut.data() + slot.g * entries, gidx, s.cluster_of_key, gerr);
      store_group(slot.g, slot.gd, gidx, gerr);
    };
    auto next = [&](size_t id) -> const DistinctValues* {
      Slot& slot = slots[id];
      while (g < end) {
        if (hooks.cancelled && hooks.cancelled()) throw Cancelled();
        slot.g = g++;
        slot.gd = load_group(slot.g, offs, b16, b32);
        histogram_f16_group(slot.gd, s.hist, slot.h);
        slot.gd.f16 = nullptr;  // gathered data is reused by the next group; finish needs only the keys
        if (slot.h.distinct.values.size() > entries) return &slot.h.distinct;
        finish(slot, nullptr);
      }
      return nullptr;
    };
    kmeans1d_fp16_distinct_stream(
        entries, next, [&](size_t id, Kmeans1dResult& r) { finish(slots[id], &r); }, hooks.cancelled,
        /*fp16_centroids=*/true);
  };
  if (p.mode == PalettizeMode::kKmeans && V == 1 && f16 && G > 1) {
    // Chunks of groups per task: enough for the interleaved passes to stay full, small enough to
    // share the groups out between threads.
    const size_t workers = p.threads ? p.threads : ThreadPool::global()->size();
    const size_t chunk = std::min<size_t>(64, (G + 2 * workers - 1) / (2 * workers));
    const size_t tasks = (G + chunk - 1) / chunk;
    if (tasks == 1) run_f16_kmeans_groups(0, G);
    else parallel_for(tasks, [&](size_t t) { run_f16_kmeans_groups(t * chunk, std::min(G, (t + 1) * chunk)); }, 1, p.threads);
  } else if (G == 1) {
    run_group(0);
  } else {
    parallel_for(G, run_group, 1, p.threads);
  }

  if (f16) {
    res.lut_f16.resize(lut.size());
    for (size_t i = 0; i < lut.size(); ++i) res.lut_f16[i] = float_to_half(lut[i]);
  } else {
    res.lut_f32 = std::move(lut);
  }

  double sse = 0, signal = 0;
  for (size_t g = 0; g < G; ++g) {  // fixed order: same sums for any thread count
    sse += group_sse[g];
    signal += group_signal[g];
  }
  if (p.per_channel_scale) {
    // Scaled values: error through the op decoder (scale · LUT entry, rounded like the op).
    LutDecodeInput in;
    in.indices = res.indices.data();
    in.indices_shape = res.indices_shape;
    in.type = w.type;
    in.lut = f16 ? static_cast<const void*>(res.lut_f16.data()) : static_cast<const void*>(res.lut_f32.data());
    in.lut_shape = res.lut_shape;
    in.vector_axis = res.vector_axis;
    in.scale = f16 ? static_cast<const void*>(res.scale_f16.data()) : static_cast<const void*>(res.scale_f32.data());
    in.scale_shape = res.scale_shape;
    sse = signal = 0;
    if (f16) {
      std::vector<uint16_t> dec(n_elem);
      decompress_lut(in, dec.data());
      const uint16_t* orig = static_cast<const uint16_t*>(w.data);
      for (size_t i = 0; i < n_elem; ++i) {
        double a = half_to_float(orig[i]), b = half_to_float(dec[i]);
        sse += (a - b) * (a - b);
        signal += a * a;
      }
    } else {
      std::vector<float> dec(n_elem);
      decompress_lut(in, dec.data());
      const float* orig = static_cast<const float*>(w.data);
      for (size_t i = 0; i < n_elem; ++i) {
        double a = orig[i], b = dec[i];
        sse += (a - b) * (a - b);
        signal += a * a;
      }
    }
  }
  res.sse = sse;
  res.signal = signal;
  return res;
}

std::vector<int64_t> decompressed_shape(const LutDecodeInput& in) {
  const size_t K = in.indices_shape.size();
  if (in.lut_shape.size() != K + 2)
    throw Error("EINVAL", "lut_to_dense: lut rank " + std::to_string(in.lut_shape.size()) + " must be indices rank + 2 (" +
                              std::to_string(K + 2) + ")");
  std::vector<int64_t> out = in.indices_shape;
  const int64_t V = in.lut_shape[K + 1];
  if (V > 1) {
    if (in.vector_axis < 0 || in.vector_axis >= static_cast<int>(K))
      throw Error("EINVAL", "lut_to_dense: vector_axis is required when the LUT vector size is > 1");
    out[static_cast<size_t>(in.vector_axis)] *= V;
  }
  for (size_t k = 0; k < K; ++k)
    if (in.lut_shape[k] <= 0 || in.indices_shape[k] % in.lut_shape[k] != 0)
      throw Error("EINVAL", "lut_to_dense: indices shape " + shape_str(in.indices_shape) +
                                " is not a multiple of the LUT group shape " + shape_str(in.lut_shape));
  if (in.scale) {
    if (in.scale_shape.size() != K) throw Error("EINVAL", "blockwise_shift_scale: scale rank must equal the data rank");
    for (size_t k = 0; k < K; ++k)
      if (in.scale_shape[k] <= 0 || out[k] % in.scale_shape[k] != 0)
        throw Error("EINVAL", "blockwise_shift_scale: data shape " + shape_str(out) + " is not a multiple of scale shape " +
                                  shape_str(in.scale_shape));
  }
  return out;
}

void decompress_lut(const LutDecodeInput& in, void* out) {
  const std::vector<int64_t> oshape = decompressed_shape(in);
  const size_t K = oshape.size();
  const int64_t entries = in.lut_shape[K];
  const int64_t V = in.lut_shape[K + 1];
  const size_t va = V > 1 ? static_cast<size_t>(in.vector_axis) : K;
  // LUT strides over its group dims, then entries, then V.
  std::vector<size_t> lut_stride(K + 2, 1);
  for (size_t i = K + 2; i-- > 1;) lut_stride[i - 1] = lut_stride[i] * static_cast<size_t>(in.lut_shape[i]);
  const std::vector<size_t> istride = strides_of(in.indices_shape);
  std::vector<size_t> sstride;
  if (in.scale) sstride = strides_of(in.scale_shape);
  size_t total = 1;
  for (int64_t d : oshape) total *= static_cast<size_t>(d);
  std::vector<int64_t> o(K, 0);
  const bool f16 = in.type == WeightType::kFloat16;
  for (size_t flat = 0; flat < total; ++flat) {
    size_t ioff = 0, loff = 0, soff = 0;
    int64_t j = 0;
    for (size_t k = 0; k < K; ++k) {
      int64_t ik = o[k];
      if (k == va) {
        j = ik % V;
        ik /= V;
      }
      ioff += static_cast<size_t>(ik) * istride[k];
      int64_t G = in.indices_shape[k] / in.lut_shape[k];
      loff += static_cast<size_t>(ik / G) * lut_stride[k];
      if (in.scale) soff += static_cast<size_t>(o[k] / (oshape[k] / in.scale_shape[k])) * sstride[k];
    }
    int64_t code = in.indices[ioff];
    if (code >= entries)
      throw Error("EINVAL", "lut_to_dense: index " + std::to_string(code) + " out of range for a " +
                                std::to_string(entries) + "-entry LUT");
    loff += static_cast<size_t>(code) * lut_stride[K] + static_cast<size_t>(j);
    if (f16) {
      uint16_t v = static_cast<const uint16_t*>(in.lut)[loff];
      if (in.scale)  // blockwise_shift_scale in fp16: one rounded multiply
        v = float_to_half(half_to_float(static_cast<const uint16_t*>(in.scale)[soff]) * half_to_float(v));
      static_cast<uint16_t*>(out)[flat] = v;
    } else {
      float v = static_cast<const float*>(in.lut)[loff];
      if (in.scale) v = static_cast<const float*>(in.scale)[soff] * v;
      static_cast<float*>(out)[flat] = v;
    }
    for (size_t k = K; k-- > 0;) {
      if (++o[k] < oshape[k]) break;
      o[k] = 0;
    }
  }
}

}  // namespace cmo::kernels
