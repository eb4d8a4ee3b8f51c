// SparseGPT fast path (float32, blocked, threaded) against the float64 reference written as the
// Python reads (sparsegpt_ref.cc): identical masks, weights within 1e-5 of max|W|, same loss.
#include <algorithm>
#include <cmath>
#include <random>

#include "../kernels/hessian.h"
#include "../kernels/sparsegpt.h"
#include "../util/error.h"
#include "check.h"
#include "random_data.h"

using namespace cmo::kernels;

namespace {
using cmo::test::randn;
// Correlated inputs (x = z·A): a realistic Hessian, where OBS updates matter.
std::vector<float> correlated(int64_t rows, int64_t n, unsigned seed) {
  auto z = randn(static_cast<size_t>(rows * n), seed), a = randn(static_cast<size_t>(n * n), seed + 1, 0.3f);
  for (int64_t i = 0; i < n; ++i) a[static_cast<size_t>(i * n + i)] += 1.0f;
  std::vector<float> x(static_cast<size_t>(rows * n), 0.0f);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < n; ++k) {
      const float zk = z[static_cast<size_t>(r * n + k)];
      for (int64_t j = 0; j < n; ++j) x[static_cast<size_t>(r * n + j)] += zk * a[static_cast<size_t>(k * n + j)];
    }
  return x;
}
std::vector<double> as_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

// One layer's problem: `samples` correlated inputs X (seed x_seed), their Hessian accumulated on
// `threads` threads, and random weights [rows, n] (seed w_seed).
struct LayerCase {
  std::vector<float> x;
  Hessian h;
  std::vector<float> w;
  LayerCase(int64_t rows, int64_t n, int64_t samples, unsigned x_seed, unsigned threads, unsigned w_seed)
      : x(correlated(samples, n, x_seed)), h(n), w(randn(static_cast<size_t>(rows * n), w_seed)) {
    h.add_rows(x.data(), samples, threads);
  }
};

struct Compared {
  bool masks_equal;
  double weight_rel;
  double loss_rel;
};
Compared compare(const SparseGptResult& a, const SparseGptResult& b) {
  double m = 0, wmax = 0;
  for (size_t i = 0; i < a.weight.size(); ++i) {
    m = std::max(m, static_cast<double>(std::fabs(a.weight[i] - b.weight[i])));
    wmax = std::max(wmax, static_cast<double>(std::fabs(b.weight[i])));
  }
  return {a.keep_mask == b.keep_mask, m / wmax, std::fabs(a.error - b.error) / std::max(1e-30, std::fabs(b.error))};
}
void check_against_ref(const std::vector<float>& w, int64_t rows, int64_t n, Hessian& h, const SparseGptOptions& o) {
  auto fast = sparse_gpt(w.data(), rows, n, h, o);
  auto dense = h.dense();
  auto ref = sparse_gpt_ref(w.data(), rows, n, as_double(dense), o);
  const Compared c = compare(fast, ref);
  CHECK(c.masks_equal);
  CHECK(c.weight_rel < 1e-5);
  CHECK(c.loss_rel < 1e-4);
  CHECK_EQ(fast.dead_columns, ref.dead_columns);
  CHECK(fast.tail_note == ref.tail_note);
  if (!(c.masks_equal && c.weight_rel < 1e-5)) std::fprintf(stderr, "  weight rel %.3g loss rel %.3g\n", c.weight_rel, c.loss_rel);
}
}  // namespace

TEST(linear_unstructured_matches_reference) {
  // 300 columns with block 128: two full blocks and a 44-column tail block.
  const int64_t rows = 24, n = 300;
  auto x = correlated(700, n, 1);
  Hessian h(n);
  h.add_rows(x.data(), 400, 2);
  h.add_rows(x.data() + 400 * n, 300, 1);
  auto w = randn(static_cast<size_t>(rows * n), 2);
  SparseGptOptions o;
  o.target_sparsity = 0.5;
  check_against_ref(w, rows, n, h, o);
  o.target_sparsity = 0.37;
  o.block_size = 64;
  check_against_ref(w, rows, n, h, o);
  auto r = sparse_gpt(w.data(), rows, n, h, o);
  CHECK(r.sparsity >= 0.37 && r.sparsity < 0.38);
  for (size_t i = 0; i < r.weight.size(); ++i)
    if (!r.keep_mask[i]) CHECK_EQ(r.weight[i], 0.0f);
}

