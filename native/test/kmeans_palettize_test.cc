// Palettization driver: known answers (coreml-format.md §8.6), grouped layouts (§4.3), modes,
// per-channel scale, vector k-means, and decompress(palettize(w)) round trips.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "check.h"
#include "kernels/kmeans1d.h"
#include "kernels/lut_modes.h"
#include "kernels/palettize.h"
#include "kernels/vector_kmeans.h"
#include "kernels/kmeans_sklearn.h"
#include "util/error.h"
#include "util/fp16.h"

using namespace cmo::kernels;

namespace {

PalettizeResult run_f32(const std::vector<float>& w, std::vector<int64_t> shape, PalettizeParams p) {
  WeightView v;
  v.type = WeightType::kFloat32;
  v.data = w.data();
  v.shape = std::move(shape);
  return palettize_tensor(v, p);
}

PalettizeResult run_f16(const std::vector<uint16_t>& w, std::vector<int64_t> shape, PalettizeParams p) {
  WeightView v;
  v.type = WeightType::kFloat16;
  v.data = w.data();
  v.shape = std::move(shape);
  return palettize_tensor(v, p);
}

std::vector<uint16_t> random_f16(size_t n, uint64_t seed, float sigma = 0.02f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0, sigma);
  std::vector<uint16_t> w(n);
  for (auto& x : w) x = cmo::float_to_half(nd(rng));
  return w;
}

LutDecodeInput decode_input(const PalettizeResult& r) {
  LutDecodeInput in;
  in.indices = r.indices.data();
  in.indices_shape = r.indices_shape;
  in.type = r.lut_type;
  in.lut = r.lut_type == WeightType::kFloat16 ? static_cast<const void*>(r.lut_f16.data())
                                              : static_cast<const void*>(r.lut_f32.data());
  in.lut_shape = r.lut_shape;
  in.vector_axis = r.vector_axis;
  if (!r.scale_shape.empty()) {
    in.scale = r.lut_type == WeightType::kFloat16 ? static_cast<const void*>(r.scale_f16.data())
                                                  : static_cast<const void*>(r.scale_f32.data());
    in.scale_shape = r.scale_shape;
  }
  return in;
}

}  // namespace

TEST(uniform_known_answer) {  // §8.6
  std::vector<float> w = {0.11f, 0.19f, 0.3f, 0.08f, 0.0f, 0.02f};
  PalettizeParams p;
  p.mode = PalettizeMode::kUniform;
  p.nbits = 2;
  PalettizeResult r = run_f32(w, {1, 6}, p);
  std::vector<uint8_t> want_idx = {1, 2, 3, 1, 0, 0};
  CHECK(r.indices == want_idx);
  CHECK_EQ(r.lut_f32.size(), size_t{4});
  CHECK_EQ(r.lut_f32[0], 0.0f);
  CHECK_NEAR(r.lut_f32[1], 0.1, 1e-7);
  CHECK_NEAR(r.lut_f32[2], 0.2, 1e-7);
  CHECK_EQ(r.lut_f32[3], 0.3f);  // 3 · (0.3/3) + 0 in float64, cast once
  std::vector<int64_t> shape = {1, 1, 4, 1};
  CHECK(r.lut_shape == shape);
}

TEST(unique_known_answers_grouped_both_axes) {  // §8.6 (coremltools test)
  std::vector<float> w(16);
  for (int i = 0; i < 16; ++i) w[i] = static_cast<float>(i);
  PalettizeParams p;
  p.mode = PalettizeMode::kUnique;
  p.group_size = 2;
  p.channel_axis = 0;
  PalettizeResult r = run_f32(w, {4, 4}, p);
  CHECK_EQ(r.nbits, 3);
  std::vector<int64_t> s0 = {2, 1, 8, 1};
  CHECK(r.lut_shape == s0);
  std::vector<float> lut0 = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  CHECK(r.lut_f32 == lut0);
  std::vector<uint8_t> idx0 = {0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7};
  CHECK(r.indices == idx0);

  p.channel_axis = 1;
  PalettizeResult r1 = run_f32(w, {4, 4}, p);
  std::vector<int64_t> s1 = {1, 2, 8, 1};
  CHECK(r1.lut_shape == s1);
  std::vector<float> lut1 = {0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15};
  CHECK(r1.lut_f32 == lut1);
  std::vector<uint8_t> idx1 = {0, 1, 0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7};
  CHECK(r1.indices == idx1);
}

