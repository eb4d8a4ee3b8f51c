// Slow float64 references of SparseGPT (`fasterprune`) and GPTQ (coremltools `GPTQ._compress_impl`
// / IST-DASLab `fasterquant`), written as the Python reads: three factorizations for the inverse
// factor, whole-column operations in plain loops, a full sort for the threshold. Test oracles only.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "../util/error.h"
#include "sparsegpt.h"

namespace cmo::kernels {

namespace {

using Mat = std::vector<double>;

// torch.linalg.cholesky (lower): A = L·Lᵀ.
Mat cholesky_lower(const Mat& a, int64_t n) {
  Mat l(static_cast<size_t>(n * n), 0.0);
  for (int64_t j = 0; j < n; ++j) {
    double s = a[static_cast<size_t>(j * n + j)];
    for (int64_t k = 0; k < j; ++k) s -= l[static_cast<size_t>(j * n + k)] * l[static_cast<size_t>(j * n + k)];
    if (!(s > 0)) throw Error("ENOTPD", "reference: matrix is not positive definite");
    const double d = std::sqrt(s);
    l[static_cast<size_t>(j * n + j)] = d;
    for (int64_t i = j + 1; i < n; ++i) {
      double t = a[static_cast<size_t>(i * n + j)];
      for (int64_t k = 0; k < j; ++k) t -= l[static_cast<size_t>(i * n + k)] * l[static_cast<size_t>(j * n + k)];
      l[static_cast<size_t>(i * n + j)] = t / d;
    }
  }
  return l;
}

// torch.cholesky_inverse(L) = (L·Lᵀ)⁻¹ = L⁻ᵀ·L⁻¹.
Mat cholesky_inverse(const Mat& l, int64_t n) {
  Mat li(static_cast<size_t>(n * n), 0.0);  // L⁻¹ by forward substitution, column by column
  for (int64_t c = 0; c < n; ++c)
    for (int64_t i = c; i < n; ++i) {
      double s = i == c ? 1.0 : 0.0;
      for (int64_t k = c; k < i; ++k) s -= l[static_cast<size_t>(i * n + k)] * li[static_cast<size_t>(k * n + c)];
      li[static_cast<size_t>(i * n + c)] = s / l[static_cast<size_t>(i * n + i)];
    }
  Mat out(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t k = std::max(i, j); k < n; ++k) s += li[static_cast<size_t>(k * n + i)] * li[static_cast<size_t>(k * n + j)];
      out[static_cast<size_t>(i * n + j)] = s;
    }
  return out;
}

// torch.linalg.cholesky(A, upper=True): A = Uᵀ·U.
Mat cholesky_upper(const Mat& a, int64_t n) {
  Mat u(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    double s = a[static_cast<size_t>(i * n + i)];
    for (int64_t k = 0; k < i; ++k) s -= u[static_cast<size_t>(k * n + i)] * u[static_cast<size_t>(k * n + i)];
    if (!(s > 0)) throw Error("ENOTPD", "reference: inverse is not positive definite");
    const double d = std::sqrt(s);
    u[static_cast<size_t>(i * n + i)] = d;
    for (int64_t j = i + 1; j < n; ++j) {
      double t = a[static_cast<size_t>(i * n + j)];
      for (int64_t k = 0; k < i; ++k) t -= u[static_cast<size_t>(k * n + i)] * u[static_cast<size_t>(k * n + j)];
      u[static_cast<size_t>(i * n + j)] = t / d;
    }
  }
  return u;
}

struct RefQuant {
  double scale, zero;
};

RefQuant ref_find_params(const std::vector<double>& x, int maxq, bool sym) {
  double lo = 0, hi = 0;
  for (double v : x) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (sym) {
    hi = std::max(std::fabs(lo), hi);
    if (lo < 0) lo = -hi;
  }
  if (lo == 0 && hi == 0) {
    lo = -1;
    hi = 1;
  }
  const double scale = (hi - lo) / maxq;
  return {scale, sym ? (maxq + 1) / 2.0 : std::nearbyint(-lo / scale)};
}

double ref_code(double x, const RefQuant& p, int maxq) {
  return std::clamp(std::nearbyint(x / p.scale) + p.zero, 0.0, static_cast<double>(maxq));
}

// Grids from `w` [rows × n]: per tensor (gs < 0), per channel (0) or per group of gs columns.
std::vector<RefQuant> ref_grids(const Mat& w, int64_t rows, int64_t n, const QuantGrid& q, int64_t& groups) {
  const int maxq = (1 << q.bits) - 1;
  groups = q.group_size > 0 ? (n + q.group_size - 1) / q.group_size : 1;
  std::vector<RefQuant> out;
  if (q.group_size < 0) {
    const RefQuant p = ref_find_params(w, maxq, q.symmetric);
    out.assign(static_cast<size_t>(rows), p);
    return out;
  }
  const int64_t gs = q.group_size > 0 ? q.group_size : n;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < groups; ++g) {
      std::vector<double> x;
      for (int64_t c = g * gs; c < std::min(n, (g + 1) * gs); ++c) x.push_back(w[static_cast<size_t>(r * n + c)]);
      out.push_back(ref_find_params(x, maxq, q.symmetric));
    }
  return out;
}