TEST(block_threshold_is_the_kth_score_with_ties) {
  // The block threshold (a parallel radix select) must be what nth_element picks on the scores w²/d²,
  // also with many tied scores: weights from 5 values, a Hessian with equal diagonals in places.
  const int64_t rows = 512, n = 160;
  auto x = correlated(300, n, 5);
  for (int64_t r = 0; r < 300; ++r)
    for (int64_t j = 0; j < 40; ++j) x[static_cast<size_t>(r * n + j)] = (r % 2 ? 1.0f : -1.0f);  // 40 equal columns
  Hessian h(n);
  h.add_rows(x.data(), 300, 3);
  std::vector<float> w(static_cast<size_t>(rows * n));
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.5f * static_cast<float>(static_cast<int>((i * 2654435761u) >> 7) % 5 - 2);
  for (double sparsity : {0.3, 0.5, 0.77}) {
    SparseGptOptions o;
    o.target_sparsity = sparsity;
    auto r = sparse_gpt(w.data(), rows, n, h, o);
    const InverseFactor f = h.factor(o.dampening);
    const int64_t bw = std::min<int64_t>(o.block_size, n);
    std::vector<float> score;
    for (int64_t row = 0; row < rows; ++row)
      for (int64_t i = 0; i < bw; ++i) {
        const float wv = f.dead[static_cast<size_t>(i)] ? 0.0f : w[static_cast<size_t>(row * n + i)], d = f.u[i * n + i];
        score.push_back((wv * wv) / (d * d));
      }
    std::vector<float> sorted = score;
    const int64_t k = std::min<int64_t>(rows * bw - 1, static_cast<int64_t>(static_cast<double>(rows * bw) * sparsity));
    std::nth_element(sorted.begin(), sorted.begin() + k, sorted.end());
    int64_t diffs = 0;
    for (int64_t row = 0; row < rows; ++row)
      for (int64_t i = 0; i < bw; ++i)
        diffs += (score[static_cast<size_t>(row * bw + i)] <= sorted[static_cast<size_t>(k)] ? 0 : 1) != r.keep_mask[static_cast<size_t>(row * n + i)];
    CHECK_EQ(diffs, int64_t{0});
  }
}

TEST(nm_2_4_every_group_and_reference) {
  const int64_t rows = 16, n = 256;
  LayerCase layer(rows, n, 600, 3, 4, 4);
  Hessian& h = layer.h;
  auto& w = layer.w;
  SparseGptOptions o;
  o.n = 2;
  o.m = 4;
  check_against_ref(w, rows, n, h, o);
  auto r = sparse_gpt(w.data(), rows, n, h, o);
  for (int64_t row = 0; row < rows; ++row)
    for (int64_t g = 0; g < n; g += 4) {
      int pruned = 0;
      for (int64_t k = 0; k < 4; ++k) pruned += r.keep_mask[static_cast<size_t>(row * n + g + k)] == 0;
      CHECK_EQ(pruned, 2);
    }
  CHECK(r.tail_note.empty());
  o.block_size = 6;  // not a multiple of m
  CHECK_THROWS(sparse_gpt(w.data(), rows, n, h, o));
}

