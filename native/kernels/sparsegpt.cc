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
#include "../util/fp16.h"
#include "obs_quant.h"

namespace cmo::kernels {

namespace {

constexpr int64_t kRowsPerTask = 8;  // GPTQ's row tasks
constexpr int64_t kLanes = 16;       // rows SparseGPT's OBS loop takes at once (one AVX-512 vector)

// SparseGPT's row chunks (OBS loop + their lazy update, one task each): as large as keeps every
// thread busy (two chunks per thread), at most 128 rows, a multiple of kLanes. Each chunk's lazy
// update is one GEMM whose B (the factor's block row) is packed once per chunk, so larger chunks pack
// it fewer times (32-row chunks packed it 40 times per block at 1,280 rows). The chunking changes no
// bits: every row's OBS loop and every element's GEMM sum (k = block size <= the GEMM's kc) are the
// same whatever rows share a task.
int64_t rows_per_chunk(int64_t rows, unsigned threads) {
  const int64_t want = (rows + 2 * threads - 1) / (2 * static_cast<int64_t>(threads));
  return std::clamp<int64_t>((want + kLanes - 1) / kLanes * kLanes, kLanes, 128);
}

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

// C[m×n] += alpha·A[m×k]·B[k×n] in 2-D tiles on the pool (one single-threaded GEMM per tile, on the
// executor's faster backend).
void gemm_tiled(const PoolRef& pool, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                const float* b, int64_t ldb, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0 || k <= 0) return;
  constexpr int64_t kTm = 256, kTn = 1024;
  const int64_t tm = (m + kTm - 1) / kTm, tn = (n + kTn - 1) / kTn;
  pool.run(static_cast<size_t>(tm * tn), [&](size_t t) {
    const int64_t bi = static_cast<int64_t>(t) / tn, bj = static_cast<int64_t>(t) % tn;
    const int64_t i0 = bi * kTm, i1 = std::min(m, i0 + kTm), j0 = bj * kTn, j1 = std::min(n, j0 + kTn);
    exec::gemm(1, false, false, i1 - i0, j1 - j0, k, alpha, a + i0 * lda, lda, b + j0, ldb, 1.0f, c + i0 * ldc + j0, ldc);
  });
}

// SparseGPT's adaptive-mask score of one weight: w²/d² with dd = d·d (d = the factor's diagonal).
// One expression for the threshold search and the mask, so both see the same bits.
inline float obs_score(float w, float dd) { return (w * w) / dd; }

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__) && defined(__GLIBC__)
#define CMO_SPARSEGPT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CMO_SPARSEGPT_CLONES
#endif

// The block's scores of rows [r0, r1) into s ([rows, bw]) and the histogram of their top 11 bits
// (the radix select's first pass).
CMO_SPARSEGPT_CLONES
void block_scores(const float* W, int64_t n, int64_t r0, int64_t r1, int64_t i1, int64_t bw, const float* dd, float* s, uint32_t* hist) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* wr = W + r * n + i1;
    float* sr = s + r * bw;
    for (int64_t i = 0; i < bw; ++i) sr[i] = obs_score(wr[i], dd[i]);
    for (int64_t i = 0; i < bw; ++i) {
      uint32_t u;
      std::memcpy(&u, &sr[i], sizeof u);
      ++hist[u >> 21];
    }
  }
}

// Histogram of bits [shift, shift + bits) of the scores of rows [r0, r1), computed from W, whose bits
// under prefix_mask equal prefix (a radix-select pass without a score buffer).
CMO_SPARSEGPT_CLONES
void score_histogram_w(const float* W, int64_t n, int64_t r0, int64_t r1, int64_t i1, int64_t bw, const float* dd, uint32_t prefix,
                       uint32_t prefix_mask, int shift, uint32_t bins_mask, uint32_t* hist) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* wr = W + r * n + i1;
    for (int64_t i = 0; i < bw; ++i) {
      const float v = obs_score(wr[i], dd[i]);
      uint32_t u;
      std::memcpy(&u, &v, sizeof u);
      if ((u & prefix_mask) == prefix) ++hist[(u >> shift) & bins_mask];
    }
  }
}

