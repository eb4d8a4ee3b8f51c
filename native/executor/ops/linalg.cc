// linear, matmul (batched, broadcasting, rank-1 operands), einsum (any two-operand equation without
// ellipsis): all lowered onto sgemm (OpenBLAS/Accelerate, portable fallback).
#include <cmath>
#include <limits>
#include <map>

#include "attention.h"
#include "common.h"
#include "fastmath.h"
#include "gemm.h"
#include "../../linalg/blas.h"
#include "../../linalg/sgemm_kernels.h"

namespace cmo::exec {
namespace {

// weight [D_out, D_in]; or the executor's once-prepared copy of a constant weight (graph.cc):
// weight_t [D_in, D_out] (transposed, for a system BLAS) or weight_packed (the portable GEMM's packed B,
// [D_in, D_out rounded up to NR], with weight_packed_n = D_out), so a call packs only x.
void k_linear(OpContext& c) {
  Tensor x = as_f32(c.in("x"));
  const bool packed = c.has("weight_packed");
  const bool pre_t = !packed && c.has("weight_t");
  Tensor w = as_f32(c.in(packed ? "weight_packed" : pre_t ? "weight_t" : "weight"));
  const linalg::detail::GemmKernel& kern = linalg::detail::best_kernel();
  int64_t din = -1, dout = -1;
  if (w.rank() == 2) {
    din = w.shape[packed || pre_t ? 0 : 1];
    dout = packed ? static_cast<int64_t>(c.in("weight_packed_n").at(0)) : w.shape[pre_t ? 1 : 0];
  }
  if (packed && (dout < 0 || static_cast<size_t>(w.size()) != linalg::packed_b_floats(kern, din, dout)))
    c.fail("weight_packed does not hold [" + std::to_string(dout) + ", " + std::to_string(din) + "] in this CPU's GEMM layout");
  if (w.rank() != 2 || x.rank() < 1 || x.shape.back() != din) {
    Shape ws = w.shape;
    if ((pre_t || packed) && ws.size() == 2) ws = {dout, din};
    c.fail("weight " + shape_str(ws) + " does not fit x " + shape_str(x.shape) + " (need [D_out, D_in])");
  }
  const int64_t m = x.size() / std::max<int64_t>(din, 1);
  Shape os = x.shape;
  os.back() = dout;
  Tensor y = Tensor::f32_for_overwrite(os);
  float beta = 0.f;
  if (const Tensor* b = c.find("bias")) {
    Tensor bf = as_f32(*b);
    if (bf.size() != dout) c.fail("bias has " + std::to_string(bf.size()) + " elements, expected " + std::to_string(dout));
    for (int64_t r = 0; r < m; ++r) std::copy(bf.fdata(), bf.fdata() + dout, y.fdata() + r * dout);
    beta = 1.f;
  }
  if (packed) linalg::sgemm_portable_packed_b(kern, c.threads(), false, m, dout, din, 1.f, x.fdata(), din, w.fdata(), beta, y.fdata(), dout);
  else if (pre_t) gemm(c.threads(), false, false, m, dout, din, 1.f, x.fdata(), din, w.fdata(), dout, beta, y.fdata(), dout);
  else gemm(c.threads(), false, true, m, dout, din, 1.f, x.fdata(), din, w.fdata(), din, beta, y.fdata(), dout);
  c.set(0, std::move(y));
}

// Batched C[b] = op(A[b]) · op(B[b]) with numpy batch broadcasting.
Tensor batched_matmul(const Tensor& a, bool ta, const Tensor& b, bool tb, const std::string& what, unsigned threads) {
  Shape as = a.shape, bs = b.shape;
  bool a_vec = as.size() == 1, b_vec = bs.size() == 1;
  if (a_vec) { as = {1, as[0]}; ta = false; }
  if (b_vec) { bs = {bs[0], 1}; tb = false; }
  int64_t m = ta ? as[as.size() - 1] : as[as.size() - 2];
  int64_t k = ta ? as[as.size() - 2] : as[as.size() - 1];
  int64_t k2 = tb ? bs[bs.size() - 1] : bs[bs.size() - 2];
  int64_t n = tb ? bs[bs.size() - 2] : bs[bs.size() - 1];
  if (k != k2) throw Error("EINVAL", what + ": inner dimensions differ (" + shape_str(a.shape) + " · " + shape_str(b.shape) + ")");
  Shape ab(as.begin(), as.end() - 2), bb(bs.begin(), bs.end() - 2);
  Shape batch = broadcast_shapes(ab, bb, what);
  auto sa = broadcast_strides(ab, batch), sb = broadcast_strides(bb, batch);
  int64_t nb = numel(batch);
  Shape os = batch;
  if (!a_vec) os.push_back(m);
  if (!b_vec) os.push_back(n);
  Tensor y = Tensor::f32(os);
  std::vector<const float*> pa(static_cast<size_t>(nb)), pb(static_cast<size_t>(nb));
  std::vector<float*> pc(static_cast<size_t>(nb));
  for (int64_t bi = 0; bi < nb; ++bi) {
    int64_t rem = bi, oa = 0, ob = 0;
    for (size_t d = batch.size(); d-- > 0;) {
      int64_t idx = rem % batch[d];
      rem /= batch[d];
      oa += idx * sa[d];
      ob += idx * sb[d];
    }
    pa[bi] = a.fdata() + oa * m * k;
    pb[bi] = b.fdata() + ob * k * n;
    pc[bi] = y.fdata() + bi * m * n;
  }
  if (nb > 0) gemm_batch(threads, ta, tb, m, n, k, nb, pa.data(), ta ? m : k, pb.data(), tb ? k : n, pc.data(), n);
  return y;
}

void k_matmul(OpContext& c) {
  Tensor x = as_f32(c.in("x")), y = as_f32(c.in("y"));
  if (x.rank() < 1 || y.rank() < 1) c.fail("operands must have rank >= 1");
  c.set(0, batched_matmul(x, c.flag("transpose_x", false), y, c.flag("transpose_y", false),
                          "op '" + c.node().name + "' (matmul)", c.threads()));
}

void k_einsum(OpContext& c) {
  auto vals = c.list("values");
  std::string eq = c.str("equation", "");
  const std::string what = "op '" + c.node().name + "' (einsum '" + eq + "')";
  size_t arrow = eq.find("->");
  size_t comma = eq.find(',');
  if (vals.size() != 2 || arrow == std::string::npos || comma == std::string::npos || comma > arrow)
    throw Error("EUNSUPPORTED", what + ": only two-operand equations with an explicit '->' are supported");
  auto strip = [](std::string s) {
    std::string o;
    for (char ch : s)
      if (ch != ' ') o += ch;
    return o;
  };
  std::string la = strip(eq.substr(0, comma)), lb = strip(eq.substr(comma + 1, arrow - comma - 1)), lo = strip(eq.substr(arrow + 2));
  Tensor a = as_f32(*vals[0]), b = as_f32(*vals[1]);
  if (la.size() != a.shape.size() || lb.size() != b.shape.size())
    throw Error("EINVAL", what + ": operand ranks do not match the equation");
  std::map<char, int64_t> size;
  auto note = [&](char ch, int64_t d) {
    auto it = size.find(ch);
    if (it == size.end() || it->second == 1) size[ch] = d;
    else if (d != 1 && d != it->second) throw Error("EINVAL", what + ": letter '" + std::string(1, ch) + "' has sizes " + std::to_string(it->second) + " and " + std::to_string(d));
  };
  for (size_t k = 0; k < la.size(); ++k) note(la[k], a.shape[k]);
  for (size_t k = 0; k < lb.size(); ++k) note(lb[k], b.shape[k]);
  std::string batch, left, right, contr;
  for (char ch : lo) {
    bool ia = la.find(ch) != std::string::npos, ib = lb.find(ch) != std::string::npos;
    if (!ia && !ib) throw Error("EINVAL", what + ": output letter '" + std::string(1, ch) + "' is in no operand");
    (ia && ib ? batch : ia ? left : right) += ch;
  }
  for (char ch : la)
    if (lo.find(ch) == std::string::npos) {
      if (lb.find(ch) == std::string::npos) throw Error("EUNSUPPORTED", what + ": summing a letter of one operand only is not supported");
      contr += ch;
    }
  for (char ch : lb)
    if (lo.find(ch) == std::string::npos && la.find(ch) == std::string::npos)
      throw Error("EUNSUPPORTED", what + ": summing a letter of one operand only is not supported");
  // Gathers operand `t` (letters `l`) into the layout `order`, broadcasting size-1 axes.
  auto arrange = [&](const Tensor& t, const std::string& l, const std::string& order) {
    Shape shape;
    std::vector<int64_t> st;
    auto src = strides_of(t.shape);
    for (char ch : order) {
      shape.push_back(size[ch]);
      size_t p = l.find(ch);
      st.push_back(p == std::string::npos || t.shape[p] == 1 ? 0 : src[p]);
    }
    return strided_tensor(t, st, 0, shape, c.threads());
  };
  Tensor A = arrange(a, la, batch + left + contr);
  Tensor B = arrange(b, lb, batch + contr + right);
  auto prod = [&](const std::string& s) {
    int64_t p = 1;
    for (char ch : s) p *= size[ch];
    return p;
  };
  int64_t nb = prod(batch), m = prod(left), k = prod(contr), n = prod(right);
  Tensor C = Tensor::f32({nb * m * n});
  std::vector<const float*> pa(static_cast<size_t>(nb)), pb(static_cast<size_t>(nb));
  std::vector<float*> pc(static_cast<size_t>(nb));
  for (int64_t bi = 0; bi < nb; ++bi) pa[bi] = A.fdata() + bi * m * k, pb[bi] = B.fdata() + bi * k * n, pc[bi] = C.fdata() + bi * m * n;
  if (nb > 0) gemm_batch(c.threads(), false, false, m, n, k, nb, pa.data(), k, pb.data(), n, pc.data(), n);
  std::string cl = batch + left + right;
  Shape cshape;
  for (char ch : cl) cshape.push_back(size[ch]);
  C = C.reshaped(cshape);
  auto cst = strides_of(cshape);
  Shape os;
  std::vector<int64_t> st;
  for (char ch : lo) {
    os.push_back(size[ch]);
    st.push_back(cst[cl.find(ch)]);
  }
  c.set(0, strided_tensor(C, st, 0, os, c.threads()));
}

// scaled_dot_product_attention (iOS18): softmax(Q·K^T / sqrt(E) + mask)·V over the last two axes,
// batch axes broadcast; a bool mask keeps positions where it is true (others get -inf), a row with
// every key masked is zero. The tiled online-softmax kernel of attention.h: never the whole score matrix.
void k_sdpa(OpContext& c) {
  Tensor q = as_f32(c.in("query")), k = as_f32(c.in("key")), v = as_f32(c.in("value"));
  if (q.rank() < 3 || k.rank() < 3 || v.rank() < 3) c.fail("query/key/value must have rank >= 3");
  AttentionInputs in;
  in.q = &q, in.k = &k, in.v = &v;
  Tensor m;
  if (const Tensor* mp = c.find("attn_mask")) {
    m = mp->is_half_backed() ? as_f32(*mp) : *mp;
    in.mask = &m;
  }
  in.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(q.shape.back())));
  in.masked_rows_zero = true;
  c.set(0, attention(in, "op '" + c.node().name + "' (scaled_dot_product_attention)", c.threads()));
}

}  // namespace

void register_linalg_ops() {
  register_kernel("scaled_dot_product_attention", k_sdpa);
  register_kernel("linear", k_linear);
  register_kernel("matmul", k_matmul);
  register_kernel("einsum", k_einsum);
}

}  // namespace cmo::exec