// Dead fix + dampening as the reference: returns the damped H and marks dead columns.
Mat damped(const std::vector<double>& h, int64_t n, double percdamp, std::vector<uint8_t>& dead) {
  Mat a = h;
  dead.assign(static_cast<size_t>(n), 0);
  for (int64_t i = 0; i < n; ++i)
    if (a[static_cast<size_t>(i * n + i)] == 0) {
      dead[static_cast<size_t>(i)] = 1;
      a[static_cast<size_t>(i * n + i)] = 1;
    }
  double mean = 0;
  for (int64_t i = 0; i < n; ++i) mean += a[static_cast<size_t>(i * n + i)];
  mean /= static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i) a[static_cast<size_t>(i * n + i)] += percdamp * mean;
  return a;
}

}  // namespace

std::vector<double> inverse_factor_ref(std::vector<double> hd, int64_t n) {
  const Mat l = cholesky_lower(hd, n);
  const Mat hinv = cholesky_inverse(l, n);
  return cholesky_upper(hinv, n);
}

SparseGptResult sparse_gpt_ref(const float* weight, int64_t rows, int64_t n, const std::vector<double>& h,
                               const SparseGptOptions& o) {
  SparseGptResult res;
  Mat W(weight, weight + rows * n);
  const bool quant = o.quant.bits > 0;
  const int maxq = (1 << o.quant.bits) - 1;
  int64_t groups = 1;
  std::vector<RefQuant> grids;
  if (quant) grids = ref_grids(W, rows, n, o.quant, groups);
  const int64_t gs = o.quant.group_size > 0 ? o.quant.group_size : n;
  std::vector<uint8_t> dead;
  const Mat U = inverse_factor_ref(damped(h, n, o.dampening, dead), n);
  for (int64_t c = 0; c < n; ++c)
    if (dead[static_cast<size_t>(c)]) {
      ++res.dead_columns;
      for (int64_t r = 0; r < rows; ++r) W[static_cast<size_t>(r * n + c)] = 0;
    }
  res.keep_mask.assign(static_cast<size_t>(rows * n), 1);
  const bool nm = o.n != 0 || o.m != 0;
  if (nm) res.tail_note = nm_tail_note(n, o.n, o.m);
  for (int64_t i1 = 0; i1 < n; i1 += o.block_size) {
    const int64_t i2 = std::min(i1 + o.block_size, n), count = i2 - i1;
    Mat W1(static_cast<size_t>(rows * count)), Q1(static_cast<size_t>(rows * count), 0), Err1(static_cast<size_t>(rows * count), 0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < count; ++i) W1[static_cast<size_t>(r * count + i)] = W[static_cast<size_t>(r * n + i1 + i)];
    auto hinv1 = [&](int64_t a, int64_t b) { return U[static_cast<size_t>((i1 + a) * n + i1 + b)]; };
    std::vector<uint8_t> mask1(static_cast<size_t>(rows * count), 0);  // 1 = pruned
    if (!nm && o.target_sparsity > 0) {
      std::vector<double> tmp(static_cast<size_t>(rows * count));
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t i = 0; i < count; ++i) {
          const double w = W1[static_cast<size_t>(r * count + i)], d = hinv1(i, i);
          tmp[static_cast<size_t>(r * count + i)] = (w * w) / (d * d);
        }
      std::vector<double> sorted = tmp;
      std::sort(sorted.begin(), sorted.end());
      const int64_t numel = rows * count;
      const int64_t k = std::min<int64_t>(numel - 1, static_cast<int64_t>(static_cast<double>(numel) * o.target_sparsity));
      for (size_t e = 0; e < tmp.size(); ++e) mask1[e] = tmp[e] <= sorted[static_cast<size_t>(k)];
    }
    for (int64_t i = 0; i < count; ++i) {
      const double d = hinv1(i, i);
      if (nm && i % o.m == 0) {
        const int64_t e = std::min(count, i + o.m), len = e - i;
        const int64_t npr = len == o.m ? o.n : o.n * len / o.m;
        for (int64_t r = 0; r < rows; ++r) {
          // topk(largest=False): indices of the npr smallest scores (ties: lower index first).
          std::vector<int64_t> idx(static_cast<size_t>(len));
          std::iota(idx.begin(), idx.end(), i);
          auto sc = [&](int64_t j) {
            const double w = W1[static_cast<size_t>(r * count + j)], dj = hinv1(j, j);
            return (w * w) / (dj * dj);
          };
          std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return sc(a) < sc(b); });
          for (int64_t p = 0; p < npr; ++p) mask1[static_cast<size_t>(r * count + idx[static_cast<size_t>(p)])] = 1;
        }
      }
      for (int64_t r = 0; r < rows; ++r) {
        const double w = W1[static_cast<size_t>(r * count + i)];
        double q = mask1[static_cast<size_t>(r * count + i)] ? 0.0 : w;
        if (quant) {
          const RefQuant& p = grids[static_cast<size_t>(r * groups + (o.quant.group_size < 0 ? 0 : (i1 + i) / gs))];
          q = p.scale * (ref_code(q, p, maxq) - p.zero);
        }
        Q1[static_cast<size_t>(r * count + i)] = q;
        res.error += (w - q) * (w - q) / (d * d) / 2;
        const double err1 = (w - q) / d;
        for (int64_t j = i; j < count; ++j) W1[static_cast<size_t>(r * count + j)] -= err1 * hinv1(i, j);
        Err1[static_cast<size_t>(r * count + i)] = err1;
      }
    }
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < count; ++i) {
        W[static_cast<size_t>(r * n + i1 + i)] = Q1[static_cast<size_t>(r * count + i)];
        if (mask1[static_cast<size_t>(r * count + i)]) res.keep_mask[static_cast<size_t>(r * n + i1 + i)] = 0;
      }
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = i2; c < n; ++c) {
        double s = 0;
        for (int64_t k = 0; k < count; ++k) s += Err1[static_cast<size_t>(r * count + k)] * U[static_cast<size_t>((i1 + k) * n + c)];
        W[static_cast<size_t>(r * n + c)] -= s;
      }
  }
  res.weight.assign(W.begin(), W.end());
  int64_t zeros = 0;
  for (uint8_t k : res.keep_mask) zeros += k == 0;
  res.sparsity = static_cast<double>(zeros) / static_cast<double>(rows * n);
  if (quant)
    for (const RefQuant& p : grids) {
      res.scales.push_back(static_cast<float>(p.scale));
      res.zero_points.push_back(static_cast<float>(p.zero));
    }
  return res;
}

