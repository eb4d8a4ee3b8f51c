#include "attention.h"

#include <cmath>
#include <limits>
#include <vector>

#include "common.h"
#include "gemm.h"
#include "vecmath.h"

namespace cmo::exec {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// numpy broadcast without throwing.
bool try_broadcast(const Shape& a, const Shape& b, Shape& out) {
  const size_t r = std::max(a.size(), b.size());
  out.assign(r, 1);
  for (size_t k = 0; k < r; ++k) {
    const int64_t da = k < r - a.size() ? 1 : a[k - (r - a.size())];
    const int64_t db = k < r - b.size() ? 1 : b[k - (r - b.size())];
    if (da != db && da != 1 && db != 1) return false;
    out[k] = da == 1 ? db : da;
  }
  return true;
}

struct Layout {
  int64_t L = 0, S = 0, E = 0, Ev = 0;
  Shape batch;
  std::vector<int64_t> sq, sk, sv;  // batch strides of q / k / v, in matrices
  std::vector<int64_t> mst;         // mask strides over [batch..., L, S], in elements
  std::string problem;
};

Layout layout_of(const AttentionInputs& in) {
  Layout l;
  auto bad = [&l](std::string why) {
    l.problem = std::move(why);
    return l;
  };
  if (!in.q || !in.k || !in.v) return bad("query, key and value are required");
  const Tensor &q = *in.q, &k = *in.k, &v = *in.v;
  if (!q.f || !k.f || !v.f) return bad("query, key and value must be fp32 tensors");
  if (q.rank() < 2 || k.rank() < 2 || v.rank() < 2) return bad("query/key/value must have rank >= 2");
  const int64_t kr = k.rank(), vr = v.rank();
  l.L = q.shape[q.shape.size() - 2];
  l.E = q.shape.back();
  l.S = in.k_transposed ? k.shape.back() : k.shape[kr - 2];
  const int64_t kE = in.k_transposed ? k.shape[kr - 2] : k.shape.back();
  const int64_t vS = in.v_transposed ? v.shape.back() : v.shape[vr - 2];
  l.Ev = in.v_transposed ? v.shape[vr - 2] : v.shape.back();
  if (kE != l.E) return bad("key's feature size " + std::to_string(kE) + " differs from query's " + std::to_string(l.E));
  if (vS != l.S) return bad("value has " + std::to_string(vS) + " rows, key has " + std::to_string(l.S));
  const Shape qb(q.shape.begin(), q.shape.end() - 2), kb(k.shape.begin(), k.shape.end() - 2), vb(v.shape.begin(), v.shape.end() - 2);
  Shape qk;
  if (!try_broadcast(qb, kb, qk) || !try_broadcast(qk, vb, l.batch))
    return bad("batch axes of query " + shape_str(q.shape) + ", key " + shape_str(k.shape) + " and value " + shape_str(v.shape) +
               " do not broadcast");
  l.sq = broadcast_strides(qb, l.batch);
  l.sk = broadcast_strides(kb, l.batch);
  l.sv = broadcast_strides(vb, l.batch);
  if (in.mask) {
    Shape scores = l.batch;
    scores.push_back(l.L);
    scores.push_back(l.S);
    Shape joined;
    if (!try_broadcast(scores, in.mask->shape, joined) || joined != scores)
      return bad("attn_mask " + shape_str(in.mask->shape) + " does not broadcast to the scores " + shape_str(scores));
    if (in.mask->dtype == DType::Str || (in.mask->dtype == DType::F32 ? !in.mask->f : !in.mask->i))
      return bad("attn_mask must be a float, int or bool tensor");
    l.mst = broadcast_strides(in.mask->shape, scores);
  }
  return l;
}

// Element offsets of batch entry `bi` in q, k, v (matrices) and the mask (elements).
struct Offsets {
  int64_t q = 0, k = 0, v = 0, m = 0;
};
Offsets offsets_of(const Layout& l, int64_t bi, bool masked) {
  Offsets o;
  for (int64_t d = static_cast<int64_t>(l.batch.size()) - 1, rem = bi; d >= 0; --d) {
    const int64_t idx = rem % l.batch[d];
    rem /= l.batch[d];
    o.q += idx * l.sq[d], o.k += idx * l.sk[d], o.v += idx * l.sv[d];
    if (masked) o.m += idx * l.mst[d];
  }
  return o;
}

// Adds (float / int mask) or applies (bool mask: -inf where false) the mask to one row of scores.
void apply_mask(const Tensor& m, int64_t base, int64_t step, float* p, int64_t n) {
  if (m.dtype == DType::Bool) {
    const int32_t* mp = m.idata() + base;
    for (int64_t j = 0; j < n; ++j) p[j] = mp[j * step] ? p[j] : kNegInf;
  } else if (m.dtype == DType::F32) {
    const float* mp = m.fdata() + base;
    if (step == 1)
      for (int64_t j = 0; j < n; ++j) p[j] += mp[j];
    else
      for (int64_t j = 0; j < n; ++j) p[j] += mp[j * step];
  } else {
    const int32_t* mp = m.idata() + base;
    for (int64_t j = 0; j < n; ++j) p[j] += static_cast<float>(mp[j * step]);
  }
}

}  // namespace