TEST(unique_skips_more_than_256_and_picks_smallest_nbits) {
  std::vector<float> w(300);
  for (int i = 0; i < 300; ++i) w[i] = static_cast<float>(i);
  PalettizeParams p;
  p.mode = PalettizeMode::kUnique;
  PalettizeResult r = run_f32(w, {300, 1}, p);
  CHECK(r.skipped);
  CHECK(r.skip_reason.find("256") != std::string::npos);
  CHECK_EQ(unique_nbits_for(5), 3);
  CHECK_EQ(unique_nbits_for(17), 6);
  CHECK_EQ(unique_nbits_for(65), 8);
  CHECK_EQ(unique_nbits_for(2), 1);
}

TEST(decode_known_answer_grouped_uint2) {  // §8.6 op docstring
  std::vector<uint8_t> idx = {2, 3, 3, 0, 1, 0, 3, 0, 2, 1, 0, 3};
  std::vector<uint16_t> lut;
  for (float v : {1, 5, 9, 13, 2, 10, 18, 26}) lut.push_back(cmo::float_to_half(v));
  LutDecodeInput in;
  in.indices = idx.data();
  in.indices_shape = {6, 2};
  in.type = WeightType::kFloat16;
  in.lut = lut.data();
  in.lut_shape = {2, 1, 4, 1};
  std::vector<uint16_t> out(12);
  decompress_lut(in, out.data());
  std::vector<float> want = {9, 13, 13, 1, 5, 1, 26, 2, 18, 10, 2, 26};
  for (size_t i = 0; i < 12; ++i) CHECK_EQ(cmo::half_to_float(out[i]), want[i]);
}

TEST(grouped_layouts_match_coremltools_examples) {  // §4.3 and the golden gs16 layout
  struct Case {
    std::vector<int64_t> shape;
    int axis;
    int64_t gs;
    int nbits;
    std::vector<int64_t> lut_shape;
  };
  std::vector<Case> cases = {
      {{90, 30, 2, 2}, 0, 2, 3, {45, 1, 1, 1, 8, 1}},
      {{70, 81}, 0, 2, 3, {35, 1, 8, 1}},
      {{30, 4, 21, 10}, 1, 2, 3, {1, 2, 1, 1, 8, 1}},
      {{2, 1, 70, 35}, 3, 1, 4, {1, 1, 1, 35, 16, 1}},
      {{90, 30, 2, 2}, 0, 0, 3, {1, 1, 1, 1, 8, 1}},
      {{256, 512}, 0, 16, 4, {16, 1, 16, 1}},
      {{256, 384}, -1, 16, 4, {1, 24, 16, 1}},
  };
  for (const Case& c : cases) {
    size_t n = 1;
    for (int64_t d : c.shape) n *= static_cast<size_t>(d);
    std::vector<uint16_t> w = random_f16(n, n);
    PalettizeParams p;
    p.nbits = c.nbits;
    p.group_size = c.gs;
    p.channel_axis = c.axis;
    PalettizeResult r = run_f16(w, c.shape, p);
    CHECK(!r.skipped);
    CHECK(r.lut_shape == c.lut_shape);
    CHECK(r.indices_shape == c.shape);
    // Round trip: every element decodes to the LUT entry of its group, which the decoder and an
    // independent group computation below must agree on.
    std::vector<uint16_t> dec(n);
    decompress_lut(decode_input(r), dec.data());
    double sse = 0, sig = 0;
    for (size_t i = 0; i < n; ++i) {
      double a = cmo::half_to_float(w[i]), b = cmo::half_to_float(dec[i]);
      sse += (a - b) * (a - b);
      sig += a * a;
    }
    CHECK_NEAR(sse, r.sse, 1e-12);
    CHECK(sse < 0.05 * sig);  // 3-4 bit k-means on Gaussian data: SQNR well above 13 dB
  }
}

