// SparseGPT / GPTQ block loop (float32, threaded over rows) — see sparsegpt.h. The slow float64
// reference of the same algorithms is sparsegpt_ref.cc.
#include "sparsegpt.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>
#include <string>

#include "../executor/ops/gemm.h"
#include "../linalg/blas.h"
#include "../util/error.h"
#include "obs_quant.h"

namespace cmo::kernels {

namespace {

constexpr int64_t kRowsPerTask = 8;

using PoolRef = PoolOrGlobal;

// One OBS step once column i of a block has its final value q (pruned and/or quantized): the scaled
// error (w − q) / d is recorded for the lazy batch update and the rest of the block's row (hrow is row i
// of the inverse factor) is corrected. Returns the column's loss term (w − q)² / d².
inline double obs_column_update(float* w1, const float* hrow, int64_t i, int64_t bw, float w, float q, float d, float* err_slot) {
  const float diff = w - q;
  const double loss = static_cast<double>((diff * diff) / (d * d));
  const float e = diff / d;
  for (int64_t j = i; j < bw; ++j) w1[j] -= e * hrow[j];
  *err_slot = e;
  return loss;
}

// C[m×n] += alpha·A[m×k]·B[k×n] in 2-D tiles on the pool (single-threaded BLAS per tile).
void gemm_tiled(const PoolRef& pool, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                const float* b, int64_t ldb, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0 || k <= 0) return;
  constexpr int64_t kTm = 256, kTn = 1024;
  const int64_t tm = (m + kTm - 1) / kTm, tn = (n + kTn - 1) / kTn;
  pool.run(static_cast<size_t>(tm * tn), [&](size_t t) {
    const int64_t bi = static_cast<int64_t>(t) / tn, bj = static_cast<int64_t>(t) % tn;
    const int64_t i0 = bi * kTm, i1 = std::min(m, i0 + kTm), j0 = bj * kTn, j1 = std::min(n, j0 + kTn);
    linalg::sgemm(false, false, i1 - i0, j1 - j0, k, alpha, a + i0 * lda, lda, b + j0, ldb, 1.0f, c + i0 * ldc + j0, ldc);
  });
}

void check_common(const float* weight, int64_t rows, int64_t columns, const Hessian& h, int64_t block_size,
                  const char* what) {
  const std::string w(what);
  if (weight == nullptr || rows <= 0 || columns <= 0) throw Error("EINVAL", w + ": empty weight");
  if (columns != h.columns())
    throw Error("EINVAL", w + ": the weight has " + std::to_string(columns) + " columns but the Hessian " +
                              std::to_string(h.columns()));
  if (block_size <= 0) throw Error("EINVAL", w + ": block size (processing_group_size) must be >= 1");
  if (h.samples() == 0) throw Error("ENOSAMPLES", w + ": the Hessian has no calibration samples");
}

void check_quant(const QuantGrid& q, const char* what) {
  if (q.bits < 0 || q.bits > 8) throw Error("EINVAL", std::string(what) + ": bits must be in [1, 8]");
  if (q.group_size < -1) throw Error("EINVAL", std::string(what) + ": group size must be -1, 0 or positive");
}

// Grids chosen up front from `w` (per tensor / per channel / per group of columns), [rows × groups].
void grids_from(const float* w, int64_t rows, int64_t n, const QuantGrid& q, std::vector<float>& scales,
                std::vector<float>& zeros, int64_t& groups) {
  const int maxq = (1 << q.bits) - 1;
  groups = q.group_size > 0 ? (n + q.group_size - 1) / q.group_size : 1;
  scales.assign(static_cast<size_t>(rows * groups), 0.0f);
  zeros.assign(static_cast<size_t>(rows * groups), 0.0f);
  if (q.group_size < 0) {
    const QParams p = find_qparams(w, rows * n, maxq, q.symmetric);
    std::fill(scales.begin(), scales.end(), p.scale);
    std::fill(zeros.begin(), zeros.end(), p.zero);
    return;
  }
  const int64_t gs = q.group_size > 0 ? q.group_size : n;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t c0 = g * gs, c1 = std::min(n, c0 + gs);
      const QParams p = find_qparams(w + r * n + c0, c1 - c0, maxq, q.symmetric);
      scales[static_cast<size_t>(r * groups + g)] = p.scale;
      zeros[static_cast<size_t>(r * groups + g)] = p.zero;
    }
}

}  // namespace