TEST(nm_tail_of_a_one_channel_3x3_conv) {
  // A 1-input-channel 3×3 conv: 9 columns. 2:4 → groups of 4, 4, 1: the tail prunes floor(2·1/4) = 0;
  // 3:4 → the tail of 1 prunes 0; with 10 columns (tail 2) 2:4 prunes 1 in the tail.
  ConvGeometry g;
  g.in_channels = 1;
  g.kernel_h = g.kernel_w = 3;
  g.pad_top = g.pad_bottom = g.pad_left = g.pad_right = 1;
  const int64_t batch = 3, H = 8, W = 8, cout = 6;
  auto x = randn(static_cast<size_t>(batch * H * W), 5);
  Hessian h(9);
  h.add_conv_input(x.data(), batch, H, W, g, 0);
  auto w = randn(static_cast<size_t>(cout * 9), 6);
  SparseGptOptions o;
  o.n = 2;
  o.m = 4;
  check_against_ref(w, cout, 9, h, o);
  auto r = sparse_gpt(w.data(), cout, 9, h, o);
  CHECK(!r.tail_note.empty());
  for (int64_t row = 0; row < cout; ++row) {
    int pruned = 0;
    for (int64_t c = 0; c < 8; ++c) pruned += r.keep_mask[static_cast<size_t>(row * 9 + c)] == 0;
    CHECK_EQ(pruned, 4);
    CHECK_EQ(r.keep_mask[static_cast<size_t>(row * 9 + 8)], uint8_t{1});
  }
  auto x10 = randn(400 * 10, 7);
  Hessian h10(10);
  h10.add_rows(x10.data(), 400, 1);
  auto w10 = randn(5 * 10, 8);
  check_against_ref(w10, 5, 10, h10, o);
  auto r10 = sparse_gpt(w10.data(), 5, 10, h10, o);
  for (int64_t row = 0; row < 5; ++row)
    CHECK_EQ((r10.keep_mask[static_cast<size_t>(row * 10 + 8)] == 0) + (r10.keep_mask[static_cast<size_t>(row * 10 + 9)] == 0), 1);
}

TEST(conv_with_groups_padding_stride_matches_reference) {
  ConvGeometry g;
  g.in_channels = 6;
  g.groups = 2;
  g.kernel_h = g.kernel_w = 3;
  g.stride_h = g.stride_w = 2;
  g.pad_top = g.pad_left = 1;
  g.pad_bottom = g.pad_right = 1;
  const int64_t batch = 4, H = 12, W = 10, cout_g = 5, n = g.columns();
  auto x = randn(static_cast<size_t>(batch * 6 * H * W), 9);
  for (int64_t grp = 0; grp < 2; ++grp) {
    Hessian h(n);
    h.add_conv_input(x.data(), batch, H, W, g, grp);
    // The reference's Hessian from the explicit unfold (independent of the tiled SYRK).
    auto cols = conv_unfold_ref(x.data(), batch, H, W, g, grp);
    std::vector<double> href(static_cast<size_t>(n * n), 0.0);
    int64_t ns = 0;
    hessian_add_rows_ref(href, n, ns, cols.data(), static_cast<int64_t>(cols.size()) / n, batch);
    auto w = randn(static_cast<size_t>(cout_g * n), 10 + static_cast<unsigned>(grp));
    SparseGptOptions o;
    o.target_sparsity = 0.5;
    o.block_size = 16;
    auto fast = sparse_gpt(w.data(), cout_g, n, h, o);
    auto ref = sparse_gpt_ref(w.data(), cout_g, n, href, o);
    const Compared c = compare(fast, ref);
    CHECK(c.masks_equal);
    CHECK(c.weight_rel < 1e-5);
  }
}

TEST(quantized_survivors_match_reference) {
  const int64_t rows = 12, n = 160;
  LayerCase layer(rows, n, 500, 11, 2, 12);
  Hessian& h = layer.h;
  auto& w = layer.w;
  for (int sym = 0; sym < 2; ++sym)
    for (int64_t gs : {int64_t{0}, int64_t{32}, int64_t{-1}}) {
      SparseGptOptions o;
      o.target_sparsity = 0.4;
      o.quant = QuantGrid{4, sym == 1, gs};
      check_against_ref(w, rows, n, h, o);
      auto r = sparse_gpt(w.data(), rows, n, h, o);
      const int64_t groups = gs > 0 ? n / gs : 1;
      CHECK_EQ(static_cast<int64_t>(r.scales.size()), rows * groups);
      // Every weight is on its grid: w = scale·(code − zero) with an integer code in [0, 15].
      for (int64_t row = 0; row < rows; ++row)
        for (int64_t c = 0; c < n; ++c) {
          const size_t gi = static_cast<size_t>(row * groups + (gs > 0 ? c / gs : 0));
          const double code = r.weight[static_cast<size_t>(row * n + c)] / r.scales[gi] + r.zero_points[gi];
          CHECK(std::fabs(code - std::nearbyint(code)) < 1e-3 && code > -0.5 && code < 15.5);
        }
    }
}

