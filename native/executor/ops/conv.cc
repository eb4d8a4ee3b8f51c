// conv / conv_transpose (1-3 spatial dims, groups, dilation, pad_type valid/same/same_lower/custom)
// through Winograd (3×3 stride 1, winograd.h), a direct GEMM (1×1) or im2col + sgemm, and
// max_pool / avg_pool / l2_pool.
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>

#include "../../linalg/blas.h"
#include "../../linalg/sgemm_kernels.h"
#include "../derived_cache.h"
#include "common.h"
#include "gemm.h"
#include "winograd.h"

namespace cmo::exec {

// Before/after padding of each spatial dim for conv-like ops (MIL pad_type rules).
struct SpatialPads {
  std::vector<int64_t> before, after;
};

SpatialPads conv_pads(OpContext& c, const Shape& in, const std::vector<int64_t>& k_eff, const std::vector<int64_t>& strides) {
  size_t n = in.size();
  std::string type = c.str("pad_type", "valid");
  SpatialPads p{std::vector<int64_t>(n, 0), std::vector<int64_t>(n, 0)};
  if (type == "valid") return p;
  if (type == "custom") {
    auto pad = c.ints("pad", std::vector<int64_t>(2 * n, 0));
    if (pad.size() != 2 * n) c.fail("pad must have 2 values per spatial dimension");
    for (size_t i = 0; i < n; ++i) p.before[i] = pad[2 * i], p.after[i] = pad[2 * i + 1];
    return p;
  }
  if (type != "same" && type != "same_lower") c.fail("unknown pad_type '" + type + "'");
  for (size_t i = 0; i < n; ++i) {
    int64_t out = (in[i] + strides[i] - 1) / strides[i];
    int64_t total = std::max<int64_t>(0, (out - 1) * strides[i] + k_eff[i] - in[i]);
    // 'same': an odd extra element goes after (TF SAME); 'same_lower': before.
    p.before[i] = type == "same" ? total / 2 : (total + 1) / 2;
    p.after[i] = total - p.before[i];
  }
  return p;
}

namespace {

struct ConvGeom {
  int64_t N, C, nsp;
  Shape in, k, out;
  std::vector<int64_t> stride, dil, pb;
};

// 2-D im2col: for each (channel, ky, kx) row and output row, the in-range output columns are one
// contiguous run of input (a memcpy at stride 1); only the padding border is zero-filled.
void im2col_2d(const float* x, int64_t C, const ConvGeom& g, int64_t t0, int64_t t1, float* col, unsigned threads) {
  const int64_t KH = g.k[0], KW = g.k[1], H = g.in[0], W = g.in[1], OW = g.out[1];
  const int64_t sh = g.stride[0], sw = g.stride[1], dh = g.dil[0], dw = g.dil[1], ph = g.pb[0], pw = g.pb[1];
  const int64_t T = t1 - t0;
  parallel_range(
      C * KH * KW, threads,
      [&](int64_t b, int64_t e) {
        for (int64_t row = b; row < e; ++row) {
          const int64_t ch = row / (KH * KW), ky = (row / KW) % KH, kx = row % KW;
          const float* xc = x + ch * H * W;
          float* dst = col + row * T;
          // Output columns whose input column ox·sw − pw + kx·dw lies in [0, W).
          const int64_t off = kx * dw - pw;
          int64_t lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
          int64_t hi = W - 1 - off < 0 ? 0 : (W - 1 - off) / sw + 1;
          lo = std::min(lo, OW);
          hi = std::max(lo, std::min(hi, OW));
          for (int64_t oy = t0 / OW; oy * OW < t1; ++oy) {
            const int64_t a = std::max(t0, oy * OW), z = std::min(t1, (oy + 1) * OW);
            float* d = dst + (a - t0);
            const int64_t xa = a - oy * OW, xz = z - oy * OW;  // this output row's columns [xa, xz)
            const int64_t iy = oy * sh - ph + ky * dh;
            if (iy < 0 || iy >= H) {
              std::fill(d, d + (xz - xa), 0.0f);
              continue;
            }
            const float* src = xc + iy * W;
            const int64_t l = std::max(lo, xa), h = std::min(hi, xz);
            if (l >= h) {
              std::fill(d, d + (xz - xa), 0.0f);
              continue;
            }
            std::fill(d, d + (l - xa), 0.0f);
            if (sw == 1) std::memcpy(d + (l - xa), src + l + off, static_cast<size_t>(h - l) * 4);
            else
              for (int64_t ox = l; ox < h; ++ox) d[ox - xa] = src[ox * sw + off];
            std::fill(d + (h - xa), d + (xz - xa), 0.0f);
          }
        }
      },
      1);
}

// col[(c*Kp + kk), t - t0] for output positions t in [t0, t1) of one image/group.
void im2col(const float* x, int64_t C, const ConvGeom& g, int64_t t0, int64_t t1, float* col, unsigned threads) {
  const int64_t kp = numel(g.k), T = t1 - t0;
  const int64_t inp = numel(g.in);
  const size_t ns = g.in.size();
  parallel_range(
      C * kp, threads,
      [&](int64_t b, int64_t e) {
        std::vector<int64_t> kidx(ns), oidx(ns);
        for (int64_t row = b; row < e; ++row) {
          int64_t ch = row / kp, kk = row % kp;
          for (size_t d = ns; d-- > 0;) kidx[d] = kk % g.k[d], kk /= g.k[d];
          const float* xc = x + ch * inp;
          float* dst = col + row * T;
          int64_t t = t0;
          for (size_t d = ns, rem = static_cast<size_t>(t); d-- > 0;) oidx[d] = static_cast<int64_t>(rem) % g.out[d], rem /= g.out[d];
          for (int64_t j = 0; j < T; ++j, ++t) {
            int64_t off = 0;
            bool inside = true;
            for (size_t d = 0; d < ns; ++d) {
              int64_t pos = oidx[d] * g.stride[d] - g.pb[d] + kidx[d] * g.dil[d];
              if (pos < 0 || pos >= g.in[d]) {
                inside = false;
                break;
              }
              off = off * g.in[d] + pos;
            }
            dst[j] = inside ? xc[off] : 0.f;
            for (size_t d = ns; d-- > 0;) {
              if (++oidx[d] < g.out[d]) break;
              oidx[d] = 0;
            }
          }
        }
      },
      1);
}

struct PackedWeights {
  std::shared_ptr<const std::vector<float>> hold;
  const float* data = nullptr;  // null: the GEMM packs the weights per call
  const linalg::detail::GemmKernel* kernel = nullptr;
  int64_t group_floats = 0;
};

// A constant conv weight packed once as the portable GEMM's A operand (when that GEMM is the
// executor's and the graph's derived-value budget has room); otherwise an empty result.
PackedWeights packed_conv_weights(OpContext& c, const Tensor& w, int64_t groups, int64_t cout_g, int64_t ck) {
  PackedWeights p;
  if (!w.derived || !linalg::executor_prefers_portable_gemm()) return p;
  const linalg::detail::GemmKernel& kern = linalg::detail::best_kernel();
  p.group_floats = static_cast<int64_t>(linalg::packed_a_floats(kern, cout_g, ck));
  const std::string key = std::string("gemm_a:") + kern.name + ":" + shape_str(w.shape) + ":g" + std::to_string(groups);
  p.hold = w.derived->get<std::vector<float>>(key, static_cast<size_t>(groups * p.group_floats) * sizeof(float), [&] {
    auto v = std::make_shared<std::vector<float>>(static_cast<size_t>(groups * p.group_floats));
    for (int64_t gi = 0; gi < groups; ++gi)
      linalg::pack_a_full(kern, false, cout_g, ck, w.fdata() + gi * cout_g * ck, ck, v->data() + gi * p.group_floats);
    return v;
  });
  if (p.hold) p.data = p.hold->data(), p.kernel = &kern;
  return p;
}

// The bias as fp32 (null when absent); throws when it does not have C_out elements.
const float* conv_bias(OpContext& c, int64_t cout, Tensor& holder) {
  const Tensor* bt = c.find("bias");
  if (!bt) return nullptr;
  holder = as_f32(*bt);
  if (holder.size() != cout) c.fail("bias must have C_out elements");
  return holder.fdata();
}

// 3×3, stride 1, dilation 1, ungrouped 2-D convs through Winograd F(m×m, 3×3) when its cost model
// says so. The transformed weights are built once per graph constant (DerivedCache, within the
// graph's budget); a weight that is not a cached constant is transformed per call only when the
// conv is big enough to pay for it, else this returns false and im2col runs.
bool try_winograd(OpContext& c, const Tensor& x, const Tensor& w, const ConvGeom& g, int64_t groups, Tensor& y) {
  if (g.nsp != 2 || groups != 1 || !winograd::enabled()) return false;
  if (g.k[0] != 3 || g.k[1] != 3 || g.stride[0] != 1 || g.stride[1] != 1 || g.dil[0] != 1 || g.dil[1] != 1) return false;
  const int64_t cout = w.shape[0];
  const winograd::Geometry wg{g.N, g.C, g.in[0], g.in[1], cout, g.out[0], g.out[1], g.pb[0], g.pb[1]};
  const winograd::GemmKernel& kern = winograd::default_kernel();
  const int m = winograd::choose_tile(wg, kern);
  if (m == 0) return false;
  std::shared_ptr<const winograd::Weights> cached;
  const winograd::Weights* u = nullptr;
  if (w.derived) {
    const std::string key = std::string("winograd") + std::to_string(m) + ":" + kern.name + ":" + shape_str(w.shape);
    cached = w.derived->get<winograd::Weights>(key, winograd::weights_bytes(cout, g.C, m, kern), [&] {
      auto made = std::make_shared<winograd::Weights>();
      winograd::transform_weights(w.fdata(), cout, g.C, m, kern, *made, c.threads());
      return made;
    });
    u = cached.get();
  }
  if (!u) {
    // The float64 weight transform costs about as much per weight as ~1000 tiles' GEMM work.
    const int64_t tiles = g.N * ((g.out[0] + m - 1) / m) * ((g.out[1] + m - 1) / m);
    if (tiles < 1024) return false;
    thread_local winograd::Weights scratch;  // kernel-level code: never used by two convs at once on one thread
    winograd::transform_weights(w.fdata(), cout, g.C, m, kern, scratch, c.threads());
    u = &scratch;
  }
  Tensor bias_holder;
  const float* bias = conv_bias(c, cout, bias_holder);
  winograd::conv3x3(wg, x.fdata(), *u, bias, y.fdata(), c.threads());
  return true;
}

void k_conv(OpContext& c) {
  Tensor x = as_f32(c.in("x")), w = as_f32(c.in("weight"));
  if (x.rank() < 3 || x.rank() > 5 || w.rank() != x.rank()) c.fail("x must be [N, C, *spatial] (1-3 spatial dims) and weight of the same rank");
  ConvGeom g;
  g.N = x.shape[0];
  g.C = x.shape[1];
  g.nsp = x.rank() - 2;
  g.in.assign(x.shape.begin() + 2, x.shape.end());
  g.k.assign(w.shape.begin() + 2, w.shape.end());
  int64_t groups = static_cast<int64_t>(c.num("groups", 1));
  int64_t cout = w.shape[0], cin_g = w.shape[1];
  if (groups < 1 || g.C != cin_g * groups || cout % groups != 0)
    c.fail("weight " + shape_str(w.shape) + " does not fit x " + shape_str(x.shape) + " with groups " + std::to_string(groups));
  g.stride = c.ints("strides", std::vector<int64_t>(g.nsp, 1));
  g.dil = c.ints("dilations", std::vector<int64_t>(g.nsp, 1));
  if (static_cast<int64_t>(g.stride.size()) != g.nsp || static_cast<int64_t>(g.dil.size()) != g.nsp) c.fail("strides/dilations need one value per spatial dim");
  std::vector<int64_t> keff(g.nsp);
  for (int64_t d = 0; d < g.nsp; ++d) keff[d] = (g.k[d] - 1) * g.dil[d] + 1;
  SpatialPads pads = conv_pads(c, g.in, keff, g.stride);
  g.pb = pads.before;
  for (int64_t d = 0; d < g.nsp; ++d) {
    int64_t span = g.in[d] + pads.before[d] + pads.after[d] - keff[d];
    if (span < 0) c.fail("kernel is larger than the padded input");
    g.out.push_back(span / g.stride[d] + 1);
  }
  Shape os{g.N, cout};
  os.insert(os.end(), g.out.begin(), g.out.end());
  // Every element is written below (Winograd's output transform, the bias fill, or a beta = 0 GEMM
  // that never reads C): no zero-fill of a recycled buffer.
  Tensor y = Tensor::f32_for_overwrite(os);
  if (try_winograd(c, x, w, g, groups, y)) {
    c.set(0, std::move(y));
    return;
  }
  const int64_t op = numel(g.out), ip = numel(g.in), kp = numel(g.k), cout_g = cout / groups, ck = cin_g * kp;
  bool pointwise = kp == 1;
  for (int64_t d = 0; d < g.nsp; ++d) pointwise = pointwise && g.stride[d] == 1 && g.pb[d] == 0 && g.out[d] == g.in[d];
  const int64_t tile = std::max<int64_t>(1, std::min<int64_t>(op, (int64_t{1} << 22) / std::max<int64_t>(ck, 1)));
  // The im2col buffer is kept per thread and reused (no allocation in steady state). Safe: a kernel
  // never runs inside another kernel on the same thread (the pool only runs loop chunks while waiting).
  thread_local std::vector<float> col;
  if (!pointwise && col.size() < static_cast<size_t>(ck * tile)) col.resize(static_cast<size_t>(ck * tile));
  // Bias first, then the GEMM accumulates onto it (beta = 1): one pass over y fewer.
  Tensor bias_t;
  const float* bias = conv_bias(c, cout, bias_t);
  if (bias) {
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t o = 0; o < cout; ++o) std::fill_n(y.fdata() + (n * cout + o) * op, op, bias[o]);
  }
  const float beta = bias ? 1.f : 0.f;
  // The weights as the GEMM's packed A, once per graph constant (each group's [cout_g × ck] block).
  const PackedWeights packed = packed_conv_weights(c, w, groups, cout_g, ck);
  auto conv_gemm = [&](int64_t gi, const float* wg, int64_t n_cols, const float* b, int64_t ldb, float* out) {
    if (packed.data)
      linalg::sgemm_portable_packed_a(*packed.kernel, c.threads(), false, cout_g, n_cols, ck, 1.f, packed.data + gi * packed.group_floats,
                                      false, wg, ck, b, ldb, beta, out, op);
    else
      gemm(c.threads(), false, false, cout_g, n_cols, ck, 1.f, wg, ck, b, ldb, beta, out, op);
  };
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t gi = 0; gi < groups; ++gi) {
      const float* xg = x.fdata() + (n * g.C + gi * cin_g) * ip;
      const float* wg = w.fdata() + gi * cout_g * ck;
      float* yg = y.fdata() + (n * cout + gi * cout_g) * op;
      if (pointwise) {  // the input itself is the GEMM's B: no copy
        conv_gemm(gi, wg, op, xg, ip, yg);
        continue;
      }
      for (int64_t t0 = 0; t0 < op; t0 += tile) {
        int64_t t1 = std::min(op, t0 + tile);
        if (g.nsp == 2) im2col_2d(xg, cin_g, g, t0, t1, col.data(), c.threads());
        else im2col(xg, cin_g, g, t0, t1, col.data(), c.threads());
        conv_gemm(gi, wg, t1 - t0, col.data(), t1 - t0, yg + t0);
      }
    }
  c.set(0, std::move(y));
}