TEST(grouped_kmeans_equals_independent_per_group_kmeans) {
  // [8, 6] weight, axis 1, groups of 3 columns: each group's LUT must be the exact 1-D k-means of
  // its column slab, sorted, padded with zeros; indices its segment.
  const int64_t R = 8, C = 6;
  std::vector<uint16_t> w = random_f16(R * C, 3, 1.0f);
  PalettizeParams p;
  p.nbits = 2;
  p.group_size = 3;
  p.channel_axis = 1;
  PalettizeResult r = run_f16(w, {R, C}, p);
  std::vector<int64_t> ls = {1, 2, 4, 1};
  CHECK(r.lut_shape == ls);
  for (int g = 0; g < 2; ++g) {
    std::vector<double> vals;
    std::vector<size_t> pos;
    for (int c = g * 3; c < g * 3 + 3; ++c)
      for (int64_t row = 0; row < R; ++row) {
        vals.push_back(cmo::half_to_float(w[row * C + c]));
        pos.push_back(static_cast<size_t>(row * C + c));
      }
    Kmeans1dResult k = kmeans1d(vals.data(), nullptr, vals.size(), 4, /*reference=*/true);
    for (size_t e = 0; e < 4; ++e)
      CHECK_EQ(r.lut_f16[g * 4 + e], e < k.centroids.size() ? double_to_half(k.centroids[e]) : uint16_t{0});
    for (size_t i = 0; i < vals.size(); ++i) CHECK_EQ(static_cast<uint32_t>(r.indices[pos[i]]), k.assignment[i]);
  }
}

TEST(fewer_distinct_values_than_entries_are_exact_and_zero_padded) {
  std::vector<float> base = {-0.5f, 0.25f, 0.0f, 1.5f};
  std::vector<uint16_t> w(4096);
  for (size_t i = 0; i < w.size(); ++i) w[i] = cmo::float_to_half(base[(i * 7) % 4]);
  w[5] = 0x8000;  // −0 joins +0
  PalettizeParams p;
  p.nbits = 4;
  PalettizeResult r = run_f16(w, {64, 64}, p);
  std::vector<float> want = {-0.5f, 0.0f, 0.25f, 1.5f};
  for (size_t e = 0; e < 16; ++e) CHECK_EQ(cmo::half_to_float(r.lut_f16[e]), e < 4 ? want[e] : 0.0f);
  CHECK_EQ(r.sse, 0.0);
}

TEST(fp32_weights_and_all_equal) {
  std::vector<float> w(1000, 0.125f);
  PalettizeParams p;
  p.nbits = 1;
  PalettizeResult r = run_f32(w, {10, 100}, p);
  CHECK_EQ(r.lut_f32[0], 0.125f);
  CHECK_EQ(r.lut_f32[1], 0.0f);
  CHECK_EQ(r.sse, 0.0);
  std::mt19937_64 rng(5);
  std::normal_distribution<float> nd(0, 1);
  std::vector<float> g(4000);
  for (float& x : g) x = nd(rng);
  p.nbits = 3;
  PalettizeResult r2 = run_f32(g, {40, 100}, p);
  std::vector<double> vals(g.begin(), g.end());
  Kmeans1dResult k = kmeans1d(vals.data(), nullptr, vals.size(), 8);
  for (size_t e = 0; e < 8; ++e) CHECK_EQ(r2.lut_f32[e], static_cast<float>(k.centroids[e]));
  CHECK_NEAR(r2.sse, k.cost, 1e-3 * k.cost);
}

TEST(nan_inf_and_bad_params_raise) {
  std::vector<uint16_t> w = random_f16(64, 1);
  w[10] = 0x7E00;
  PalettizeParams p;
  bool named = false;
  try {
    run_f16(w, {8, 8}, p);
  } catch (const cmo::Error& e) {
    named = std::string(e.what()).find("NaN") != std::string::npos;
  }
  CHECK(named);
  w[10] = 0x7C00;
  CHECK_THROWS(run_f16(w, {8, 8}, p));
  w[10] = 0;
  p.nbits = 5;
  CHECK_THROWS(run_f16(w, {8, 8}, p));
  p.nbits = 4;
  p.channel_axis = 2;
  CHECK_THROWS(run_f16(w, {8, 8}, p));
  p.channel_axis = 0;
  p.group_size = 3;  // 8 % 3 != 0 -> coremltools skips the weight
  PalettizeResult r = run_f16(w, {8, 8}, p);
  CHECK(r.skipped);
  p.group_size = 4;
  p.cluster_dim = 3;  // 4 % 3 != 0
  CHECK(run_f16(w, {8, 8}, p).skipped);
}