TEST(dead_columns_and_all_zero_hessian) {
  const int64_t rows = 8, n = 40;
  auto x = randn(static_cast<size_t>(200 * n), 13);
  for (int64_t r = 0; r < 200; ++r) x[static_cast<size_t>(r * n + 3)] = x[static_cast<size_t>(r * n + 17)] = 0.0f;
  Hessian h(n);
  h.add_rows(x.data(), 200, 1);
  auto w = randn(static_cast<size_t>(rows * n), 14);
  SparseGptOptions o;
  o.block_size = 16;
  check_against_ref(w, rows, n, h, o);
  auto r = sparse_gpt(w.data(), rows, n, h, o);
  CHECK_EQ(r.dead_columns, int64_t{2});
  for (int64_t row = 0; row < rows; ++row) CHECK_EQ(r.weight[static_cast<size_t>(row * n + 3)], 0.0f);

  Hessian z(n);
  std::vector<float> zeros(static_cast<size_t>(10 * n), 0.0f);
  z.add_rows(zeros.data(), 10, 1);
  auto rz = sparse_gpt(w.data(), rows, n, z, o);
  CHECK_EQ(rz.dead_columns, n);
  for (float v : rz.weight) CHECK_EQ(v, 0.0f);
  CHECK_EQ(rz.error, 0.0);
  Hessian empty(n);  // no calibration sample reached the layer
  bool typed = false;
  try {
    sparse_gpt(w.data(), rows, n, empty, o);
  } catch (const cmo::Error& e) {
    typed = e.code() == "ENOSAMPLES";
  }
  CHECK(typed);
}

TEST(results_do_not_depend_on_threads) {
  const int64_t rows = 40, n = 300;
  auto x = correlated(500, n, 15);
  auto w = randn(static_cast<size_t>(rows * n), 16);
  SparseGptOptions o;
  o.target_sparsity = 0.6;
  cmo::ThreadPool one(1), three(3);
  // The tiled factor route is bit-identical for any pool size (OpenBLAS's threaded LAPACK is not).
  Hessian::use_lapack_factor(false);
  Hessian h1(n), h3(n);
  h1.add_rows(x.data(), 500, 2, &one);
  h3.add_rows(x.data(), 500, 2, &three);
  CHECK(h1.dense() == h3.dense());
  auto a = sparse_gpt(w.data(), rows, n, h1, o, &one);
  auto b = sparse_gpt(w.data(), rows, n, h3, o, &three);
  CHECK(a.weight == b.weight);
  CHECK(a.keep_mask == b.keep_mask);
  Hessian::use_lapack_factor(true);
}

TEST(row_lanes_give_the_row_loops_bits) {
  // 16 rows at a time across a vector (and the errors transposed for the lazy update) against the
  // one-row loop: same weights, mask and loss bit for bit; 53 rows = 3 lane groups + 5 single rows.
  const int64_t rows = 53, n = 200;
  auto x = correlated(400, n, 21);
  auto w = randn(static_cast<size_t>(rows * n), 22);
  for (double sparsity : {0.0, 0.5}) {
    SparseGptOptions o;
    o.target_sparsity = sparsity;
    o.block_size = 64;
    Hessian h(n);
    h.add_rows(x.data(), 400, 2);
    auto lanes = sparse_gpt(w.data(), rows, n, h, o);
    o.row_lanes = false;
    auto rowwise = sparse_gpt(w.data(), rows, n, h, o);
    CHECK(lanes.weight == rowwise.weight);
    CHECK(lanes.keep_mask == rowwise.keep_mask);
    CHECK(lanes.error == rowwise.error);
    CHECK(sparsity == 0.0 || lanes.sparsity > 0.45);
  }
}