std::string attention_problem(const AttentionInputs& in) { return layout_of(in).problem; }

Tensor attention(const AttentionInputs& in, const std::string& what, unsigned threads, int64_t key_block) {
  const Layout l = layout_of(in);
  if (!l.problem.empty()) throw Error("EINVAL", what + ": " + l.problem);
  const int64_t L = l.L, S = l.S, E = l.E, Ev = l.Ev, nb = numel(l.batch);
  Shape os = l.batch;
  os.push_back(L);
  os.push_back(Ev);
  Tensor y = Tensor::f32(os);
  if (L == 0 || Ev == 0 || nb == 0) return y;
  const float* qd = in.q->fdata();
  const float* kd = in.k->fdata();
  const float* vd = in.v->fdata();
  const Tensor* mask = in.mask;
  const bool kt = in.k_transposed, vt = in.v_transposed;
  const int64_t Bk = std::max<int64_t>(1, std::min(key_block, S));
  // Query rows per task: 128 (one K / V block packed for the GEMMs serves 128 rows; measured 10-30 %
  // less CPU time than 64 on SD / SDXL shapes), the whole sequence when it is short (CLIP's 77 tokens:
  // no ragged second tile), fewer when that would leave threads idle.
  unsigned pool = threads ? threads : ThreadPool::global()->size();
  int64_t rows_per = L <= 192 ? L : 128;
  while (rows_per > 16 && nb * ((L + rows_per - 1) / rows_per) < static_cast<int64_t>(pool)) rows_per = (rows_per + 1) / 2;
  const int64_t tiles = (L + rows_per - 1) / rows_per;
  const int64_t mrow = mask ? l.mst[l.mst.size() - 2] : 0, mcol = mask ? l.mst.back() : 0;
  float* yd = y.fdata();
  parallel_for(
      static_cast<size_t>(nb * tiles),
      [&](size_t task) {
        const int64_t bi = static_cast<int64_t>(task) / tiles, i0 = (static_cast<int64_t>(task) % tiles) * rows_per;
        const int64_t rows = std::min(rows_per, L - i0);
        const Offsets off = offsets_of(l, bi, mask != nullptr);
        // Per-thread scratch, grown once and reused (no allocation in steady state).
        thread_local std::vector<float> scratch;
        const size_t need = static_cast<size_t>(rows * Bk + 2 * rows);
        if (scratch.size() < need) scratch.resize(need);
        float* sc = scratch.data();
        float* mx = sc + rows * Bk;  // running row max
        float* sum = mx + rows;      // running row sum of exp
        std::fill(mx, mx + rows, kNegInf);
        std::fill(sum, sum + rows, 0.f);
        const float* qp = qd + off.q * L * E + i0 * E;
        const float* kb = kd + off.k * S * E;
        const float* vb = vd + off.v * S * Ev;
        float* o = yd + (bi * L + i0) * Ev;
        for (int64_t j0 = 0; j0 < S; j0 += Bk) {
          const int64_t bk = std::min(Bk, S - j0);
          // Scores of this tile: scale · Q[rows] · K[j0 .. j0+bk]ᵀ.
          if (kt) gemm(1, false, false, rows, bk, E, in.scale, qp, E, kb + j0, S, 0.f, sc, bk);
          else gemm(1, false, true, rows, bk, E, in.scale, qp, E, kb + j0 * E, E, 0.f, sc, bk);
          for (int64_t i = 0; i < rows; ++i) {
            float* p = sc + i * bk;
            if (mask) apply_mask(*mask, off.m + (i0 + i) * mrow + j0 * mcol, mcol, p, bk);
            const float m_new = std::max(mx[i], vec::max_of(p, bk));
            if (m_new == kNegInf) {  // every key so far masked: contributes nothing yet
              std::fill(p, p + bk, 0.f);
              continue;
            }
            const float s = static_cast<float>(vec::exp_shift_sum(p, m_new, p, bk));
            if (j0 > 0 && m_new != mx[i]) {
              // A larger max: rescale what was accumulated under the old one (exp(-inf) = 0 clears it).
              const float corr = std::exp(mx[i] - m_new);
              sum[i] *= corr;
              vec::scale(o + i * Ev, corr, Ev);
            }
            mx[i] = m_new;
            sum[i] += s;
          }
          // O[rows] (+)= P · V[j0 .. j0+bk].
          if (vt) gemm(1, false, true, rows, Ev, bk, 1.f, sc, bk, vb + j0, S, j0 == 0 ? 0.f : 1.f, o, Ev);
          else gemm(1, false, false, rows, Ev, bk, 1.f, sc, bk, vb + j0 * Ev, Ev, j0 == 0 ? 0.f : 1.f, o, Ev);
        }
        for (int64_t i = 0; i < rows; ++i) {
          float* orow = o + i * Ev;
          if (sum[i] > 0) vec::scale(orow, 1.0f / sum[i], Ev);
          else std::fill(orow, orow + Ev, in.masked_rows_zero ? 0.f : std::numeric_limits<float>::quiet_NaN());
        }
      },
      1, pool);
  return y;
}

