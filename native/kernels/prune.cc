#include "prune.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <utility>

#include "../util/fp16.h"
#include "../util/thread_pool.h"
#include "decompress.h"

namespace cmo::kernels {

double numpy_percentile(std::vector<float> v, double q, DType dtype) {
  const size_t n = v.size();
  if (n == 0) throw Error("EINVAL", "percentile of an empty tensor");
  // NaN breaks the ordering nth_element relies on (and numpy would prune nothing): reject.
  for (float x : v)
    if (std::isnan(x)) throw Error("EINVAL", "pruning: weight contains NaN");
  // numpy: quantiles = q / 100; virtual index = (n - 1) * quantiles (float64).
  const double quantile = q / 100.0;
  const double virt = static_cast<double>(n - 1) * quantile;
  size_t prev, next;
  double gamma;
  if (virt >= static_cast<double>(n - 1)) {
    prev = next = n - 1;
    gamma = 0;
  } else if (virt < 0) {
    prev = next = 0;
    gamma = 0;
  } else {
    prev = static_cast<size_t>(std::floor(virt));
    next = prev + 1;
    gamma = virt - static_cast<double>(prev);
  }
  std::nth_element(v.begin(), v.begin() + static_cast<long>(prev), v.end());
  const float a = v[prev];
  float b = a;
  if (next != prev) b = *std::min_element(v.begin() + static_cast<long>(prev) + 1, v.end());
  // _lerp: diff = b - a in the array dtype; a + diff*t (t < 0.5) or b - diff*(1-t) (t >= 0.5) in float64.
  const double diff = round_to(dtype, b - a);
  return gamma >= 0.5 ? static_cast<double>(b) - diff * (1.0 - gamma) : static_cast<double>(a) + diff * gamma;
}

namespace {

// numpy 1.x compares an fp16/fp32 array with a float64 scalar in the array's dtype.
float threshold_in(DType dtype, double thr) {
  return round_to(dtype, static_cast<float>(thr));
}

std::vector<uint8_t> percentile_mask(const std::vector<float>& mag, double target, DType dtype) {
  std::vector<uint8_t> keep(mag.size(), 1);
  const double q = target * 100.0;
  if (q == 100.0) {
    std::fill(keep.begin(), keep.end(), 0);
  } else if (q != 0.0) {
    const float thr = threshold_in(dtype, numpy_percentile(mag, q, dtype));
    parallel_for((mag.size() + 65535) / 65536, [&](size_t c) {
      for (size_t i = c * 65536, e = std::min(mag.size(), (c + 1) * 65536); i < e; ++i) keep[i] = !(mag[i] <= thr);
    });
  }
  return keep;
}

void check_target(double t) {
  if (!(t >= 0.0 && t <= 1.0)) throw Error("EINVAL", "target_sparsity must be in [0, 1], got " + std::to_string(t));
}

void check_float(const TensorData& w, const char* what) {
  w.validate(what);
  if (w.dtype != DType::Float16 && w.dtype != DType::Float32)
    throw Error("EINVAL", std::string(what) + ": weight must be fp16 or fp32, got " + mil_dtype_name(w.dtype));
}

// fp16 magnitudes: |h| = h & 0x7FFF orders like |value| for non-NaN halves, so the two order
// statistics numpy_percentile needs come from a histogram of the 32,768 magnitude patterns — O(n),
// built in parallel, no copy and no selection (a 13 M-weight UNet layer: one read instead of a
// copy plus nth_element). Same a, b, same lerp, same fp16 comparison as the generic path.
std::vector<uint8_t> magnitude_prune_mask_f16(const TensorData& w, double target) {
  const size_t n = static_cast<size_t>(w.numel());
  const double q = target * 100.0;
  if (q == 100.0) return std::vector<uint8_t>(n, 0);
  if (q == 0.0) return std::vector<uint8_t>(n, 1);
  auto half_at = [&](size_t i) {
    uint16_t h;
    std::memcpy(&h, w.data + 2 * i, 2);
    return static_cast<uint16_t>(h & 0x7FFFu);
  };
  constexpr size_t kBuckets = 32768, kChunk = size_t{1} << 22;
  const size_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<std::vector<uint64_t>> partial(chunks);
  parallel_for(chunks, [&](size_t c) {
    std::vector<uint64_t> h(kBuckets, 0);
    for (size_t i = c * kChunk, e = std::min(n, (c + 1) * kChunk); i < e; ++i) ++h[half_at(i)];
    partial[c] = std::move(h);
  });
  std::vector<uint64_t> hist(kBuckets, 0);
  for (const auto& h : partial)
    for (size_t b = 0; b < kBuckets; ++b) hist[b] += h[b];
  for (size_t b = 0x7C01; b < kBuckets; ++b)
    if (hist[b]) throw Error("EINVAL", "pruning: weight contains NaN");
  // numpy: virtual index (n − 1)·q/100, ranks prev and next = prev + 1 (see numpy_percentile).
  const double virt = static_cast<double>(n - 1) * (q / 100.0);
  size_t prev = n - 1, next = n - 1;
  double gamma = 0;
  if (virt < static_cast<double>(n - 1)) {
    prev = static_cast<size_t>(std::floor(virt));
    next = prev + 1;
    gamma = virt - static_cast<double>(prev);
  }
  auto value_at_rank = [&](size_t rank) {
    uint64_t seen = 0;
    for (size_t b = 0; b < kBuckets; ++b) {
      seen += hist[b];
      if (seen > rank) return half_to_float(static_cast<uint16_t>(b));
    }
    return half_to_float(0x7C00);  // unreachable: rank < n
  };
  const float a = value_at_rank(prev), b = next == prev ? a : value_at_rank(next);
  const double diff = round_to(DType::Float16, b - a);
  const double pct = gamma >= 0.5 ? static_cast<double>(b) - diff * (1.0 - gamma) : static_cast<double>(a) + diff * gamma;
  // The threshold is an fp16 value (numpy compares in the array dtype): compare bit patterns.
  const uint16_t thr = float_to_half(threshold_in(DType::Float16, pct));
  std::vector<uint8_t> keep(n);
  parallel_for((n + 65535) / 65536, [&](size_t c) {
    for (size_t i = c * 65536, e = std::min(n, (c + 1) * 65536); i < e; ++i) keep[i] = half_at(i) > thr;
  });
  return keep;
}

}  // namespace

std::vector<uint8_t> magnitude_prune_mask(const TensorData& w, double target) {
  check_float(w, "magnitude pruning");
  check_target(target);
  if (w.dtype == DType::Float16) return magnitude_prune_mask_f16(w, target);
  std::vector<float> mag(static_cast<size_t>(w.numel()));
  for (size_t i = 0; i < mag.size(); ++i) mag[i] = std::fabs(w.get_float(i));
  return percentile_mask(mag, target, w.dtype);
}

std::string block_prune_skip_reason(const std::vector<int64_t>& shape, int64_t bs, int64_t dim) {
  if (shape.size() < 2 || shape.size() > 5) return "weight rank must be 2..5 for structured pruning";
  if (dim != 0 && dim != 1) return "dim must be 0 or 1";
  if (bs <= 1) return "block_size must be > 1";
  const int64_t c = shape[static_cast<size_t>(dim)];
  if (bs > c / 2) return "block_size " + std::to_string(bs) + " > channels/2 (" + std::to_string(c) + "/2)";
  return {};
}

std::vector<uint8_t> block_prune_mask(const TensorData& w, double target, int64_t bs, int64_t dim) {
  check_float(w, "block pruning");
  check_target(target);
  std::string why = block_prune_skip_reason(w.shape, bs, dim);
  if (!why.empty()) throw Error("ESKIP", "block pruning not applicable: " + why);
  // Element (i0, i1, rest): channel c = i_dim, block = c / bs. Norm over the block members at the
  // same position in the other axes, numpy fp16 style: squares rounded, sum accumulated then
  // rounded, sqrt rounded (exact numpy order for block_size 2; sums of >2 squares may differ by an ulp).
  const DType t = w.dtype;
  const int64_t d0 = w.shape[0], d1 = w.shape[1];
  int64_t rest = 1;
  for (size_t k = 2; k < w.shape.size(); ++k) rest *= w.shape[k];
  const int64_t C = dim == 0 ? d0 : d1;
  const int64_t nblk = (C + bs - 1) / bs;  // zero-padded tail block
  auto flat = [&](int64_t c, int64_t other, int64_t r) {
    const int64_t i0 = dim == 0 ? c : other, i1 = dim == 0 ? other : c;
    return (i0 * d1 + i1) * rest + r;
  };
  const int64_t O = dim == 0 ? d1 : d0;
  std::vector<float> mag(static_cast<size_t>(w.numel()));
  parallel_for(static_cast<size_t>(nblk), [&](size_t bi) {
    const int64_t b = static_cast<int64_t>(bi);
    for (int64_t o = 0; o < O; ++o)
      for (int64_t r = 0; r < rest; ++r) {
        float acc = 0;
        for (int64_t c = b * bs; c < std::min(C, (b + 1) * bs); ++c) {
          const float v = w.get_float(static_cast<size_t>(flat(c, o, r)));
          acc += round_to(t, v * v);
        }
        const float norm = round_to(t, std::sqrt(round_to(t, acc)));
        for (int64_t c = b * bs; c < std::min(C, (b + 1) * bs); ++c) mag[static_cast<size_t>(flat(c, o, r))] = norm;
      }
  });
  return percentile_mask(mag, target, t);
}

namespace {
// numpy percentile by full sort (oracle for the nth_element version).
double percentile_by_sort(std::vector<float> v, double q, DType dtype) {
  for (float x : v)
    if (std::isnan(x)) throw Error("EINVAL", "pruning: weight contains NaN");
  std::sort(v.begin(), v.end());
  const double virt = static_cast<double>(v.size() - 1) * (q / 100.0);
  if (virt >= static_cast<double>(v.size() - 1)) return v.back();
  const size_t lo = static_cast<size_t>(std::floor(virt));
  const double g = virt - static_cast<double>(lo);
  const double diff = round_to(dtype, v[lo + 1] - v[lo]);
  return g >= 0.5 ? v[lo + 1] - diff * (1.0 - g) : v[lo] + diff * g;
}

std::vector<uint8_t> mask_ref(const std::vector<float>& mag, double target, DType dtype) {
  std::vector<uint8_t> keep(mag.size(), 1);
  const double q = target * 100.0;
  if (q == 100.0) return std::vector<uint8_t>(mag.size(), 0);
  if (q == 0.0) return keep;
  const float thr = threshold_in(dtype, percentile_by_sort(mag, q, dtype));
  for (size_t i = 0; i < mag.size(); ++i) keep[i] = mag[i] > thr;
  return keep;
}
}  // namespace

std::vector<uint8_t> magnitude_prune_mask_ref(const TensorData& w, double target) {
  check_float(w, "magnitude pruning");
  check_target(target);
  std::vector<float> mag(static_cast<size_t>(w.numel()));
  for (size_t i = 0; i < mag.size(); ++i) mag[i] = std::fabs(w.get_float(i));
  return mask_ref(mag, target, w.dtype);
}

// Literal coremltools steps: swap dim to axis 0, zero-pad axis 0 to a multiple of bs, norm of each
// [bs] column, broadcast, crop, swap back.
std::vector<uint8_t> block_prune_mask_ref(const TensorData& w, double target, int64_t bs, int64_t dim) {
  check_float(w, "block pruning");
  check_target(target);
  std::string why = block_prune_skip_reason(w.shape, bs, dim);
  if (!why.empty()) throw Error("ESKIP", "block pruning not applicable: " + why);
  const DType t = w.dtype;
  std::vector<int64_t> sw = w.shape;  // swapped shape
  if (dim == 1) std::swap(sw[0], sw[1]);
  int64_t inner = 1;
  for (size_t k = 1; k < sw.size(); ++k) inner *= sw[k];
  const int64_t C = sw[0], padded = (C + bs - 1) / bs * bs;
  int64_t rest = 1;
  for (size_t k = 2; k < w.shape.size(); ++k) rest *= w.shape[k];
  auto src_index = [&](int64_t c, int64_t j) {  // element (c, j) of the swapped [C, inner] view
    const int64_t o = j / rest, r = j % rest;
    const int64_t i0 = dim == 0 ? c : o, i1 = dim == 0 ? o : c;
    return (i0 * w.shape[1] + i1) * rest + r;
  };
  std::vector<float> swapped(static_cast<size_t>(padded * inner), 0.0f);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t j = 0; j < inner; ++j) swapped[static_cast<size_t>(c * inner + j)] = w.get_float(static_cast<size_t>(src_index(c, j)));
  std::vector<float> mag(static_cast<size_t>(w.numel()));
  for (int64_t b = 0; b < padded / bs; ++b)
    for (int64_t j = 0; j < inner; ++j) {
      float acc = 0;
      for (int64_t k = 0; k < bs; ++k) {
        const float v = swapped[static_cast<size_t>((b * bs + k) * inner + j)];
        acc += round_to(t, v * v);
      }
      const float norm = round_to(t, std::sqrt(round_to(t, acc)));
      for (int64_t k = 0; k < bs && b * bs + k < C; ++k) mag[static_cast<size_t>(src_index(b * bs + k, j))] = norm;
    }
  return mask_ref(mag, target, t);
}