std::string nm_tail_note(int64_t columns, int n, int m) {
  if (m <= 0 || columns % m == 0) return {};
  const int64_t tail = columns % m;
  const int64_t pruned = n * tail / m;
  return "n:m " + std::to_string(n) + ":" + std::to_string(m) + " with " + std::to_string(columns) +
         " columns: the last group has " + std::to_string(tail) + " column(s), pruned proportionally (" +
         std::to_string(pruned) + " per row)";
}

namespace {
void check_sparse_options(const SparseGptOptions& o) {
  check_quant(o.quant, "SparseGPT");
  const bool nm = o.n != 0 || o.m != 0;
  if (nm && (o.n < 0 || o.m <= 0 || o.n > o.m))
    throw Error("EINVAL", "SparseGPT: n:m needs 0 <= n <= m, m >= 1; got " + std::to_string(o.n) + ":" + std::to_string(o.m));
  if (nm && o.block_size % o.m != 0)
    throw Error("EINVAL", "SparseGPT: processing_group_size " + std::to_string(o.block_size) + " must be a multiple of m = " +
                              std::to_string(o.m));
  if (!nm && !(o.target_sparsity >= 0.0 && o.target_sparsity <= 1.0))
    throw Error("EINVAL", "SparseGPT: target_sparsity must be in [0, 1]");
}
}  // namespace

SparseGptResult sparse_gpt(const float* weight, int64_t rows, int64_t n, Hessian& h, const SparseGptOptions& o,
                           ThreadPool* pool) {
  check_common(weight, rows, n, h, o.block_size, "SparseGPT");
  check_sparse_options(o);
  exec::use_single_threaded_blas();
  const InverseFactor f = h.factor(o.dampening, nullptr, pool);
  return sparse_gpt_with_factor(weight, rows, n, f, o, pool);
}