void k_conv_transpose(OpContext& c) {
  Tensor x = as_f32(c.in("x")), w = as_f32(c.in("weight"));
  if (x.rank() < 3 || x.rank() > 5 || w.rank() != x.rank()) c.fail("x must be [N, C, *spatial] and weight of the same rank");
  const int64_t N = x.shape[0], C = x.shape[1], ns = x.rank() - 2;
  Shape in(x.shape.begin() + 2, x.shape.end()), k(w.shape.begin() + 2, w.shape.end());
  int64_t groups = static_cast<int64_t>(c.num("groups", 1));
  if (groups < 1 || w.shape[0] != C || C % groups != 0) c.fail("weight " + shape_str(w.shape) + " must be [C_in, C_out/groups, *K]");
  const int64_t cin_g = C / groups, cout_g = w.shape[1], cout = cout_g * groups;
  auto stride = c.ints("strides", std::vector<int64_t>(ns, 1));
  auto dil = c.ints("dilations", std::vector<int64_t>(ns, 1));
  std::string type = c.str("pad_type", "valid");
  std::vector<int64_t> full(ns), pb(ns, 0), out(ns);
  std::vector<int64_t> given;
  if (c.has("output_shape")) given = c.ints("output_shape");
  auto pad = c.ints("pad", std::vector<int64_t>(2 * ns, 0));
  for (int64_t d = 0; d < ns; ++d) {
    full[d] = (in[d] - 1) * stride[d] + (k[d] - 1) * dil[d] + 1;
    if (type == "custom") {
      pb[d] = pad[2 * d];
      out[d] = full[d] - pad[2 * d] - pad[2 * d + 1];
    } else if (type == "same" || type == "same_lower") {
      out[d] = in[d] * stride[d];
      int64_t total = std::max<int64_t>(0, full[d] - out[d]);
      pb[d] = type == "same" ? total / 2 : (total + 1) / 2;
    } else if (type == "valid") {
      out[d] = full[d];
    } else {
      c.fail("unknown pad_type '" + type + "'");
    }
    if (given.size() == static_cast<size_t>(ns + 2)) out[d] = given[d + 2];
    if (out[d] <= 0) c.fail("output size is not positive");
  }
  Shape os{N, cout};
  os.insert(os.end(), out.begin(), out.end());
  Tensor y = Tensor::f32(os);
  const int64_t ip = numel(in), kp = numel(k), opn = numel(out), rows = cout_g * kp;
  std::vector<float> col(static_cast<size_t>(rows * ip));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t gi = 0; gi < groups; ++gi) {
      const float* xg = x.fdata() + (n * C + gi * cin_g) * ip;
      const float* wg = w.fdata() + gi * cin_g * rows;
      gemm(c.threads(), true, false, rows, ip, cin_g, 1.f, wg, rows, xg, ip, 0.f, col.data(), ip);
      float* yg = y.fdata() + (n * cout + gi * cout_g) * opn;
      // col2im: scatter-add each (channel, kernel tap, input position) into the cropped output.
      parallel_range(
          cout_g, c.threads(),
          [&](int64_t b, int64_t e) {
            std::vector<int64_t> kidx(ns), iidx(ns);
            for (int64_t oc = b; oc < e; ++oc)
              for (int64_t kk = 0; kk < kp; ++kk) {
                for (int64_t d = ns, r = kk; d-- > 0;) kidx[d] = r % k[d], r /= k[d];
                const float* src = col.data() + (oc * kp + kk) * ip;
                std::fill(iidx.begin(), iidx.end(), 0);
                for (int64_t t = 0; t < ip; ++t) {
                  int64_t off = 0;
                  bool inside = true;
                  for (int64_t d = 0; d < ns; ++d) {
                    int64_t pos = iidx[d] * stride[d] + kidx[d] * dil[d] - pb[d];
                    if (pos < 0 || pos >= out[d]) {
                      inside = false;
                      break;
                    }
                    off = off * out[d] + pos;
                  }
                  if (inside) yg[oc * opn + off] += src[t];
                  for (int64_t d = ns; d-- > 0;) {
                    if (++iidx[d] < in[d]) break;
                    iidx[d] = 0;
                  }
                }
              }
          },
          1);
    }
  if (const Tensor* bt = c.find("bias")) {
    Tensor b = as_f32(*bt);
    if (b.size() != cout) c.fail("bias must have C_out elements");
    for (int64_t n = 0; n < N; ++n)
      for (int64_t o = 0; o < cout; ++o)
        for (int64_t t = 0; t < opn; ++t) y.fdata()[(n * cout + o) * opn + t] += b.fdata()[o];
  }
  c.set(0, std::move(y));
}