std::string nm_prune_skip_reason(const std::vector<int64_t>& shape, int64_t m, int64_t dim) {
  if (shape.size() < 2 || shape.size() > 5) return "weight rank must be 2..5 for structured pruning";
  if (dim != 0 && dim != 1) return "dim must be 0 or 1";
  const int64_t c = shape[static_cast<size_t>(dim)];
  if (m > c / 2) return "m " + std::to_string(m) + " > channels/2 (" + std::to_string(c) + "/2)";
  return {};
}

namespace {
void check_nm(const TensorData& w, int64_t n, int64_t m, int64_t dim) {
  check_float(w, "n:m pruning");
  if (m <= 0 || n < 0 || n > m) throw Error("EINVAL", "n:m ratio must satisfy 0 <= n <= m, m > 0");
  std::string why = nm_prune_skip_reason(w.shape, m, dim);
  if (!why.empty()) throw Error("ESKIP", "n:m pruning not applicable: " + why);
}
}  // namespace

// Groups: for every kernel position r and the other channel o, the chosen axis is split into runs
// of m (the last run zero-padded; padding zeros have magnitude 0 and are pruned first).
std::vector<uint8_t> nm_prune_mask(const TensorData& w, int64_t n, int64_t m, int64_t dim) {
  check_nm(w, n, m, dim);
  const int64_t d0 = w.shape[0], d1 = w.shape[1];
  int64_t rest = 1;
  for (size_t k = 2; k < w.shape.size(); ++k) rest *= w.shape[k];
  const int64_t C = dim == 0 ? d0 : d1, O = dim == 0 ? d1 : d0;
  const int64_t groups = (C + m - 1) / m;
  std::vector<uint8_t> keep(static_cast<size_t>(w.numel()), 1);
  parallel_for(static_cast<size_t>(rest * O), [&](size_t line) {
    const int64_t r = static_cast<int64_t>(line) / O, o = static_cast<int64_t>(line) % O;
    std::vector<float> mag(static_cast<size_t>(m));
    std::vector<int64_t> order(static_cast<size_t>(m)), pos(static_cast<size_t>(m));
    for (int64_t g = 0; g < groups; ++g) {
      for (int64_t j = 0; j < m; ++j) {
        const int64_t c = g * m + j;
        const int64_t i0 = dim == 0 ? c : o, i1 = dim == 0 ? o : c;
        pos[static_cast<size_t>(j)] = c < C ? (i0 * d1 + i1) * rest + r : -1;
        mag[static_cast<size_t>(j)] = c < C ? std::fabs(w.get_float(static_cast<size_t>(pos[static_cast<size_t>(j)]))) : 0.0f;
      }
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return mag[static_cast<size_t>(a)] < mag[static_cast<size_t>(b)]; });
      for (int64_t k = 0; k < n; ++k) {
        const int64_t p = pos[static_cast<size_t>(order[static_cast<size_t>(k)])];
        if (p >= 0) keep[static_cast<size_t>(p)] = 0;
      }
    }
  }, 16);
  return keep;
}