SparseGptResult sparse_gpt_with_factor(const float* weight, int64_t rows, int64_t n, const InverseFactor& f,
                                       const SparseGptOptions& o, ThreadPool* pool) {
  check_sparse_options(o);
  if (f.columns != n || f.u == nullptr) throw Error("EINVAL", "SparseGPT: factor and weight sizes differ");
  const bool nm = o.n != 0 || o.m != 0;
  exec::use_single_threaded_blas();
  PoolRef pr(pool);
  const float* U = f.u;

  SparseGptResult res;
  res.dead_columns = f.dead_count;
  res.weight.assign(weight, weight + rows * n);
  res.keep_mask.assign(static_cast<size_t>(rows * n), 1);
  if (nm) res.tail_note = nm_tail_note(n, o.n, o.m);
  int64_t groups = 1;
  const bool quant = o.quant.bits > 0;
  const float maxq = static_cast<float>((1 << o.quant.bits) - 1);
  if (quant) grids_from(weight, rows, n, o.quant, res.scales, res.zero_points, groups);  // unpruned W (coremltools)
  const int64_t gs = o.quant.group_size > 0 ? o.quant.group_size : n;
  float* W = res.weight.data();
  uint8_t* keep = res.keep_mask.data();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < n; ++c)
      if (f.dead[static_cast<size_t>(c)]) W[r * n + c] = 0.0f;

  const int64_t B = std::min(o.block_size, n);
  std::vector<float> err(static_cast<size_t>(rows * B)), score;
  std::vector<double> loss(static_cast<size_t>(rows), 0.0);
  const int64_t tasks = (rows + kRowsPerTask - 1) / kRowsPerTask;
  for (int64_t i1 = 0; i1 < n; i1 += B) {
    const int64_t i2 = std::min(n, i1 + B), bw = i2 - i1;
    const float* hb = U + i1 * n + i1;  // Hinv1 = U[i1:i2, i1:i2], row stride n
    if (!nm && o.target_sparsity > 0.0) {
      // Adaptive mask: w²/d² over the whole block (all rows), pruned up to the kth value inclusive.
      score.resize(static_cast<size_t>(rows * bw));
      pr.run(static_cast<size_t>(tasks), [&](size_t t) {
        for (int64_t r = static_cast<int64_t>(t) * kRowsPerTask; r < std::min(rows, (static_cast<int64_t>(t) + 1) * kRowsPerTask); ++r)
          for (int64_t i = 0; i < bw; ++i) {
            const float w = W[r * n + i1 + i], d = hb[i * n + i];
            score[static_cast<size_t>(r * bw + i)] = (w * w) / (d * d);
          }
      });
      const int64_t numel = rows * bw;
      const int64_t k = std::min<int64_t>(numel - 1, static_cast<int64_t>(static_cast<double>(numel) * o.target_sparsity));
      std::vector<float> sorted(score);
      std::nth_element(sorted.begin(), sorted.begin() + k, sorted.end());
      const float thresh = sorted[static_cast<size_t>(k)];
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t i = 0; i < bw; ++i)
          if (score[static_cast<size_t>(r * bw + i)] <= thresh) keep[r * n + i1 + i] = 0;
    }
    pr.run(static_cast<size_t>(tasks), [&](size_t t) {
      std::vector<float> w1(static_cast<size_t>(bw));
      std::vector<std::pair<float, int64_t>> cand;
      for (int64_t r = static_cast<int64_t>(t) * kRowsPerTask; r < std::min(rows, (static_cast<int64_t>(t) + 1) * kRowsPerTask); ++r) {
        float* wr = W + r * n;
        uint8_t* kr = keep + r * n + i1;
        std::memcpy(w1.data(), wr + i1, sizeof(float) * static_cast<size_t>(bw));
        double lsum = 0;
        for (int64_t i = 0; i < bw; ++i) {
          if (nm && i % o.m == 0) {
            // n:m: the n smallest w²/d² of the next m columns, on the error-updated weights.
            const int64_t e = std::min(bw, i + o.m), len = e - i;
            const int64_t npr = len == o.m ? o.n : o.n * len / o.m;  // proportional tail
            cand.clear();
            for (int64_t j = i; j < e; ++j) {
              const float d = hb[j * n + j];
              cand.emplace_back((w1[static_cast<size_t>(j)] * w1[static_cast<size_t>(j)]) / (d * d), j);
            }
            std::stable_sort(cand.begin(), cand.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
            for (int64_t p = 0; p < npr; ++p) kr[cand[static_cast<size_t>(p)].second] = 0;
          }
          const float w = w1[static_cast<size_t>(i)], d = hb[i * n + i];
          float q = kr[i] ? w : 0.0f;
          if (quant) {
            const size_t gi = static_cast<size_t>(r * groups + (o.quant.group_size < 0 ? 0 : (i1 + i) / gs));
            q = quantize_value(q, res.scales[gi], res.zero_points[gi], maxq);
          }
          wr[i1 + i] = q;
          lsum += obs_column_update(w1.data(), hb + i * n, i, bw, w, q, d, &err[static_cast<size_t>(r * bw + i)]);
        }
        loss[static_cast<size_t>(r)] += lsum / 2;
      }
    });
    // Lazy batch update of every later column: W[:, i2:] −= Err1 · U[i1:i2, i2:].
    gemm_tiled(pr, rows, n - i2, bw, -1.0f, err.data(), bw, U + i1 * n + i2, n, W + i2, n);
    if (o.on_block) o.on_block(i2, n);
  }
  int64_t zeros = 0;
  for (uint8_t k : res.keep_mask) zeros += k == 0;
  res.sparsity = static_cast<double>(zeros) / static_cast<double>(rows * n);
  for (double l : loss) res.error += l;
  return res;
}

std::vector<int32_t> act_order_permutation(const Hessian& h) {
  // argsort(diag(H) after the dead fix, descending); ties keep column order (stable).
  std::vector<float> d = h.diagonal();
  for (float& v : d)
    if (v == 0.0f) v = 1.0f;
  std::vector<int32_t> perm(d.size());
  std::iota(perm.begin(), perm.end(), 0);
  std::stable_sort(perm.begin(), perm.end(), [&](int32_t a, int32_t b) { return d[static_cast<size_t>(a)] > d[static_cast<size_t>(b)]; });
  return perm;
}

