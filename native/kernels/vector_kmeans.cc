#include "vector_kmeans.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <string>

#include "../util/error.h"
#include "kmeans_sklearn.h"
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

namespace {

// One clustering state: centers (k × dim, float as stored in the LUT) and the assignment.
struct Clustering {
  std::vector<float> centers;
  std::vector<uint32_t> assign;
  std::vector<float> dist;  // squared distance of each point to its center
  double inertia = 0;       // Σ dist, summed in double in point order
  int iterations = 0;
};

class Solver {
 public:
  Solver(const float* points, size_t n, size_t dim, size_t k, unsigned threads)
      : x_(points), n_(n), dim_(dim), k_(k), threads_(threads), chunks_((n + kChunk - 1) / kChunk),
        centers_t_(k * dim), sums_(chunks_ * k * dim), counts_(chunks_ * k) {}

  // k-means++ with greedy trials (2 + ln k candidates per step, keep the best), as scikit-learn does.
  void seed_plus_plus(SplitMix64& rng, Clustering& c) {
    const size_t n = n_, dim = dim_, k = k_;
    c.centers.assign(k * dim, 0.0f);
    std::vector<float> closest(n), cand_d(n), best_d(n);
    size_t first = std::min(n - 1, static_cast<size_t>(rng.uniform() * static_cast<double>(n)));
    std::copy(x_ + first * dim, x_ + (first + 1) * dim, c.centers.begin());
    double pot = 0;
    for (size_t i = 0; i < n; ++i) pot += (closest[i] = sqdist(x_ + i * dim, c.centers.data(), dim));
    const int trials = 2 + static_cast<int>(std::log(static_cast<double>(k)));
    for (size_t cc = 1; cc < k; ++cc) {
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
          float d = std::min(closest[i], sqdist(x_ + i * dim, x_ + idx * dim, dim));
          cand_d[i] = d;
          cp += d;
        }
        if (cp < best_pot) {
          best_pot = cp;
          best_idx = idx;
          best_d.swap(cand_d);
        }
      }
      std::copy(x_ + best_idx * dim, x_ + (best_idx + 1) * dim, c.centers.begin() + cc * dim);
      closest.swap(best_d);
      pot = best_pot;
    }
  }

  void assign_all(Clustering& c) {
    const size_t k = k_, dim = dim_;
    for (size_t cc = 0; cc < k; ++cc)
      for (size_t d = 0; d < dim; ++d) centers_t_[d * k + cc] = c.centers[cc * dim + d];
    c.assign.resize(n_);
    c.dist.resize(n_);
    for_chunks(n_, threads_, [&](size_t, size_t b, size_t e) {
      nearest_centers(x_ + b * dim, e - b, dim, centers_t_.data(), k, c.assign.data() + b, c.dist.data() + b);
    });
    double s = 0;
    for (size_t i = 0; i < n_; ++i) s += c.dist[i];
    c.inertia = s;
  }

  // dist/inertia of c's own assignment (no relabelling): the error of writing c as it is.
  void evaluate(Clustering& c) {
    c.dist.resize(n_);
    double s = 0;
    for (size_t i = 0; i < n_; ++i) s += (c.dist[i] = sqdist(x_ + i * dim_, c.centers.data() + c.assign[i] * dim_, dim_));
    c.inertia = s;
  }

  // Lloyd iterations until the assignment no longer changes (a true fixed point), the inertia
  // improves by less than rel_tol (relative) in an iteration, or max_iter. Returns with
  // c.assign/dist/inertia matching c.centers.
  void lloyd(Clustering& c, int max_iter, double rel_tol) {
    const size_t k = k_, dim = dim_;
    assign_all(c);
    std::vector<uint32_t> prev;
    std::vector<double> total(k * dim), cnt(k);
    for (int it = 0; it < max_iter; ++it) {
      std::fill(sums_.begin(), sums_.end(), 0.0);
      std::fill(counts_.begin(), counts_.end(), 0.0);
      for_chunks(n_, threads_, [&](size_t ch, size_t b, size_t e) {
        double* s = sums_.data() + ch * k * dim;
        double* cn = counts_.data() + ch * k;
        for (size_t i = b; i < e; ++i) {
          uint32_t a = c.assign[i];
          cn[a] += 1;
          for (size_t d = 0; d < dim; ++d) s[a * dim + d] += x_[i * dim + d];
        }
      });
      std::fill(total.begin(), total.end(), 0.0);
      std::fill(cnt.begin(), cnt.end(), 0.0);
      for (size_t ch = 0; ch < chunks_; ++ch) {  // ordered reduction: same result for any thread count
        for (size_t j = 0; j < k * dim; ++j) total[j] += sums_[ch * k * dim + j];
        for (size_t j = 0; j < k; ++j) cnt[j] += counts_[ch * k + j];
      }
      std::vector<char> taken;
      for (size_t cc = 0; cc < k; ++cc) {
        if (cnt[cc] == 0) {
          // Empty cluster: move it onto the point farthest from its center (lowest index on ties).
          if (taken.empty()) taken.assign(n_, 0);
          size_t far = 0;
          float fd = -1;
          for (size_t i = 0; i < n_; ++i)
            if (!taken[i] && c.dist[i] > fd) {
              fd = c.dist[i];
              far = i;
            }
          taken[far] = 1;
          c.dist[far] = 0;
          for (size_t d = 0; d < dim; ++d) c.centers[cc * dim + d] = x_[far * dim + d];
        } else {
          for (size_t d = 0; d < dim; ++d) c.centers[cc * dim + d] = static_cast<float>(total[cc * dim + d] / cnt[cc]);
        }
      }
      prev.swap(c.assign);
      const double before = c.inertia;
      assign_all(c);
      c.iterations += 1;
      if (c.assign == prev || before - c.inertia <= rel_tol * c.inertia) break;
    }
  }

  // Hartigan single-point transfers: moving x from cluster a to b changes the cost by
  // n_b/(n_b+1)·|x−c_b|² − n_a/(n_a−1)·|x−c_a|²; take every improving move (largest gain per point),
  // updating the two means at once. Escapes many of Lloyd's local minima; sequential, so it is
  // deterministic. Centers are exact means (double) while it runs, stored as float at the end.
  void hartigan(Clustering& c, int max_passes) {
    const size_t k = k_, dim = dim_, n = n_;
    std::vector<double> sum(k * dim, 0.0), mean(k * dim), cnt(k, 0.0);
    for (size_t i = 0; i < n; ++i) {
      uint32_t a = c.assign[i];
      cnt[a] += 1;
      for (size_t d = 0; d < dim; ++d) sum[a * dim + d] += x_[i * dim + d];
    }
    for (size_t cc = 0; cc < k; ++cc)
      for (size_t d = 0; d < dim; ++d) mean[cc * dim + d] = cnt[cc] > 0 ? sum[cc * dim + d] / cnt[cc] : 0.0;
    // Cost factors of adding to / removing from each cluster, refreshed only for the two clusters
    // a move touches (no division per point and center).
    std::vector<double> add_f(k), rem_f(k);
    auto refresh = [&](size_t cc) {
      add_f[cc] = cnt[cc] / (cnt[cc] + 1);
      rem_f[cc] = cnt[cc] > 1 ? cnt[cc] / (cnt[cc] - 1) : 0.0;
    };
    for (size_t cc = 0; cc < k; ++cc) refresh(cc);
    std::vector<double> dist(k);
    for (int pass = 0; pass < max_passes; ++pass) {
      size_t moves = 0;
      for (size_t i = 0; i < n; ++i) {
        const float* xi = x_ + i * dim;
        const uint32_t a = c.assign[i];
        if (cnt[a] <= 1) continue;
        for (size_t cc = 0; cc < k; ++cc) {
          double s = 0;
          for (size_t d = 0; d < dim; ++d) {
            double t = xi[d] - mean[cc * dim + d];
            s += t * t;
          }
          dist[cc] = s;
        }
        uint32_t best = a;
        double best_add = dist[a] * rem_f[a] * (1 - 1e-12);  // strict improvement only (no cycling on rounding)
        for (size_t cc = 0; cc < k; ++cc) {
          double add = dist[cc] * add_f[cc];
          if (add < best_add && cc != a) {
            best_add = add;
            best = static_cast<uint32_t>(cc);
          }
        }
        if (best == a) continue;
        ++moves;
        for (size_t d = 0; d < dim; ++d) {
          sum[a * dim + d] -= xi[d];
          sum[best * dim + d] += xi[d];
        }
        cnt[a] -= 1;
        cnt[best] += 1;
        refresh(a);
        refresh(best);
        for (size_t d = 0; d < dim; ++d) {
          mean[a * dim + d] = sum[a * dim + d] / cnt[a];
          mean[best * dim + d] = sum[best * dim + d] / cnt[best];
        }
        c.assign[i] = best;
      }
      if (moves == 0) break;
    }
    for (size_t j = 0; j < k * dim; ++j) c.centers[j] = static_cast<float>(mean[j]);
  }

 private:
  const float* x_;
  size_t n_, dim_, k_;
  unsigned threads_;
  size_t chunks_;
  std::vector<float> centers_t_;
  std::vector<double> sums_, counts_;
};

