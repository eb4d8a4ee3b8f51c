#include "vector_kmeans.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <string>

#include "../util/error.h"
#include "../util/thread_pool.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#endif

namespace cmo::kernels {

namespace {

constexpr size_t kChunk = 4096;  // fixed work unit: results never depend on the thread count

struct SplitMix64 {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
};

inline float sqdist(const float* a, const float* b, size_t dim) {
  float s = 0;
  for (size_t d = 0; d < dim; ++d) {
    float t = a[d] - b[d];
    s += t * t;
  }
  return s;
}

void for_chunks(size_t n, unsigned threads, const std::function<void(size_t, size_t, size_t)>& body) {
  size_t chunks = (n + kChunk - 1) / kChunk;
  auto run = [&](size_t c) { body(c, c * kChunk, std::min(n, (c + 1) * kChunk)); };
  if (threads == 1) {
    for (size_t c = 0; c < chunks; ++c) run(c);
  } else {
    parallel_for(chunks, run, 1, threads);
  }
}

}  // namespace

void nearest_centers_ref(const float* points, size_t n, size_t dim, const float* centers, size_t k, uint32_t* out,
                         float* dist) {
  for (size_t i = 0; i < n; ++i) {
    uint32_t best = 0;
    float bd = std::numeric_limits<float>::infinity();
    for (size_t c = 0; c < k; ++c) {
      float d = sqdist(points + i * dim, centers + c * dim, dim);
      if (d < bd) {
        bd = d;
        best = static_cast<uint32_t>(c);
      }
    }
    out[i] = best;
    if (dist) dist[i] = bd;
  }
}

void nearest_centers(const float* points, size_t n, size_t dim, const float* centers_t, size_t k, uint32_t* out,
                     float* dist) {
  // Distances to all centers at once, dimension by dimension: the inner loop runs across centers
  // with unit stride and no dependency, which compilers vectorize (SSE/AVX/NEON). Per center the
  // additions happen in the same order as the reference, so results are bit-identical.
  std::vector<float> acc(k);
  for (size_t i = 0; i < n; ++i) {
    const float* x = points + i * dim;
    float* a = acc.data();
    {
      const float x0 = x[0];
      const float* c0 = centers_t;
      for (size_t c = 0; c < k; ++c) {
        float t = x0 - c0[c];
        a[c] = 0.0f + t * t;
      }
    }
    for (size_t d = 1; d < dim; ++d) {
      const float xd = x[d];
      const float* cd = centers_t + d * k;
      for (size_t c = 0; c < k; ++c) {
        float t = xd - cd[c];
        a[c] += t * t;
      }
    }
    uint32_t best = 0;
    float bd = std::numeric_limits<float>::infinity();
    for (size_t c = 0; c < k; ++c) {
      if (a[c] < bd) {
        bd = a[c];
        best = static_cast<uint32_t>(c);
      }
    }
    out[i] = best;
    if (dist) dist[i] = bd;
  }
}

VectorKmeansResult vector_kmeans(const float* points, size_t n, size_t dim, const VectorKmeansParams& p) {
  if (n == 0 || dim == 0) throw Error("EINVAL", "vector_kmeans: no points");
  if (p.k == 0) throw Error("EINVAL", "vector_kmeans: k must be at least 1");
  for (size_t i = 0; i < n * dim; ++i)
    if (!std::isfinite(points[i]))
      throw Error("EINVAL", "vector_kmeans: point " + std::to_string(i / dim) + " has a NaN or infinite component");
  VectorKmeansResult r;

  // Distinct points (±0 equal). When there are no more than k, they are the exact answer.
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  auto less = [&](uint32_t a, uint32_t b) {
    for (size_t d = 0; d < dim; ++d) {
      float x = points[a * dim + d], y = points[b * dim + d];
      if (x != y) return x < y;
    }
    return false;
  };
  std::stable_sort(order.begin(), order.end(), less);
  size_t distinct = n == 0 ? 0 : 1;
  for (size_t q = 1; q < n; ++q)
    if (less(order[q - 1], order[q])) ++distinct;
  if (distinct <= p.k) {
    r.k = distinct;
    r.assignment.resize(n);
    size_t id = 0;
    for (size_t q = 0; q < n; ++q) {
      if (q > 0 && less(order[q - 1], order[q])) ++id;
      if (q == 0 || id == r.centers.size() / dim)
        for (size_t d = 0; d < dim; ++d) r.centers.push_back(points[order[q] * dim + d] == 0.0f ? 0.0f : points[order[q] * dim + d]);
      r.assignment[order[q]] = static_cast<uint32_t>(id);
    }
    return r;
  }

  const size_t k = p.k;
  r.k = k;
  SplitMix64 rng{p.seed ^ 0x5DEECE66Dull};
  std::vector<float> centers(k * dim), centers_t(k * dim);
  std::vector<float> closest(n);  // squared distance to the nearest chosen center

  // k-means++ with greedy trials (2 + ln k candidates per step, keep the best), as scikit-learn does.
  size_t first = static_cast<size_t>(rng.uniform() * static_cast<double>(n));
  std::copy(points + first * dim, points + (first + 1) * dim, centers.begin());
  double pot = 0;
  for (size_t i = 0; i < n; ++i) pot += (closest[i] = sqdist(points + i * dim, centers.data(), dim));
  const int trials = 2 + static_cast<int>(std::log(static_cast<double>(k)));
  std::vector<float> cand_d(n), best_d(n);
  for (size_t c = 1; c < k; ++c) {
    size_t best_idx = 0;
    double best_pot = std::numeric_limits<double>::infinity();
    for (int t = 0; t < trials; ++t) {
      double target = rng.uniform() * pot;
      size_t idx = 0;
      double acc = 0;
      for (; idx + 1 < n; ++idx) {  // cumulative search (n·trials per center; fine for k <= 256)
        acc += closest[idx];
        if (acc > target) break;
      }
      double cp = 0;
      for (size_t i = 0; i < n; ++i) {
        float d = std::min(closest[i], sqdist(points + i * dim, points + idx * dim, dim));
        cand_d[i] = d;
        cp += d;
      }
      if (cp < best_pot) {
        best_pot = cp;
        best_idx = idx;
        best_d.swap(cand_d);
      }
    }
    std::copy(points + best_idx * dim, points + (best_idx + 1) * dim, centers.begin() + c * dim);
    closest.swap(best_d);
    best_d.resize(n);
    pot = best_pot;
  }

  // Lloyd iterations.
  double mean_var = 0;
  for (size_t d = 0; d < dim; ++d) {
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; ++i) {
      double v = points[i * dim + d];
      s += v;
      s2 += v * v;
    }
    double mu = s / static_cast<double>(n);
    mean_var += s2 / static_cast<double>(n) - mu * mu;
  }
  mean_var /= static_cast<double>(dim);
  const double tol = p.tol * mean_var;
  const size_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<uint32_t> assign(n, 0);
  std::vector<float> dist(n);
  std::vector<double> sums(chunks * k * dim);
  std::vector<double> counts(chunks * k);
  auto transpose = [&] {
    for (size_t c = 0; c < k; ++c)
      for (size_t d = 0; d < dim; ++d) centers_t[d * k + c] = centers[c * dim + d];
  };
  auto assign_all = [&] {
    transpose();
    for_chunks(n, p.threads, [&](size_t, size_t b, size_t e) {
      nearest_centers(points + b * dim, e - b, dim, centers_t.data(), k, assign.data() + b, dist.data() + b);
    });
  };
  int it = 0;
  for (; it < p.max_iter; ++it) {
    assign_all();
    std::fill(sums.begin(), sums.end(), 0.0);
    std::fill(counts.begin(), counts.end(), 0.0);
    for_chunks(n, p.threads, [&](size_t ch, size_t b, size_t e) {
      double* s = sums.data() + ch * k * dim;
      double* c = counts.data() + ch * k;
      for (size_t i = b; i < e; ++i) {
        uint32_t a = assign[i];
        c[a] += 1;
        for (size_t d = 0; d < dim; ++d) s[a * dim + d] += points[i * dim + d];
      }
    });
    std::vector<double> total(k * dim, 0.0), cnt(k, 0.0);
    for (size_t ch = 0; ch < chunks; ++ch) {  // ordered reduction: same result for any thread count
      for (size_t j = 0; j < k * dim; ++j) total[j] += sums[ch * k * dim + j];
      for (size_t j = 0; j < k; ++j) cnt[j] += counts[ch * k + j];
    }
    double shift = 0;
    std::vector<char> taken(n, 0);
    for (size_t c = 0; c < k; ++c) {
      float nc[64];
      std::vector<float> big;
      float* newc = dim <= 64 ? nc : (big.resize(dim), big.data());
      if (cnt[c] == 0) {
        // Empty cluster: move it onto the point farthest from its center (lowest index on ties).
        size_t far = 0;
        float fd = -1;
        for (size_t i = 0; i < n; ++i)
          if (!taken[i] && dist[i] > fd) {
            fd = dist[i];
            far = i;
          }
        taken[far] = 1;
        dist[far] = 0;
        for (size_t d = 0; d < dim; ++d) newc[d] = points[far * dim + d];
      } else {
        for (size_t d = 0; d < dim; ++d) newc[d] = static_cast<float>(total[c * dim + d] / cnt[c]);
      }
      for (size_t d = 0; d < dim; ++d) {
        double t = static_cast<double>(newc[d]) - centers[c * dim + d];
        shift += t * t;
        centers[c * dim + d] = newc[d];
      }
    }
    if (shift <= tol) {
      ++it;
      break;
    }
  }
  assign_all();
  r.iterations = it;
  r.centers = centers;
  r.assignment = assign;
  double inertia = 0;
  for (size_t i = 0; i < n; ++i) inertia += dist[i];
  r.inertia = inertia;
  return r;
}

}  // namespace cmo::kernels