GptqResult gptq_ref(const float* weight, int64_t rows, int64_t n, const std::vector<double>& h, const GptqOptions& o) {
  GptqResult res;
  const int maxq = (1 << o.quant.bits) - 1;
  const int64_t gs = o.quant.group_size;
  Mat W(weight, weight + rows * n);
  int64_t groups = 1;
  std::vector<RefQuant> grids;
  if (gs <= 0) grids = ref_grids(W, rows, n, o.quant, groups);  // find_params on the full weight first
  std::vector<uint8_t> dead;
  Mat hd = damped(h, n, 0.0, dead);  // dead fix only; dampening after the permutation, as the code does
  for (int64_t c = 0; c < n; ++c)
    if (dead[static_cast<size_t>(c)]) {
      ++res.dead_columns;
      for (int64_t r = 0; r < rows; ++r) W[static_cast<size_t>(r * n + c)] = 0;
    }
  if (gs > 0 && o.static_groups) grids = ref_grids(W, rows, n, o.quant, groups);
  if (gs > 0 && !o.static_groups) {
    groups = (n + gs - 1) / gs;
    grids.assign(static_cast<size_t>(rows * groups), RefQuant{0, 0});
  }
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  if (o.act_order) {
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) {
      return hd[static_cast<size_t>(a * n + a)] > hd[static_cast<size_t>(b * n + b)];
    });
    Mat Wp(W.size()), hp(hd.size());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < n; ++c) Wp[static_cast<size_t>(r * n + c)] = W[static_cast<size_t>(r * n + perm[static_cast<size_t>(c)])];
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j)
        hp[static_cast<size_t>(i * n + j)] = hd[static_cast<size_t>(perm[static_cast<size_t>(i)] * n + perm[static_cast<size_t>(j)])];
    W = Wp;
    hd = hp;
    for (int64_t c = 0; c < n; ++c) res.perm.push_back(static_cast<int32_t>(perm[static_cast<size_t>(c)]));
  }
  std::vector<uint8_t> none;
  const Mat U = inverse_factor_ref(damped(hd, n, o.dampening, none), n);
  Mat Q(W.size(), 0);
  std::vector<uint8_t> codes(W.size());
  res.group_index.assign(static_cast<size_t>(n), 0);
  for (int64_t i1 = 0; i1 < n; i1 += o.block_size) {
    const int64_t i2 = std::min(i1 + o.block_size, n), count = i2 - i1;
    Mat W1(static_cast<size_t>(rows * count)), Err1(static_cast<size_t>(rows * count), 0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < count; ++i) W1[static_cast<size_t>(r * count + i)] = W[static_cast<size_t>(r * n + i1 + i)];
    for (int64_t i = 0; i < count; ++i) {
      const int64_t c = i1 + i;
      const double d = U[static_cast<size_t>(c * n + c)];
      int64_t g = 0;
      if (gs > 0 && o.static_groups) {
        g = perm[static_cast<size_t>(c)] / gs;
      } else if (gs > 0) {
        g = c / gs;
        if (c % gs == 0)
          for (int64_t r = 0; r < rows; ++r) {
            std::vector<double> x;
            for (int64_t k = c; k < std::min(n, c + gs); ++k) x.push_back(W[static_cast<size_t>(r * n + k)]);
            grids[static_cast<size_t>(r * groups + g)] = ref_find_params(x, maxq, o.quant.symmetric);
          }
      }
      res.group_index[static_cast<size_t>(perm[static_cast<size_t>(c)])] = static_cast<int32_t>(g);
      for (int64_t r = 0; r < rows; ++r) {
        const RefQuant& p = grids[static_cast<size_t>(r * groups + g)];
        const double w = W1[static_cast<size_t>(r * count + i)];
        const double code = ref_code(w, p, maxq);
        const double q = p.scale * (code - p.zero);
        Q[static_cast<size_t>(r * n + c)] = q;
        codes[static_cast<size_t>(r * n + c)] = static_cast<uint8_t>(code);
        res.error += (w - q) * (w - q) / (d * d) / 2;
        const double err1 = (w - q) / d;
        for (int64_t j = i; j < count; ++j)
          W1[static_cast<size_t>(r * count + j)] -= err1 * U[static_cast<size_t>(c * n + i1 + j)];
        Err1[static_cast<size_t>(r * count + i)] = err1;
      }
    }
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = i2; c < n; ++c) {
        double s = 0;
        for (int64_t k = 0; k < count; ++k) s += Err1[static_cast<size_t>(r * count + k)] * U[static_cast<size_t>((i1 + k) * n + c)];
        W[static_cast<size_t>(r * n + c)] -= s;
      }
  }
  res.weight.resize(W.size());
  res.q.resize(W.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < n; ++c) {
      res.weight[static_cast<size_t>(r * n + perm[static_cast<size_t>(c)])] = static_cast<float>(Q[static_cast<size_t>(r * n + c)]);
      res.q[static_cast<size_t>(r * n + perm[static_cast<size_t>(c)])] = codes[static_cast<size_t>(r * n + c)];
    }
  for (const RefQuant& p : grids) {
    res.scales.push_back(static_cast<float>(p.scale));
    res.zero_points.push_back(static_cast<float>(p.zero));
  }
  return res;
}

}  // namespace cmo::kernels