// Reference: literally permute to [*K, other, chosen] rows, pad, and select by repeated minimum
// search (first minimum wins = stable order).
std::vector<uint8_t> nm_prune_mask_ref(const TensorData& w, int64_t n, int64_t m, int64_t dim) {
  check_nm(w, n, m, dim);
  const int64_t d0 = w.shape[0], d1 = w.shape[1];
  int64_t rest = 1;
  for (size_t k = 2; k < w.shape.size(); ++k) rest *= w.shape[k];
  const int64_t C = dim == 0 ? d0 : d1, O = dim == 0 ? d1 : d0;
  const int64_t padded = (C + m - 1) / m * m;
  std::vector<uint8_t> keep(static_cast<size_t>(w.numel()), 1);
  for (int64_t r = 0; r < rest; ++r)
    for (int64_t o = 0; o < O; ++o) {
      std::vector<float> row(static_cast<size_t>(padded), 0.0f);
      std::vector<int64_t> src(static_cast<size_t>(padded), -1);
      for (int64_t c = 0; c < C; ++c) {
        const int64_t idx = ((dim == 0 ? c : o) * d1 + (dim == 0 ? o : c)) * rest + r;
        src[static_cast<size_t>(c)] = idx;
        row[static_cast<size_t>(c)] = std::fabs(w.get_float(static_cast<size_t>(idx)));
      }
      for (int64_t g = 0; g < padded; g += m) {
        std::vector<bool> taken(static_cast<size_t>(m), false);
        for (int64_t k = 0; k < n; ++k) {
          int64_t best = -1;
          for (int64_t j = 0; j < m; ++j)
            if (!taken[static_cast<size_t>(j)] && (best < 0 || row[static_cast<size_t>(g + j)] < row[static_cast<size_t>(g + best)])) best = j;
          taken[static_cast<size_t>(best)] = true;
          if (src[static_cast<size_t>(g + best)] >= 0) keep[static_cast<size_t>(src[static_cast<size_t>(g + best)])] = 0;
        }
      }
    }
  return keep;
}

