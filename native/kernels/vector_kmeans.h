// Vector k-means for cluster_dim > 1 (vector palettization): several k-means++ restarts, each run
// by Lloyd to a true fixed point (no assignment changes), then Hartigan single-point transfers and
// Lloyd again; the lowest inertia wins. Deterministic for a given seed, independent of the thread
// count (fixed chunking, ordered reductions, sequential transfers). No exact algorithm exists in
// > 1-D; coremltools uses scikit-learn here (KMeans(init="k-means++", n_init=1, tol=1e-2,
// random_state=0)). That very run (kmeans_sklearn.h: numpy's MT19937 stream, scikit-learn 1.2's
// k-means++ and Lloyd) is one more candidate, taken as it is (and then refined) when it beats the
// restarts, so the result is never worse than coremltools' on the same points (up to BLAS
// summation order) nor than the restarts alone.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace cmo::kernels {

struct VectorKmeansParams {
  size_t k = 16;
  uint64_t seed = 0;
  int max_iter = 300;
  int n_init = 0;        // k-means++ restarts, best inertia kept; 0 = auto (up to 4, fewer on big inputs)
  bool refine = true;    // Hartigan single-point transfers after Lloyd (skipped on very big inputs)
  unsigned threads = 0;  // 0 = pool size; 1 = run on the calling thread only
};

struct VectorKmeansResult {
  std::vector<float> centers;        // k_eff × dim, row-major
  std::vector<uint32_t> assignment;  // per point
  size_t k = 0;                      // k_eff = min(k, distinct points)
  int iterations = 0;
  double inertia = 0;  // Σ squared distances to the assigned center (double)
};

// points: n × dim, row-major, finite. Throws cmo::Error("EINVAL") on bad input.
VectorKmeansResult vector_kmeans(const float* points, size_t n, size_t dim, const VectorKmeansParams& p);

// Nearest center (smallest squared distance, lowest index on ties) for each of `n` points.
// centers_t is the transposed center matrix (dim × k) so the fast path runs across centers.
// `dist` receives the winning squared distance. Fast and scalar reference give identical results.
void nearest_centers(const float* points, size_t n, size_t dim, const float* centers_t, size_t k,
                     uint32_t* out, float* dist);
void nearest_centers_ref(const float* points, size_t n, size_t dim, const float* centers, size_t k,
                         uint32_t* out, float* dist);

}  // namespace cmo::kernels