Tensor attention_reference(const AttentionInputs& in, const std::string& what) {
  const Layout l = layout_of(in);
  if (!l.problem.empty()) throw Error("EINVAL", what + ": " + l.problem);
  const int64_t L = l.L, S = l.S, E = l.E, Ev = l.Ev, nb = numel(l.batch);
  Shape os = l.batch;
  os.push_back(L);
  os.push_back(Ev);
  Tensor y = Tensor::f32(os);
  std::vector<double> s(static_cast<size_t>(S));
  for (int64_t bi = 0; bi < nb; ++bi) {
    const Offsets off = offsets_of(l, bi, in.mask != nullptr);
    const float* q = in.q->fdata() + off.q * L * E;
    const float* k = in.k->fdata() + off.k * S * E;
    const float* v = in.v->fdata() + off.v * S * Ev;
    for (int64_t i = 0; i < L; ++i) {
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < S; ++j) {
        double acc = 0;
        for (int64_t e = 0; e < E; ++e) acc += static_cast<double>(q[i * E + e]) * (in.k_transposed ? k[e * S + j] : k[j * E + e]);
        acc *= in.scale;
        if (in.mask) {
          const int64_t mi = off.m + i * l.mst[l.mst.size() - 2] + j * l.mst.back();
          if (in.mask->dtype == DType::Bool) acc = in.mask->idata()[mi] ? acc : -std::numeric_limits<double>::infinity();
          else acc += in.mask->dtype == DType::F32 ? in.mask->fdata()[mi] : in.mask->idata()[mi];
        }
        s[j] = acc;
        mx = std::max(mx, acc);
      }
      double total = 0;
      for (int64_t j = 0; j < S; ++j) total += (s[j] = mx == -std::numeric_limits<double>::infinity() ? 0.0 : std::exp(s[j] - mx));
      for (int64_t c = 0; c < Ev; ++c) {
        double acc = 0;
        for (int64_t j = 0; j < S; ++j) acc += s[j] * (in.v_transposed ? v[c * S + j] : v[j * Ev + c]);
        float r = total > 0 ? static_cast<float>(acc / total) : (in.masked_rows_zero ? 0.f : std::numeric_limits<float>::quiet_NaN());
        y.fdata()[(bi * L + i) * Ev + c] = r;
      }
    }
  }
  return y;
}

void fused_attention_kernel(OpContext& c) {
  Tensor q = as_f32(c.in("query")), k = as_f32(c.in("key")), v = as_f32(c.in("value"));
  Tensor m;
  AttentionInputs in;
  in.q = &q, in.k = &k, in.v = &v;
  if (const Tensor* mp = c.find("attn_mask")) {
    m = mp->is_half_backed() ? as_f32(*mp) : *mp;
    in.mask = &m;
  }
  in.scale = static_cast<float>(c.num("scale", 1.0));
  in.k_transposed = c.flag("key_transposed", false);
  in.v_transposed = c.flag("value_transposed", false);
  in.masked_rows_zero = false;  // softmax's 0/0
  const Layout l = layout_of(in);
  const int64_t axis = static_cast<int64_t>(c.num("softmax_axis", -1));
  const int64_t scores_rank = static_cast<int64_t>(l.batch.size()) + 2;
  if (!l.problem.empty() || (axis != -1 && axis != scores_rank - 1)) {
    c.decline();  // the original ops run instead (and report their own error if there is one)
    return;
  }
  c.set(0, attention(in, "op '" + c.node().name + "' (fused attention)", c.threads()));
}

}  // namespace cmo::exec