// Restarts by problem size (point·center·dim distance terms per Lloyd iteration), so that big
// tensors stay affordable: 4 up to 2^22 terms, halving every 2^2 more, at least 1. Hartigan's
// sequential transfers run up to 2^24 terms.
int auto_restarts(double terms) {
  int r = 4;
  for (double t = 4194304.0; r > 1 && terms > t; t *= 4) r /= 2;
  return r;
}
constexpr double kHartiganMaxTerms = 16777216.0;

}  // namespace

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
  const double terms = static_cast<double>(n) * static_cast<double>(k) * static_cast<double>(dim);
  int n_init = p.n_init;
  if (n_init <= 0) n_init = auto_restarts(terms);
  const bool refine = p.refine && terms <= kHartiganMaxTerms;

  Solver solver(points, n, dim, k, p.threads);
  Clustering best, cur;
  best.inertia = std::numeric_limits<double>::infinity();
  auto refine_run = [&](Clustering& c) {
    if (refine) {
      // Lloyd until it slows down, Hartigan's transfers until none improves (a pass costs about
      // one Lloyd iteration but gains far more near Lloyd's local minimum), Lloyd to settle.
      solver.lloyd(c, p.max_iter, 1e-3);
      solver.hartigan(c, 30);
      solver.lloyd(c, 10, 0.0);
    } else {
      solver.lloyd(c, p.max_iter, 1e-4);
    }
  };
  for (int run = 0; run < n_init; ++run) {
    // Restart r draws from its own stream: results depend on (seed, r) only.
    SplitMix64 rng{(p.seed ^ 0x5DEECE66Dull) + static_cast<uint64_t>(run) * 0xD1B54A32D192ED03ull};
    solver.seed_plus_plus(rng, cur);
    cur.iterations = 0;
    refine_run(cur);
    if (cur.inertia < best.inertia) std::swap(best, cur);  // first run wins ties
  }
  {
    // coremltools' own run: scikit-learn's KMeans(k-means++, n_init=1, tol=1e-2, random_state=0)
    // on these points, its labels and centers as coremltools writes them. Only when it beats the
    // restarts is it taken, and then refined too: never worse than coremltools, and no slower
    // than one early-stopped run on top of the restarts.
    SklearnKmeansResult sk = sklearn_kmeans(points, n, dim, k, 0, 1e-2, 300, p.threads);
    cur.centers.assign(sk.centers.begin(), sk.centers.end());
    cur.assign = std::move(sk.labels);
    cur.iterations = sk.iterations;
    solver.evaluate(cur);
    if (cur.inertia < best.inertia) {
      std::swap(best, cur);
      cur = best;
      refine_run(cur);
      if (cur.inertia < best.inertia) std::swap(best, cur);
    }
  }
  r.k = k;
  r.iterations = best.iterations;
  r.centers = std::move(best.centers);
  r.assignment = std::move(best.assign);
  r.inertia = best.inertia;
  return r;
}

}  // namespace cmo::kernels
