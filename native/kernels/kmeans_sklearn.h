// The k-means run coremltools 9.0 makes for vector palettization: _get_kmeans_lookup_table_and_weight
// calls scikit-learn's `KMeans(n_clusters, init="k-means++", tol=1e-2, n_init=1, random_state=0)`
// on the group's vectors. Rebuilt here (scikit-learn 1.2, the version of the golden files): numpy's
// legacy RandomState (MT19937), the greedy k-means++ of _kmeans_plusplus, and _kmeans_single_lloyd
// (stop when the labels repeat or the total squared center shift is <= tol · mean feature variance,
// then label once more with the final centers). vector_kmeans keeps this run as a candidate, so its
// result is never worse than coremltools' on the same points. Double precision; BLAS sums in
// another order, so a near-tie may break differently than in scikit-learn.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace cmo::kernels {

// numpy.random.RandomState(seed) for the draws scikit-learn's k-means++ makes.
class NumpyLegacyRandom {
 public:
  explicit NumpyLegacyRandom(uint32_t seed);
  uint32_t next_u32();
  double random_sample();          // RandomState.random_sample() / uniform()
  uint64_t randint(uint64_t high);  // RandomState.randint(high): [0, high), masked rejection

 private:
  void twist();
  uint32_t mt_[624];
  size_t pos_;
};

struct SklearnKmeansResult {
  std::vector<double> centers;     // k × dim (data mean added back, as cluster_centers_)
  std::vector<uint32_t> labels;    // labels_
  double inertia = 0;              // Σ squared distance to the labelled center
  int iterations = 0;
};

// points: n × dim, n > k. threads: 0 = pool size; results do not depend on it.
SklearnKmeansResult sklearn_kmeans(const float* points, size_t n, size_t dim, size_t k, uint32_t random_state = 0,
                                   double tol = 1e-2, int max_iter = 300, unsigned threads = 0);

}  // namespace cmo::kernels