std::vector<uint8_t> threshold_prune_mask(const TensorData& w, double threshold) {
  check_float(w, "threshold pruning");
  if (!(threshold >= 0)) throw Error("EINVAL", "threshold must be >= 0");
  // numpy: np.abs(w) <= threshold with a Python float → compared in the weight dtype.
  const float thr = threshold_in(w.dtype, threshold);
  std::vector<uint8_t> keep(static_cast<size_t>(w.numel()));
  for (size_t i = 0; i < keep.size(); ++i) keep[i] = !(std::fabs(w.get_float(i)) <= thr);
  return keep;
}

namespace {

// mask[i] &= (element i is not ±0), on the raw IEEE bits (sign bit ignored; NaN counts as non-zero
// like `!= 0.0f`). Returns the ones left in [b, e).
template <class Bits>
size_t and_nonzero_bits(uint8_t* mask, const uint8_t* data, size_t b, size_t e) {
  constexpr Bits kMagnitude = static_cast<Bits>(static_cast<Bits>(~Bits{0}) >> 1);  // 0x7FFF, 0x7FFFFFFF
  size_t nz = 0;
  for (size_t i = b; i < e; ++i) {
    Bits u;
    std::memcpy(&u, data + sizeof(Bits) * i, sizeof(Bits));
    const uint8_t m = static_cast<uint8_t>(mask[i] != 0 && (u & kMagnitude) != 0);
    mask[i] = m;
    nz += m;
  }
  return nz;
}

}  // namespace