TEST(per_channel_scale_is_max_abs_over_output_axis) {
  const int64_t O = 32, I = 16;
  std::vector<uint16_t> w = random_f16(O * I, 9, 0.1f);
  for (int64_t o = 0; o < O; ++o) w[o * I + 3] = 0;  // an all-zero input column -> scale 1
  PalettizeParams p;
  p.nbits = 4;
  p.per_channel_scale = true;
  PalettizeResult r = run_f16(w, {O, I}, p);
  std::vector<int64_t> ss = {1, I};
  CHECK(r.scale_shape == ss);
  for (int64_t i = 0; i < I; ++i) {
    float m = 0;
    for (int64_t o = 0; o < O; ++o) m = std::max(m, std::fabs(cmo::half_to_float(w[o * I + i])));
    CHECK_EQ(cmo::half_to_float(r.scale_f16[i]), i == 3 ? 1.0f : m);
  }
  // LUT was built on w / s: every entry lies in [−1, 1].
  for (uint16_t h : r.lut_f16) CHECK(std::fabs(cmo::half_to_float(h)) <= 1.0f);
  std::vector<uint16_t> dec(O * I);
  decompress_lut(decode_input(r), dec.data());
  double sse = 0;
  for (size_t i = 0; i < dec.size(); ++i) {
    double d = cmo::half_to_float(w[i]) - cmo::half_to_float(dec[i]);
    sse += d * d;
  }
  CHECK_NEAR(sse, r.sse, 1e-12);
  CHECK(r.sse < 0.05 * r.signal);
}

TEST(nearest_centers_fast_equals_reference) {
  std::mt19937_64 rng(11);
  std::normal_distribution<float> nd(0, 1);
  for (size_t dim : {1, 2, 3, 4, 8}) {
    for (size_t k : {1, 5, 16, 64}) {
      size_t n = 777;
      std::vector<float> pts(n * dim), ctr(k * dim), ct(k * dim);
      for (float& x : pts) x = nd(rng);
      for (float& x : ctr) x = nd(rng);
      ctr[0] = ctr[dim % (k * dim)];  // a duplicate center: ties go to the lowest index
      for (size_t c = 0; c < k; ++c)
        for (size_t d = 0; d < dim; ++d) ct[d * k + c] = ctr[c * dim + d];
      std::vector<uint32_t> a(n), b(n);
      std::vector<float> da(n), db(n);
      nearest_centers(pts.data(), n, dim, ct.data(), k, a.data(), da.data());
      nearest_centers_ref(pts.data(), n, dim, ctr.data(), k, b.data(), db.data());
      CHECK(a == b);
      CHECK(da == db);
    }
  }
}

TEST(cancellation_is_polled_inside_a_single_group_dp) {
  // One group (per tensor), 8-bit: the group-start poll says "go on", a later poll from inside the
  // DP says "stop" -> cmo::Cancelled before the DP finishes.
  std::vector<uint16_t> w = random_f16(64 * 1024, 11, 0.05f);
  WeightView v;
  v.data = w.data();
  v.shape = {64, 1024};
  PalettizeParams p;
  p.nbits = 8;
  p.threads = 1;
  int polls = 0;
  PalettizeHooks hooks;
  hooks.cancelled = [&] { return ++polls > 1; };
  bool cancelled = false;
  try {
    palettize_tensor(v, p, hooks);
  } catch (const cmo::Cancelled&) {
    cancelled = true;
  }
  CHECK(cancelled);
  CHECK_EQ(polls, 2);
  // Never cancelled: the same weight completes, polled once per group plus once per λ round
  // (or DP layer, in the layered fallback).
  polls = 0;
  hooks.cancelled = [&] { return ++polls < 0; };
  PalettizeResult r = palettize_tensor(v, p, hooks);
  CHECK(!r.skipped);
  CHECK(polls >= 2);
}