GptqResult gptq(const float* weight, int64_t rows, int64_t n, Hessian& h, const GptqOptions& o, ThreadPool* pool) {
  check_common(weight, rows, n, h, o.block_size, "GPTQ");
  check_quant(o.quant, "GPTQ");
  if (o.quant.bits < 1) throw Error("EINVAL", "GPTQ: bits must be in [1, 8]");
  exec::use_single_threaded_blas();
  PoolRef pr(pool);
  GptqResult res;
  if (o.act_order) res.perm = act_order_permutation(h);
  const InverseFactor f = h.factor(o.dampening, o.act_order ? &res.perm : nullptr, pool);
  const float* U = f.u;
  res.dead_columns = f.dead_count;
  auto src = [&](int64_t c) { return o.act_order ? static_cast<int64_t>(res.perm[static_cast<size_t>(c)]) : c; };
  const float maxq = static_cast<float>((1 << o.quant.bits) - 1);
  const int64_t gsz = o.quant.group_size;
  const bool dynamic = gsz > 0 && !o.static_groups;
  int64_t groups = 1;
  std::vector<float> zeroed(weight, weight + rows * n);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < n; ++c)
      if (f.dead[static_cast<size_t>(c)]) zeroed[static_cast<size_t>(r * n + c)] = 0.0f;
  res.group_index.assign(static_cast<size_t>(n), 0);
  if (gsz <= 0) {
    grids_from(weight, rows, n, o.quant, res.scales, res.zero_points, groups);  // original W, before the dead fix
  } else if (o.static_groups) {
    grids_from(zeroed.data(), rows, n, o.quant, res.scales, res.zero_points, groups);
    for (int64_t c = 0; c < n; ++c) res.group_index[static_cast<size_t>(c)] = static_cast<int32_t>(c / gsz);
  } else {
    groups = (n + gsz - 1) / gsz;
    res.scales.assign(static_cast<size_t>(rows * groups), 0.0f);
    res.zero_points.assign(static_cast<size_t>(rows * groups), 0.0f);
    for (int64_t c = 0; c < n; ++c) res.group_index[static_cast<size_t>(src(c))] = static_cast<int32_t>(c / gsz);
  }
  // Working weight in processing order (permuted when act_order).
  std::vector<float> Wp(static_cast<size_t>(rows * n)), Qp(static_cast<size_t>(rows * n));
  std::vector<uint8_t> codes(static_cast<size_t>(rows * n));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < n; ++c) Wp[static_cast<size_t>(r * n + c)] = zeroed[static_cast<size_t>(r * n + src(c))];
  std::vector<float>().swap(zeroed);

  const int64_t B = std::min(o.block_size, n);
  std::vector<float> err(static_cast<size_t>(rows * B));
  std::vector<double> loss(static_cast<size_t>(rows), 0.0);
  const int64_t tasks = (rows + kRowsPerTask - 1) / kRowsPerTask;
  for (int64_t i1 = 0; i1 < n; i1 += B) {
    const int64_t i2 = std::min(n, i1 + B), bw = i2 - i1;
    const float* hb = U + i1 * n + i1;
    pr.run(static_cast<size_t>(tasks), [&](size_t t) {
      std::vector<float> w1(static_cast<size_t>(bw));
      for (int64_t r = static_cast<int64_t>(t) * kRowsPerTask; r < std::min(rows, (static_cast<int64_t>(t) + 1) * kRowsPerTask); ++r) {
        const float* wr = Wp.data() + r * n;  // block-start state (the reference's `weight`), not written in the loop
        std::memcpy(w1.data(), wr + i1, sizeof(float) * static_cast<size_t>(bw));
        double lsum = 0;
        for (int64_t i = 0; i < bw; ++i) {
          const int64_t c = i1 + i;
          size_t gi;
          if (dynamic) {
            const int64_t g = c / gsz;
            gi = static_cast<size_t>(r * groups + g);
            if (c % gsz == 0) {
              const QParams p = find_qparams(wr + c, std::min(gsz, n - c), static_cast<int>(maxq), o.quant.symmetric);
              res.scales[gi] = p.scale;
              res.zero_points[gi] = p.zero;
            }
          } else {
            gi = static_cast<size_t>(r * groups + (gsz > 0 ? src(c) / gsz : 0));
          }
          const float w = w1[static_cast<size_t>(i)], d = hb[i * n + i];
          const float s = res.scales[gi], z = res.zero_points[gi];
          const float code = quantize_code(w, s, z, maxq);
          const float q = s * (code - z);
          Qp[static_cast<size_t>(r * n + c)] = q;
          codes[static_cast<size_t>(r * n + c)] = static_cast<uint8_t>(code);
          lsum += obs_column_update(w1.data(), hb + i * n, i, bw, w, q, d, &err[static_cast<size_t>(r * bw + i)]);
        }
        loss[static_cast<size_t>(r)] += lsum / 2;
      }
    });
    gemm_tiled(pr, rows, n - i2, bw, -1.0f, err.data(), bw, U + i1 * n + i2, n, Wp.data() + i2, n);
    if (o.on_block) o.on_block(i2, n);
  }
  res.weight.resize(static_cast<size_t>(rows * n));
  res.q.resize(static_cast<size_t>(rows * n));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < n; ++c) {
      res.weight[static_cast<size_t>(r * n + src(c))] = Qp[static_cast<size_t>(r * n + c)];
      res.q[static_cast<size_t>(r * n + src(c))] = codes[static_cast<size_t>(r * n + c)];
    }
  for (double l : loss) res.error += l;
  return res;
}