PruneResult prune_result(const TensorData& w, const std::vector<uint8_t>& keep) {
  return prune_result(w, std::vector<uint8_t>(keep));
}

PruneResult prune_result(const TensorData& w, std::vector<uint8_t>&& keep) {
  w.validate("prune");
  if (keep.size() != static_cast<size_t>(w.numel())) throw Error("EINVAL", "prune: mask size differs from the weight");
  const size_t n = keep.size();
  PruneResult r;
  r.mask = std::move(keep);  // becomes keep && (w != 0) in place: no second n-byte buffer to fault in
  // Chunks in parallel: mask and non-zero count per chunk, then each chunk copies its non-zeros
  // to its prefix offset (the same order as a sequential scan).
  constexpr size_t kChunk = size_t{1} << 16;
  const size_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<size_t> start(chunks + 1, 0);
  const DType dt = w.dtype;
  uint8_t* const mask = r.mask.data();
  parallel_for(chunks, [&, mask, dt](size_t c) {
    // Locals, not captures by reference: the uint8 stores below may alias anything, so values read
    // through the closure would be reloaded on every element.
    const uint8_t* const data = w.data;
    const size_t b = c * kChunk, e = std::min(n, (c + 1) * kChunk);
    size_t nz = 0;
    if (dt == DType::Float16) {  // ±0 are zeros
      nz = and_nonzero_bits<uint16_t>(mask, data, b, e);
    } else if (dt == DType::Float32) {
      nz = and_nonzero_bits<uint32_t>(mask, data, b, e);
    } else {
      for (size_t i = b; i < e; ++i) {
        const uint8_t m = static_cast<uint8_t>(mask[i] != 0 && w.get_float(i) != 0.0f);  // NaN is non-zero
        mask[i] = m;
        nz += m;
      }
    }
    start[c + 1] = nz;
  });
  for (size_t c = 0; c < chunks; ++c) start[c + 1] += start[c];
  const size_t nz = start[chunks];
  r.nonzero = Tensor(dt, {static_cast<int64_t>(nz)});
  const size_t es = dtype_unpacked_size(dt);
  // Branch-free compaction (a pruned mask is close to random, so `if (mask)` mispredicts half the
  // time): every element is stored at slot j and j advances only past kept ones; stores past the
  // chunk's last slot (which belongs to the next chunk) go to a scratch slot instead.
  uint8_t* const dst = r.nonzero.bytes.data();
  parallel_for(chunks, [&, dst, mask, es](size_t c) {
    const uint8_t* const data = w.data;
    size_t j = start[c];
    const size_t limit = start[c + 1];
    const size_t b = c * kChunk, e = std::min(n, (c + 1) * kChunk);
    if (es == 2) {
      uint8_t scratch[2];
      for (size_t i = b; i < e; ++i) {
        uint8_t* to = j < limit ? dst + 2 * j : scratch;
        std::memcpy(to, data + 2 * i, 2);
        j += mask[i];
      }
    } else {
      for (size_t i = b; i < e; ++i)
        if (mask[i]) std::memcpy(dst + es * j++, data + es * i, es);
    }
  });
  r.sparsity = n == 0 ? 0.0 : 1.0 - static_cast<double>(nz) / static_cast<double>(n);
  return r;
}

}  // namespace cmo::kernels