TEST(vector_kmeans_deterministic_per_seed_and_thread_count) {
  std::mt19937_64 rng(2);
  std::normal_distribution<float> nd(0, 1);
  const size_t n = 20000, dim = 2;
  std::vector<float> pts(n * dim);
  for (float& x : pts) x = nd(rng);
  VectorKmeansParams p;
  p.k = 16;
  p.seed = 42;
  p.threads = 1;
  VectorKmeansResult a = vector_kmeans(pts.data(), n, dim, p);
  p.threads = 0;
  VectorKmeansResult b = vector_kmeans(pts.data(), n, dim, p);
  CHECK(a.centers == b.centers);
  CHECK(a.assignment == b.assignment);
  p.seed = 43;
  VectorKmeansResult c = vector_kmeans(pts.data(), n, dim, p);
  CHECK(c.centers != a.centers);
  // Lloyd's fixed point: every point sits at its nearest center, every center is its points' mean.
  std::vector<float> ct(16 * dim);
  for (size_t cc = 0; cc < 16; ++cc)
    for (size_t d = 0; d < dim; ++d) ct[d * 16 + cc] = a.centers[cc * dim + d];
  std::vector<uint32_t> near(n);
  nearest_centers_ref(pts.data(), n, dim, a.centers.data(), 16, near.data(), nullptr);
  CHECK(near == a.assignment);
  // Quality: 16 centers on a 2-D Gaussian explain most of the variance (>85%).
  double var = 0;
  for (float x : pts) var += static_cast<double>(x) * x;
  CHECK(a.inertia < 0.15 * var);
}

TEST(numpy_legacy_random_matches_numpy) {
  // Values printed by numpy: RandomState(0).random_sample(), .randint(10368), .uniform(size=3).
  NumpyLegacyRandom r(0);
  CHECK(r.random_sample() == 0.5488135039273248);
  CHECK_EQ(r.randint(10368), uint64_t{9845});
  CHECK(r.random_sample() == 0.8442657485810173);
  CHECK(r.random_sample() == 0.8579456176227568);
  CHECK(r.random_sample() == 0.8472517387841254);
  NumpyLegacyRandom s(0);  // [RandomState(0).randint(10) for _ in range(5)], then randint(10**6)
  for (uint64_t want : {5, 0, 3, 3, 7}) CHECK_EQ(s.randint(10), want);
  CHECK_EQ(s.randint(1000000), uint64_t{304137});
  NumpyLegacyRandom t(12345);
  CHECK_EQ(t.randint(7), uint64_t{2});
  CHECK(t.random_sample() == 0.8901547142593231);
}

// Plain float64 Lloyd objective of a labelling with its centers.
static double labelled_sse(const std::vector<float>& pts, size_t dim, const std::vector<double>& centers,
                    const std::vector<uint32_t>& labels) {
  double s = 0;
  for (size_t i = 0; i < labels.size(); ++i)
    for (size_t d = 0; d < dim; ++d) {
      const double t = pts[i * dim + d] - centers[labels[i] * dim + d];
      s += t * t;
    }
  return s;
}

TEST(vector_kmeans_never_worse_than_the_sklearn_run) {
  // coremltools' run (scikit-learn k-means++, tol 1e-2, random_state 0) on fp16-valued 4-vectors:
  // the labels are final (each center is the mean of its points, or the run stopped on tol and
  // relabelled), and vector_kmeans, which starts from it, ends no worse.
  std::mt19937_64 rng(5);
  std::normal_distribution<float> nd(0, 0.05f);
  const size_t n = 96 * 48 * 9 / 4, dim = 4, k = 16;
  std::vector<float> pts(n * dim);
  for (float& x : pts) x = cmo::half_to_float(cmo::float_to_half(nd(rng)));
  SklearnKmeansResult sk = sklearn_kmeans(pts.data(), n, dim, k, 0, 1e-2, 300, 1);
  CHECK(sk.iterations >= 1);
  CHECK(std::abs(labelled_sse(pts, dim, sk.centers, sk.labels) - sk.inertia) <= 1e-9 * sk.inertia);
  for (unsigned threads : {1u, 0u}) {
    SklearnKmeansResult again = sklearn_kmeans(pts.data(), n, dim, k, 0, 1e-2, 300, threads);
    CHECK(again.labels == sk.labels);
    CHECK(again.centers == sk.centers);
  }
  VectorKmeansParams p;
  p.k = k;
  for (int restarts : {1, 4}) {
    p.n_init = restarts;
    VectorKmeansResult r = vector_kmeans(pts.data(), n, dim, p);
    std::vector<double> c(r.centers.begin(), r.centers.end());
    CHECK(labelled_sse(pts, dim, c, r.assignment) <= sk.inertia * (1 + 1e-12));
  }
}