double relative_reconstruction_error(const float* w, const float* w_hat, int64_t rows, int64_t n, const Hessian& h,
                                     ThreadPool* pool) {
  if (n != h.columns() || rows <= 0) throw Error("EINVAL", "reconstruction error: weight and Hessian sizes differ");
  exec::use_single_threaded_blas();
  PoolRef pr(pool);
  // tr(D·H·Dᵀ) with H symmetric from its lower triangle: Σ over tiles (I, J<=I) of
  // (2 − [I==J]) · <D_I·H_IJ, D_J>, the diagonal tiles expanded to a dense symmetric copy.
  constexpr int64_t T = 256;
  const int64_t tiles = (n + T - 1) / T;
  std::vector<float> d(static_cast<size_t>(rows * n));
  for (size_t e = 0; e < d.size(); ++e) d[e] = w[e] - w_hat[e];
  std::vector<std::pair<int64_t, int64_t>> pairs;
  for (int64_t i = 0; i < tiles; ++i)
    for (int64_t j = 0; j <= i; ++j) pairs.emplace_back(i, j);
  std::vector<double> num(pairs.size(), 0.0), den(pairs.size(), 0.0);
  const float* H = h.data();
  pr.run(pairs.size(), [&](size_t t) {
    const auto [ti, tj] = pairs[t];
    const int64_t i0 = ti * T, i1 = std::min(n, i0 + T), j0 = tj * T, j1 = std::min(n, j0 + T);
    const int64_t iw = i1 - i0, jw = j1 - j0;
    std::vector<float> hd;
    const float* hij = H + i0 * n + j0;
    int64_t ldh = n;
    if (ti == tj) {
      hd.resize(static_cast<size_t>(iw * iw));
      for (int64_t a = 0; a < iw; ++a)
        for (int64_t b = 0; b < iw; ++b) hd[static_cast<size_t>(a * iw + b)] = h.at(i0 + a, i0 + b);
      hij = hd.data();
      ldh = iw;
    }
    std::vector<float> prod(static_cast<size_t>(rows * jw));
    const double weight_of = ti == tj ? 1.0 : 2.0;
    for (int pass = 0; pass < 2; ++pass) {
      const float* m = pass == 0 ? d.data() : w;
      linalg::sgemm(false, false, rows, jw, iw, 1.0f, m + i0, n, hij, ldh, 0.0f, prod.data(), jw);
      double s = 0;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t b = 0; b < jw; ++b) s += static_cast<double>(prod[static_cast<size_t>(r * jw + b)]) * m[r * n + j0 + b];
      (pass == 0 ? num : den)[t] = weight_of * s;
    }
  });
  double sn = 0, sd = 0;
  for (size_t t = 0; t < pairs.size(); ++t) {
    sn += num[t];
    sd += den[t];
  }
  if (sd == 0.0) return sn == 0.0 ? 0.0 : INFINITY;
  return sn / sd;
}

}  // namespace cmo::kernels