TEST(wide_layer_with_a_score_buffer_matches_reference) {
  // Few rows next to many columns (rows·block <= columns²/32): the block's scores are computed once
  // into a buffer for the select and the mask; masks still equal the float64 reference's.
  const int64_t rows = 20, n = 400;
  LayerCase layer(rows, n, 900, 31, 3, 32);
  Hessian& h = layer.h;
  auto& w = layer.w;
  SparseGptOptions o;
  o.target_sparsity = 0.5;
  check_against_ref(w, rows, n, h, o);
  o.target_sparsity = 0.3;
  o.block_size = 64;
  check_against_ref(w, rows, n, h, o);
  o.row_lanes = false;
  check_against_ref(w, rows, n, h, o);
}

TEST(reconstruction_error_from_hessian_and_beats_magnitude) {
  // ‖WX − ŴX‖²/‖WX‖² computed directly from X equals the Hessian form; SparseGPT's is below
  // magnitude pruning's at the same 50 % sparsity on correlated inputs.
  const int64_t rows = 32, n = 96, samples = 800;
  LayerCase layer(rows, n, samples, 17, 1, 18);
  const auto& x = layer.x;
  Hessian& h = layer.h;
  auto& w = layer.w;
  SparseGptOptions o;
  o.block_size = 32;
  auto r = sparse_gpt(w.data(), rows, n, h, o);
  auto direct = [&](const std::vector<float>& wh) {
    double num = 0, den = 0;
    for (int64_t s = 0; s < samples; ++s)
      for (int64_t row = 0; row < rows; ++row) {
        double y = 0, yh = 0;
        for (int64_t k = 0; k < n; ++k) {
          y += static_cast<double>(w[static_cast<size_t>(row * n + k)]) * x[static_cast<size_t>(s * n + k)];
          yh += static_cast<double>(wh[static_cast<size_t>(row * n + k)]) * x[static_cast<size_t>(s * n + k)];
        }
        num += (y - yh) * (y - yh);
        den += y * y;
      }
    return num / den;
  };
  const double e_sgpt = relative_reconstruction_error(w.data(), r.weight.data(), rows, n, h);
  CHECK_NEAR(e_sgpt, direct(r.weight), 1e-4 * direct(r.weight));
  // Magnitude pruning, 50 % per layer.
  std::vector<float> mag = w, absv(w.size());
  for (size_t i = 0; i < w.size(); ++i) absv[i] = std::fabs(w[i]);
  std::vector<float> sorted = absv;
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<long>(sorted.size() / 2), sorted.end());
  const float thr = sorted[sorted.size() / 2];
  for (size_t i = 0; i < w.size(); ++i)
    if (absv[i] < thr) mag[i] = 0.0f;
  const double e_mag = relative_reconstruction_error(w.data(), mag.data(), rows, n, h);
  CHECK_NEAR(e_mag, direct(mag), 1e-4 * direct(mag));
  CHECK(e_sgpt < 0.7 * e_mag);
  CHECK_EQ(relative_reconstruction_error(w.data(), w.data(), rows, n, h), 0.0);
}

TEST(three_factorization_pipeline_agrees) {
  // The benchmark's baseline (full-GEMM Hessian, LAPACK potrf/potri/potrf) gives the same masks.
  const int64_t rows = 20, n = 300;
  auto x = correlated(600, n, 19);
  Hessian a(n), b(n);
  a.add_rows(x.data(), 600, 2);
  hessian_add_rows_gemm(b, x.data(), 600, 2);
  auto da = a.dense(), db = b.dense();
  double m = 0, mx = 0;
  for (size_t i = 0; i < da.size(); ++i) {
    m = std::max(m, static_cast<double>(std::fabs(da[i] - db[i])));
    mx = std::max(mx, static_cast<double>(std::fabs(da[i])));
  }
  CHECK(m / mx < 1e-5);
  auto w = randn(static_cast<size_t>(rows * n), 20);
  SparseGptOptions o;
  auto fast = sparse_gpt(w.data(), rows, n, a, o);
  auto base = sparse_gpt_three_factorizations(w.data(), rows, n, a, o);
  const Compared c = compare(fast, base);
  CHECK(c.masks_equal);
  CHECK(c.weight_rel < 1e-5);
}

CMO_TEST_MAIN()