TEST(vector_kmeans_few_distinct_and_empty_clusters) {
  std::vector<float> pts = {1, 2, 1, 2, 3, 4, 3, 4, 1, 2};
  VectorKmeansParams p;
  p.k = 4;
  VectorKmeansResult r = vector_kmeans(pts.data(), 5, 2, p);
  CHECK_EQ(r.k, size_t{2});
  std::vector<float> want = {1, 2, 3, 4};
  CHECK(r.centers == want);
  std::vector<uint32_t> wa = {0, 0, 1, 1, 0};
  CHECK(r.assignment == wa);
}

TEST(vector_palettization_layout_and_round_trip) {
  // cd2 gs16 on linear [256, 512] -> indices [128, 512], lut [16, 1, 16, 2], vector_axis 0 (golden).
  std::vector<uint16_t> w = random_f16(256 * 512, 77);
  PalettizeParams p;
  p.nbits = 4;
  p.group_size = 16;
  p.cluster_dim = 2;
  p.seed = 1;
  PalettizeResult r = run_f16(w, {256, 512}, p);
  std::vector<int64_t> is = {128, 512}, ls = {16, 1, 16, 2};
  CHECK(r.indices_shape == is);
  CHECK(r.lut_shape == ls);
  CHECK_EQ(r.vector_axis, 0);
  std::vector<uint16_t> dec(w.size());
  decompress_lut(decode_input(r), dec.data());
  // Element (2c' + j, col) decodes to component j of the group's LUT row indices[c', col].
  bool ok = true;
  for (int64_t row = 0; row < 256 && ok; ++row)
    for (int64_t col = 0; col < 512; ++col) {
      int64_t cv = row / 2, j = row % 2, g = row / 16;
      uint16_t want = r.lut_f16[(g * 16 + r.indices[cv * 512 + col]) * 2 + j];
      if (dec[row * 512 + col] != want) {
        ok = false;
        break;
      }
    }
  CHECK(ok);
  CHECK(r.sse < 0.35 * r.signal);
  PalettizeResult again = run_f16(w, {256, 512}, p);
  CHECK(again.lut_f16 == r.lut_f16);
  CHECK(again.indices == r.indices);
}

TEST(uniform_fp16_arithmetic) {
  // Values where fp16 rounding of (w − lo)/(hi − lo)·15 matters: compare to a direct re-computation.
  std::vector<uint16_t> w = random_f16(5000, 21, 0.3f);
  PalettizeParams p;
  p.mode = PalettizeMode::kUniform;
  p.nbits = 4;
  PalettizeResult r = run_f16(w, {50, 100}, p);
  float lo = 1e9f, hi = -1e9f;
  for (uint16_t h : w) {
    lo = std::min(lo, cmo::half_to_float(h));
    hi = std::max(hi, cmo::half_to_float(h));
  }
  auto H = [](float x) { return cmo::half_to_float(cmo::float_to_half(x)); };
  float range = H(hi - lo);
  double scale = double(range) / 15.0;
  for (size_t i = 0; i < w.size(); ++i) {
    float q = H(H(H(cmo::half_to_float(w[i]) - lo) / range) * 15.0f);
    CHECK_EQ(static_cast<int>(r.indices[i]), static_cast<int>(std::nearbyint(q)));
  }
  for (int k = 0; k < 16; ++k) CHECK_EQ(r.lut_f16[k], double_to_half(double(k) * scale + double(lo)));
  CHECK_EQ(cmo::half_to_float(r.lut_f16[0]), lo);
}

CMO_TEST_MAIN()