enum class Pool { Max, Avg, L2 };

template <Pool kind>
void k_pool(OpContext& c) {
  Tensor x = as_f32(c.in("x"));
  if (x.rank() < 3 || x.rank() > 5) c.fail("x must be [N, C, *spatial] with 1-3 spatial dims");
  const int64_t ns = x.rank() - 2, NC = x.shape[0] * x.shape[1];
  Shape in(x.shape.begin() + 2, x.shape.end());
  auto k = c.ints("kernel_sizes");
  auto stride = c.ints("strides", std::vector<int64_t>(ns, 1));
  if (static_cast<int64_t>(k.size()) != ns || static_cast<int64_t>(stride.size()) != ns) c.fail("kernel_sizes/strides need one value per spatial dim");
  SpatialPads p = conv_pads(c, in, k, stride);
  bool ceil_mode = c.flag("ceil_mode", false);
  bool exclude = c.flag("exclude_padding_from_average", false);
  Shape out;
  for (int64_t d = 0; d < ns; ++d) {
    int64_t span = in[d] + p.before[d] + p.after[d] - k[d];
    if (span < 0) c.fail("kernel is larger than the padded input");
    int64_t o = (ceil_mode ? (span + stride[d] - 1) / stride[d] : span / stride[d]) + 1;
    // torch rule: the last window must start inside the input or the left padding.
    if (ceil_mode && (o - 1) * stride[d] >= in[d] + p.before[d]) --o;
    out.push_back(o);
  }
  Shape os{x.shape[0], x.shape[1]};
  os.insert(os.end(), out.begin(), out.end());
  Tensor y = Tensor::f32(os);
  const int64_t ip = numel(in), opn = numel(out);
  parallel_range(
      NC * opn, c.threads(),
      [&](int64_t b, int64_t e) {
        std::vector<int64_t> oidx(ns), lo(ns), hi(ns), idx(ns);
        for (int64_t t = b; t < e; ++t) {
          int64_t nc = t / opn, r = t % opn;
          for (int64_t d = ns; d-- > 0;) oidx[d] = r % out[d], r /= out[d];
          int64_t padded_count = 1;
          for (int64_t d = 0; d < ns; ++d) {
            int64_t start = oidx[d] * stride[d] - p.before[d];
            int64_t end = std::min(start + k[d], in[d] + p.after[d]);
            padded_count *= end - start;
            lo[d] = std::max<int64_t>(start, 0);
            hi[d] = std::min(start + k[d], in[d]);
          }
          const float* xp = x.fdata() + nc * ip;
          double acc = kind == Pool::Max ? -std::numeric_limits<double>::infinity() : 0.0;
          int64_t count = 0;
          bool empty = false;
          for (int64_t d = 0; d < ns; ++d) empty = empty || lo[d] >= hi[d];
          if (!empty) {
            idx = lo;
            while (true) {
              int64_t off = 0;
              for (int64_t d = 0; d < ns; ++d) off = off * in[d] + idx[d];
              double v = xp[off];
              if (kind == Pool::Max) acc = std::max(acc, v);
              else if (kind == Pool::Avg) acc += v;
              else acc += v * v;
              ++count;
              int64_t d = ns - 1;
              for (; d >= 0; --d) {
                if (++idx[d] < hi[d]) break;
                idx[d] = lo[d];
              }
              if (d < 0) break;
            }
          }
          float res;
          if (kind == Pool::Max) res = static_cast<float>(acc);
          else if (kind == Pool::L2) res = static_cast<float>(std::sqrt(acc));
          else res = static_cast<float>(acc / static_cast<double>(exclude ? std::max<int64_t>(count, 1) : padded_count));
          y.fdata()[t] = res;
        }
      },
      256);
  c.set(0, std::move(y));
}

}  // namespace

void register_conv_ops() {
  register_kernel("conv", k_conv);
  register_kernel("conv_transpose", k_conv_transpose);
  register_kernel("max_pool", k_pool<Pool::Max>);
  register_kernel("avg_pool", k_pool<Pool::Avg>);
  register_kernel("l2_pool", k_pool<Pool::L2>);
}

}  // namespace cmo::exec