// Histogram of bits [shift, shift + bits) of the scores [e0, e1) whose bits under prefix_mask equal
// prefix (a later radix-select pass).
CMO_SPARSEGPT_CLONES
void score_histogram(const float* s, int64_t e0, int64_t e1, uint32_t prefix, uint32_t prefix_mask, int shift, uint32_t bins_mask,
                     uint32_t* hist) {
  for (int64_t e = e0; e < e1; ++e) {
    uint32_t u;
    std::memcpy(&u, &s[e], sizeof u);
    if ((u & prefix_mask) == prefix) ++hist[(u >> shift) & bins_mask];
  }
}

// The k-th smallest (0-based) of a block's rows·bw scores — what std::nth_element on them picks — by
// a radix select on the bit patterns (for floats >= +0 the uint32 order is the value order): three
// histogram passes (11 + 11 + 10 bits) over row ranges split across the pool. With a buffer `s`
// (rows·bw floats) the first pass stores the scores for the others and the mask (one division per
// weight instead of four); without one (null) every pass recomputes them from W.
float kth_smallest_score(const PoolRef& pool, const float* W, int64_t n, int64_t rows, int64_t i1, int64_t bw, const float* dd,
                         int64_t k, float* s) {
  constexpr int kPasses = 3;
  constexpr int kShift[kPasses] = {21, 10, 0}, kBits[kPasses] = {11, 11, 10};
  const int64_t parts = std::min<int64_t>(static_cast<int64_t>(pool.p->size()) * 4, std::max<int64_t>(1, rows * bw / 16384));
  const int64_t step = (rows + parts - 1) / parts;
  uint32_t prefix = 0, prefix_mask = 0;
  std::vector<uint32_t> hist;
  for (int pass = 0; pass < kPasses; ++pass) {
    const int64_t bins = int64_t{1} << kBits[pass];
    hist.assign(static_cast<size_t>(parts * bins), 0);
    pool.run(static_cast<size_t>(parts), [&](size_t p) {
      const int64_t r0 = static_cast<int64_t>(p) * step, r1 = std::min(rows, r0 + step);
      uint32_t* h = hist.data() + static_cast<int64_t>(p) * bins;
      if (r0 >= r1) return;
      if (!s)
        score_histogram_w(W, n, r0, r1, i1, bw, dd, prefix, prefix_mask, kShift[pass], static_cast<uint32_t>(bins - 1), h);
      else if (pass == 0)
        block_scores(W, n, r0, r1, i1, bw, dd, s, h);
      else
        score_histogram(s, r0 * bw, r1 * bw, prefix, prefix_mask, kShift[pass], static_cast<uint32_t>(bins - 1), h);
    });
    int64_t b = 0;
    for (;; ++b) {
      int64_t c = 0;
      for (int64_t p = 0; p < parts; ++p) c += hist[static_cast<size_t>(p * bins + b)];
      if (k < c || b == bins - 1) break;
      k -= c;
    }
    prefix |= static_cast<uint32_t>(b) << kShift[pass];
    prefix_mask |= static_cast<uint32_t>(bins - 1) << kShift[pass];
  }
  float out;
  std::memcpy(&out, &prefix, sizeof out);
  return out;
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

namespace {

// One row of one processing block of SparseGPT (mask, optional quantization, OBS updates inside the
// block); the row's scaled errors go to err for the lazy batch update.
struct RowBlock {
  float* W;
  uint8_t* keep;
  uint8_t* codes;           // quantized: the survivors' grid codes (nullptr otherwise)
  const float* hb;          // U[i1:i2, i1:i2], row stride n
  int64_t n, i1, bw;
  const float* scores;      // adaptive mask: the block's scores [rows, bw] (or nullptr: from W and dd); <= thresh pruned
  const float* dd;          // adaptive mask: the block's d² per column (nullptr: n:m or nothing)
  float thresh;
  int m, nprune;            // n:m when m > 0
  const SparseGptResult* grid;  // quantized: its scales / zero_points (nullptr otherwise)
  int64_t groups, group_size, gs;
  float maxq;
  float* err;               // the row's scaled errors go to err[(r − err_row0)·bw + i] …
  int64_t err_row0;
  int64_t err_rows;         // … or, when > 0 (the chunk's rows), transposed: err[i·err_rows + r − err_row0]
};

// Returns the row's Σ (w − q)²/d². On x86-64 Linux GCC builds an AVX-512 / AVX2 / baseline clone
// (ifunc): the OBS update's lanes run the same IEEE operations in the same order as the scalar loop
// (no FMA contraction: -ffp-contract=off), so every clone gives identical bits.
CMO_SPARSEGPT_CLONES
double sparse_row_block(const RowBlock& c, int64_t r, float* w1, std::vector<std::pair<float, int64_t>>& cand) {
  const int64_t n = c.n, i1 = c.i1, bw = c.bw;
  float* wr = c.W + r * n;
  uint8_t* kr = c.keep + r * n + i1;
  if (c.scores)  // the block's adaptive mask: pruned up to the kth score inclusive
    for (int64_t i = 0; i < bw; ++i) kr[i] = c.scores[r * bw + i] <= c.thresh ? 0 : 1;
  else if (c.dd)
    for (int64_t i = 0; i < bw; ++i) kr[i] = obs_score(wr[i1 + i], c.dd[i]) <= c.thresh ? 0 : 1;
  std::memcpy(w1, wr + i1, sizeof(float) * static_cast<size_t>(bw));
  double lsum = 0;
  for (int64_t i = 0; i < bw; ++i) {
    if (c.m > 0 && i % c.m == 0) {
      // n:m: the n smallest w²/d² of the next m columns, on the error-updated weights.
      const int64_t e = std::min(bw, i + c.m), len = e - i;
      const int64_t npr = len == c.m ? c.nprune : c.nprune * len / c.m;  // proportional tail
      cand.clear();
      for (int64_t j = i; j < e; ++j) {
        const float d = c.hb[j * n + j];
        cand.emplace_back((w1[j] * w1[j]) / (d * d), j);
      }
      std::stable_sort(cand.begin(), cand.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      for (int64_t p = 0; p < npr; ++p) kr[cand[static_cast<size_t>(p)].second] = 0;
    }
    const float w = w1[i], d = c.hb[i * n + i];
    float q = kr[i] ? w : 0.0f;
    if (c.grid) {
      const size_t gi = static_cast<size_t>(r * c.groups + (c.group_size < 0 ? 0 : (i1 + i) / c.gs));
      const float s = c.grid->scales[gi], z = c.grid->zero_points[gi];
      const float code = quantize_code(q, s, z, c.maxq);
      q = s * (code - z);
      c.codes[r * n + i1 + i] = static_cast<uint8_t>(code);
    }
    wr[i1 + i] = q;
    float* slot = c.err_rows > 0 ? c.err + i * c.err_rows + (r - c.err_row0) : c.err + (r - c.err_row0) * bw + i;
    lsum += obs_column_update(w1, c.hb + i * n, i, bw, w, q, d, slot);
  }
  return lsum;
}

// sparse_row_block for kLanes rows [r0, r0 + kLanes) at once, unquantized and without n:m: the rows
// are transposed into wt ([bw][kLanes]) so that each column's OBS step is one vector across the rows
// (its error, loss and mask choice) and the update of the rest of the block one broadcast
// multiply-subtract per column — no per-row scalar work between short vector loops, and no
// store-to-load forwarding of w1[i] from the previous column's vector store. Every weight sees the
// same IEEE operations in the same order as in sparse_row_block (same bits); per-row losses go to lsum.
// The errors go to c.err transposed (c.err_rows > 0): one vector store per column.
CMO_SPARSEGPT_CLONES
void sparse_lanes_block(const RowBlock& c, int64_t r0, float* wt, uint8_t* kt, double* lsum) {
  constexpr int64_t L = kLanes;
  const int64_t n = c.n, i1 = c.i1, bw = c.bw;
  for (int64_t l = 0; l < L; ++l) {
    const float* wr = c.W + (r0 + l) * n + i1;
    uint8_t* kr = c.keep + (r0 + l) * n + i1;
    if (c.scores)
      for (int64_t i = 0; i < bw; ++i) kr[i] = c.scores[(r0 + l) * bw + i] <= c.thresh ? 0 : 1;
    else if (c.dd)
      for (int64_t i = 0; i < bw; ++i) kr[i] = obs_score(wr[i], c.dd[i]) <= c.thresh ? 0 : 1;
    for (int64_t i = 0; i < bw; ++i) wt[i * L + l] = wr[i];
    for (int64_t i = 0; i < bw; ++i) kt[i * L + l] = kr[i];
    lsum[l] = 0;
  }
  // GCC vector types (one AVX-512 register, two AVX2 ones, four SSE ones): left to itself the
  // vectorizer ran the update along j with permutes instead of across the lanes.
  typedef float V __attribute__((vector_size(kLanes * 4), aligned(4), may_alias));
  typedef int32_t VI __attribute__((vector_size(kLanes * 4), aligned(4)));
  typedef double VD __attribute__((vector_size(kLanes * 8), aligned(8)));
  VD loss = {};
  for (int64_t i = 0; i < bw; ++i) {
    const float d = c.hb[i * n + i];
    const float dd = d * d;
    const float* hrow = c.hb + i * n;
    V* wi = reinterpret_cast<V*>(wt + i * L);
    VI k;
    for (int64_t l = 0; l < L; ++l) k[l] = kt[i * L + l];
    const V w = *wi;
    const V q = k != 0 ? w : V{};
    const V diff = w - q;
    loss += __builtin_convertvector((diff * diff) / dd, VD);
    const V e = diff / d;
    std::memcpy(c.err + i * c.err_rows + (r0 - c.err_row0), &e, sizeof e);
    *wi = q;
    for (int64_t j = i + 1; j < bw; ++j) {
      V* wj = reinterpret_cast<V*>(wt + j * L);
      *wj -= e * hrow[j];
    }
  }
  for (int64_t l = 0; l < L; ++l) lsum[l] = loss[l];
  for (int64_t l = 0; l < L; ++l) {
    float* wr = c.W + (r0 + l) * n + i1;
    for (int64_t i = 0; i < bw; ++i) wr[i] = wt[i * L + l];
  }
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
  if (quant) {
    grids_from(weight, rows, n, o.quant, res.scales, res.zero_points, groups);  // unpruned W (coremltools)
    if (o.quant.fp16_scales)
      for (float& sc : res.scales) {
        sc = half_to_float(float_to_half(sc));
        if (!(sc > 0.0f)) sc = half_to_float(1);  // 2^-24, the smallest positive half
      }
    res.q.assign(static_cast<size_t>(rows * n), 0);
  }
  const int64_t gs = o.quant.group_size > 0 ? o.quant.group_size : n;
  float* W = res.weight.data();
  uint8_t* keep = res.keep_mask.data();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < n; ++c)
      if (f.dead[static_cast<size_t>(c)]) W[r * n + c] = 0.0f;

  // Rows are independent: a task takes kRowsPerChunk rows through the block's OBS loop and then
  // applies their lazy batch update, W[rows, i2:] −= Err1[rows] · U[i1:i2, i2:], at once. So the
  // scaled errors live in a per-task chunk×block_size buffer instead of a rows×block_size one, and a
  // block is one hand-off to the pool. Chunks are fixed-size: results do not depend on the thread count.
  const int64_t B = std::min(o.block_size, n);
  std::vector<double> loss(static_cast<size_t>(rows), 0.0);
  const int64_t chunk_rows = rows_per_chunk(rows, pr.p->size());
  const int64_t chunks = (rows + chunk_rows - 1) / chunk_rows;
  const bool adaptive = !nm && o.target_sparsity > 0.0;
  std::vector<float> dd(static_cast<size_t>(B));
  // The adaptive mask's scores of one block (rows·B floats), reused by every block — only where they
  // are small next to the Hessian (<= 1/32 of it), so the working memory stays ~1× H: at 1,280 × 1,280
  // they would be 0.1 H, and the select recomputes them from W instead.
  const bool score_buffer = adaptive && rows * B * 32 <= n * n;
  std::vector<float> scores(score_buffer ? static_cast<size_t>(rows * B) : 0);
  for (int64_t i1 = 0; i1 < n; i1 += B) {
    const int64_t i2 = std::min(n, i1 + B), bw = i2 - i1;
    const float* hb = U + i1 * n + i1;  // Hinv1 = U[i1:i2, i1:i2], row stride n
    float thresh = 0.0f;
    if (adaptive) {
      // Adaptive mask: w²/d² over the whole block (all rows), pruned up to the kth value inclusive.
      for (int64_t i = 0; i < bw; ++i) dd[static_cast<size_t>(i)] = hb[i * n + i] * hb[i * n + i];
      const int64_t numel = rows * bw;
      const int64_t k = std::min<int64_t>(numel - 1, static_cast<int64_t>(static_cast<double>(numel) * o.target_sparsity));
      thresh = kth_smallest_score(pr, W, n, rows, i1, bw, dd.data(), k, score_buffer ? scores.data() : nullptr);
    }
    pr.run(static_cast<size_t>(chunks), [&](size_t t) {
      const int64_t r0 = static_cast<int64_t>(t) * chunk_rows, r1 = std::min(rows, r0 + chunk_rows);
      // Per task: the chunk's scaled errors, transposed ([bw][rows]: the lanes store one vector per
      // column; the GEMM reads it as Aᵀ), and the lanes' transposed weights and mask.
      const int64_t cr = r1 - r0;
      std::vector<float> w1(static_cast<size_t>(bw * kLanes)), err(static_cast<size_t>(cr * bw));
      std::vector<uint8_t> kt(static_cast<size_t>(bw * kLanes));
      std::vector<std::pair<float, int64_t>> cand;
      const RowBlock rb{W, keep, res.q.empty() ? nullptr : res.q.data(), hb, n, i1, bw, score_buffer ? scores.data() : nullptr,
                        adaptive ? dd.data() : nullptr, thresh, nm ? o.m : 0, o.n,
                        quant ? &res : nullptr, groups, o.quant.group_size, gs, maxq, err.data(), r0, cr};
      int64_t r = r0;
      if (!nm && !quant && o.row_lanes) {
        double lsum[kLanes];
        for (; r + kLanes <= r1; r += kLanes) {
          sparse_lanes_block(rb, r, w1.data(), kt.data(), lsum);
          for (int64_t l = 0; l < kLanes; ++l) loss[static_cast<size_t>(r + l)] += lsum[l] / 2;
        }
      }
      for (; r < r1; ++r) loss[static_cast<size_t>(r)] += sparse_row_block(rb, r, w1.data(), cand) / 2;
      if (i2 < n) exec::gemm(1, true, false, cr, n - i2, bw, -1.0f, err.data(), cr, U + i1 * n + i2, n, 1.0f, W + r0 * n + i2, n);
    });
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
  // D = W − Ŵ is formed per tile pair (rows × tile columns) instead of as a rows×columns copy.
  constexpr int64_t T = 256;
  const int64_t tiles = (n + T - 1) / T;
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
    std::vector<float> prod(static_cast<size_t>(rows * jw)), di(static_cast<size_t>(rows * iw)), dj(static_cast<size_t>(rows * jw));
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t a = 0; a < iw; ++a) di[static_cast<size_t>(r * iw + a)] = w[r * n + i0 + a] - w_hat[r * n + i0 + a];
      for (int64_t b = 0; b < jw; ++b) dj[static_cast<size_t>(r * jw + b)] = w[r * n + j0 + b] - w_hat[r * n + j0 + b];
    }
    const double weight_of = ti == tj ? 1.0 : 2.0;
    for (int pass = 0; pass < 2; ++pass) {
      // pass 0: D_I·H_IJ·D_Jᵀ; pass 1: W_I·H_IJ·W_Jᵀ
      const float* mi = pass == 0 ? di.data() : w + i0;
      const float* mj = pass == 0 ? dj.data() : w + j0;
      const int64_t ldi = pass == 0 ? iw : n, ldj = pass == 0 ? jw : n;
      exec::gemm(1, false, false, rows, jw, iw, 1.0f, mi, ldi, hij, ldh, 0.0f, prod.data(), jw);
      double s = 0;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t b = 0; b < jw; ++b) s += static_cast<double>(prod[static_cast<size_t>(r * jw + b)]) * mj[r * ldj + b];
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
