#include "kmeans_sklearn.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>

#include "../util/error.h"
#include "../util/thread_pool.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#endif

namespace cmo::kernels {

NumpyLegacyRandom::NumpyLegacyRandom(uint32_t seed) : pos_(624) {
  // numpy's mt19937_seed (the legacy seeding of an integer seed).
  mt_[0] = seed;
  for (uint32_t i = 1; i < 624; ++i) mt_[i] = 1812433253u * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + i;
}

void NumpyLegacyRandom::twist() {
  constexpr uint32_t kUpper = 0x80000000u, kLower = 0x7fffffffu, kMatrix = 0x9908b0dfu;
  for (size_t i = 0; i < 624; ++i) {
    const uint32_t y = (mt_[i] & kUpper) | (mt_[(i + 1) % 624] & kLower);
    mt_[i] = mt_[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? kMatrix : 0u);
  }
  pos_ = 0;
}

uint32_t NumpyLegacyRandom::next_u32() {
  if (pos_ >= 624) twist();
  uint32_t y = mt_[pos_++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  return y ^ (y >> 18);
}

double NumpyLegacyRandom::random_sample() {
  const uint32_t a = next_u32() >> 5, b = next_u32() >> 6;
  return (a * 67108864.0 + b) / 9007199254740992.0;
}

uint64_t NumpyLegacyRandom::randint(uint64_t high) {
  // random_bounded_uint64_fill with use_masked (ranges below 2^32): draw 32 bits, mask to the
  // smallest all-ones cover of the range, reject values above it.
  if (high <= 1) return 0;
  const uint64_t rng = high - 1;
  if (rng > 0xFFFFFFFFull) throw Error("EINVAL", "randint: range above 2^32 is not supported");
  uint32_t mask = static_cast<uint32_t>(rng);
  mask |= mask >> 1;
  mask |= mask >> 2;
  mask |= mask >> 4;
  mask |= mask >> 8;
  mask |= mask >> 16;
  uint32_t v;
  while ((v = next_u32() & mask) > rng) {
  }
  return v;
}

namespace {

constexpr size_t kChunk = 4096;  // fixed work unit: partial sums reduce in chunk order

void chunks(size_t n, unsigned threads, const std::function<void(size_t, size_t, size_t)>& body) {
  const size_t count = (n + kChunk - 1) / kChunk;
  auto run = [&](size_t c) { body(c, c * kChunk, std::min(n, (c + 1) * kChunk)); };
  if (threads == 1) {
    for (size_t c = 0; c < count; ++c) run(c);
  } else {
    parallel_for(count, run, 1, threads);
  }
}

// scikit-learn's _euclidean_distances(squared=True) for dense float64: ||a||² − 2 a·b + ||b||², ≥ 0.
inline double sq_dist_expanded(const double* a, double a_sq, const double* b, double b_sq, size_t dim) {
  double dot = 0;
  for (size_t d = 0; d < dim; ++d) dot += a[d] * b[d];
  const double r = -2.0 * dot + a_sq + b_sq;
  return r > 0 ? r : 0.0;
}

}  // namespace

SklearnKmeansResult sklearn_kmeans(const float* points, size_t n, size_t dim, size_t k, uint32_t random_state,
                                   double tol, int max_iter, unsigned threads) {
  if (n <= k || dim == 0 || k == 0) throw Error("EINVAL", "sklearn_kmeans: needs more points than clusters");
  const size_t n_chunks = (n + kChunk - 1) / kChunk;

  // X − mean (KMeans.fit centers dense data), row norms, tolerance = mean feature variance · tol.
  std::vector<double> mean(dim, 0.0), x(n * dim), x_sq(n);
  for (size_t i = 0; i < n; ++i)
    for (size_t d = 0; d < dim; ++d) mean[d] += points[i * dim + d];
  for (size_t d = 0; d < dim; ++d) mean[d] /= static_cast<double>(n);
  double var_sum = 0;
  for (size_t d = 0; d < dim; ++d) {
    double v = 0;
    for (size_t i = 0; i < n; ++i) {
      const double t = points[i * dim + d] - mean[d];
      x[i * dim + d] = t;
      v += t * t;
    }
    var_sum += v / static_cast<double>(n);
  }
  const double tol_abs = var_sum / static_cast<double>(dim) * tol;
  for (size_t i = 0; i < n; ++i) {
    double s = 0;
    for (size_t d = 0; d < dim; ++d) s += x[i * dim + d] * x[i * dim + d];
    x_sq[i] = s;
  }

  // _kmeans_plusplus: first center uniform (randint), then per center 2 + int(log k) candidates
  // sampled ∝ current squared distance, keeping the one with the lowest potential.
  NumpyLegacyRandom rng(random_state);
  std::vector<double> centers(k * dim);
  std::vector<double> closest(n), cumsum(n);
  const size_t trials = 2 + static_cast<size_t>(std::log(static_cast<double>(k)));
  std::vector<double> cand_d(trials * n), part(n_chunks * trials);
  const size_t first = static_cast<size_t>(rng.randint(n));
  std::copy(x.begin() + static_cast<std::ptrdiff_t>(first * dim), x.begin() + static_cast<std::ptrdiff_t>((first + 1) * dim),
            centers.begin());
  chunks(n, threads, [&](size_t, size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) closest[i] = sq_dist_expanded(&x[first * dim], x_sq[first], &x[i * dim], x_sq[i], dim);
  });
  double pot = 0;
  for (size_t i = 0; i < n; ++i) pot += closest[i];
  std::vector<size_t> cand(trials);
  for (size_t c = 1; c < k; ++c) {
    double acc = 0;
    for (size_t i = 0; i < n; ++i) cumsum[i] = (acc += closest[i]);
    for (size_t t = 0; t < trials; ++t) {
      const double v = rng.random_sample() * pot;
      const size_t at = static_cast<size_t>(std::lower_bound(cumsum.begin(), cumsum.end(), v) - cumsum.begin());
      cand[t] = std::min(at, n - 1);  // searchsorted (side='left'), clipped to n − 1
    }
    chunks(n, threads, [&](size_t ch, size_t b, size_t e) {
      for (size_t t = 0; t < trials; ++t) {
        const double* cx = &x[cand[t] * dim];
        double s = 0;
        for (size_t i = b; i < e; ++i) {
          const double d = std::min(closest[i], sq_dist_expanded(cx, x_sq[cand[t]], &x[i * dim], x_sq[i], dim));
          cand_d[t * n + i] = d;
          s += d;
        }
        part[ch * trials + t] = s;
      }
    });
    size_t best = 0;
    double best_pot = std::numeric_limits<double>::infinity();
    for (size_t t = 0; t < trials; ++t) {
      double s = 0;
      for (size_t ch = 0; ch < n_chunks; ++ch) s += part[ch * trials + t];
      if (s < best_pot) {  // np.argmin: the first minimum
        best_pot = s;
        best = t;
      }
    }
    pot = best_pot;
    std::copy(cand_d.begin() + static_cast<std::ptrdiff_t>(best * n), cand_d.begin() + static_cast<std::ptrdiff_t>((best + 1) * n),
              closest.begin());
    std::copy(x.begin() + static_cast<std::ptrdiff_t>(cand[best] * dim),
              x.begin() + static_cast<std::ptrdiff_t>((cand[best] + 1) * dim), centers.begin() + static_cast<std::ptrdiff_t>(c * dim));
  }

  // _kmeans_single_lloyd.
  SklearnKmeansResult r;
  std::vector<uint32_t> labels(n), labels_old(n, std::numeric_limits<uint32_t>::max());
  std::vector<double> c_sq(k), sums(n_chunks * k * dim), cnts(n_chunks * k), new_centers(k * dim), weight(k);
  std::vector<double> cen_t(dim * k);
  auto label_all = [&](const std::vector<double>& cen) {
    for (size_t c = 0; c < k; ++c) {
      double s = 0;
      for (size_t d = 0; d < dim; ++d) s += cen[c * dim + d] * cen[c * dim + d];
      c_sq[c] = s;
      for (size_t d = 0; d < dim; ++d) cen_t[d * k + c] = cen[c * dim + d];
    }
    chunks(n, threads, [&](size_t, size_t b, size_t e) {
      // _update_chunk_dense: ||c||² − 2 x·c, strictly smaller wins (the first minimum). The dot
      // products run dimension by dimension across all centers (unit stride, vectorized); each
      // center's sum keeps the order x0·c0 + x1·c1 + …, so the labels do not depend on it.
      std::vector<double> dot(k);
      for (size_t i = b; i < e; ++i) {
        const double* xi = &x[i * dim];
        for (size_t c = 0; c < k; ++c) dot[c] = 0.0 + xi[0] * cen_t[c];
        for (size_t d = 1; d < dim; ++d) {
          const double xd = xi[d];
          const double* cd = &cen_t[d * k];
          for (size_t c = 0; c < k; ++c) dot[c] += xd * cd[c];
        }
        double best = std::numeric_limits<double>::infinity();
        uint32_t lab = 0;
        for (size_t c = 0; c < k; ++c) {
          const double v = c_sq[c] - 2.0 * dot[c];
          if (v < best) {
            best = v;
            lab = static_cast<uint32_t>(c);
          }
        }
        labels[i] = lab;
      }
    });
  };
  bool strict = false;
  for (int it = 0; it < max_iter; ++it) {
    label_all(centers);
    std::fill(sums.begin(), sums.end(), 0.0);
    std::fill(cnts.begin(), cnts.end(), 0.0);
    chunks(n, threads, [&](size_t ch, size_t b, size_t e) {
      double* s = &sums[ch * k * dim];
      double* w = &cnts[ch * k];
      for (size_t i = b; i < e; ++i) {
        w[labels[i]] += 1;
        for (size_t d = 0; d < dim; ++d) s[labels[i] * dim + d] += x[i * dim + d];
      }
    });
    std::fill(new_centers.begin(), new_centers.end(), 0.0);
    std::fill(weight.begin(), weight.end(), 0.0);
    for (size_t ch = 0; ch < n_chunks; ++ch) {
      for (size_t j = 0; j < k * dim; ++j) new_centers[j] += sums[ch * k * dim + j];
      for (size_t c = 0; c < k; ++c) weight[c] += cnts[ch * k + c];
    }
    // _relocate_empty_clusters_dense: each empty cluster takes one of the points farthest from
    // their (old) centers, which leaves its own cluster's sum (its label is not changed).
    std::vector<size_t> empty;
    for (size_t c = 0; c < k; ++c)
      if (weight[c] == 0) empty.push_back(c);
    if (!empty.empty()) {
      std::vector<double> far_d(n);
      for (size_t i = 0; i < n; ++i) {
        double s = 0;
        for (size_t d = 0; d < dim; ++d) {
          const double t = x[i * dim + d] - centers[labels[i] * dim + d];
          s += t * t;
        }
        far_d[i] = s;
      }
      std::vector<size_t> order(n);
      std::iota(order.begin(), order.end(), size_t{0});
      std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(empty.size()), order.end(),
                        [&](size_t a, size_t b) { return far_d[a] > far_d[b] || (far_d[a] == far_d[b] && a < b); });
      for (size_t q = 0; q < empty.size(); ++q) {
        const size_t far = order[q], to = empty[q], from = labels[far];
        for (size_t d = 0; d < dim; ++d) {
          new_centers[from * dim + d] -= x[far * dim + d];
          new_centers[to * dim + d] = x[far * dim + d];
        }
        weight[to] = 1;
        weight[from] -= 1;
      }
    }
    double shift = 0;
    for (size_t c = 0; c < k; ++c) {
      for (size_t d = 0; d < dim; ++d) {
        if (weight[c] > 0) new_centers[c * dim + d] /= weight[c];
        const double t = new_centers[c * dim + d] - centers[c * dim + d];
        shift += t * t;
      }
    }
    centers.swap(new_centers);
    r.iterations = it + 1;
    if (labels == labels_old) {
      strict = true;
      break;
    }
    if (shift <= tol_abs) break;
    labels_old = labels;
  }
  if (!strict) label_all(centers);

  r.labels = std::move(labels);
  r.centers.resize(k * dim);
  double inertia = 0;
  for (size_t i = 0; i < n; ++i) {
    for (size_t d = 0; d < dim; ++d) {
      const double t = x[i * dim + d] - centers[r.labels[i] * dim + d];
      inertia += t * t;
    }
  }
  r.inertia = inertia;
  for (size_t c = 0; c < k; ++c)
    for (size_t d = 0; d < dim; ++d) r.centers[c * dim + d] = centers[c * dim + d] + mean[d];
  return r;
}

}  // namespace cmo::kernels
