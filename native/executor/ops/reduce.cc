// Reductions (reduce_*), arg reductions, softmax, cumsum.
#include <cmath>
#include <limits>

#include "common.h"
#include "fastmath.h"
#include "vecmath.h"

namespace cmo::exec {
namespace {

// Splits shape around one axis: outer × n × inner.
struct AxisSplit {
  int64_t outer = 1, n = 1, inner = 1;
};
AxisSplit split_at(const Shape& s, int64_t axis) {
  AxisSplit r;
  for (int64_t k = 0; k < static_cast<int64_t>(s.size()); ++k) {
    if (k < axis) r.outer *= s[k];
    else if (k == axis) r.n = s[k];
    else r.inner *= s[k];
  }
  return r;
}

enum class Red { Sum, Mean, Max, Min, Prod, L1, L2, LogSum, LogSumExp, SumSquare };

template <Red op>
void k_reduce(OpContext& c) {
  Tensor x = as_f32(c.in("x"));
  const int64_t rank = x.rank();
  std::vector<char> reduced(static_cast<size_t>(rank), 0);
  if (c.has("axes")) {
    for (int64_t a : c.ints("axes")) reduced[static_cast<size_t>(norm_axis(a, rank, "op '" + c.node().name + "'"))] = 1;
  } else {
    std::fill(reduced.begin(), reduced.end(), 1);
  }
  bool keep = c.flag("keep_dims", false);
  Shape kept, out_shape;
  for (int64_t k = 0; k < rank; ++k) {
    kept.push_back(reduced[k] ? 1 : x.shape[k]);
    if (!reduced[k] || keep) out_shape.push_back(reduced[k] ? 1 : x.shape[k]);
  }
  const int64_t out_n = numel(kept);
  // Fast path: the reduced axes are one contiguous run (outer × n × inner), the common case (the
  // group-norm statistics coremltools emits, means over the last axes): rows read in order.
  constexpr bool simple = op == Red::Sum || op == Red::Mean || op == Red::SumSquare || op == Red::Max || op == Red::Min;
  int64_t first = -1, last = -1;
  for (int64_t k = 0; k < rank; ++k)
    if (reduced[k]) {
      if (first < 0) first = k;
      last = k;
    }
  bool contiguous = first >= 0;
  for (int64_t k = first; contiguous && k <= last; ++k) contiguous = reduced[k] != 0;
  if (simple && contiguous && x.size() > 0) {
    int64_t outer = 1, n = 1, inner = 1;
    for (int64_t k = 0; k < rank; ++k) (k < first ? outer : k <= last ? n : inner) *= x.shape[k];
    Tensor y = Tensor::f32(out_shape);
    const float* src = x.fdata();
    float* dst = y.fdata();
    const double init = op == Red::Max ? -std::numeric_limits<double>::infinity()
                        : op == Red::Min ? std::numeric_limits<double>::infinity() : 0.0;
    auto step = [](double a, double v) {
      if (op == Red::Max) return std::max(a, v);
      if (op == Red::Min) return std::min(a, v);
      if (op == Red::SumSquare) return a + v * v;
      return a + v;
    };
    auto finish = [n](double a) { return static_cast<float>(op == Red::Mean ? a / static_cast<double>(n) : a); };
    parallel_range(
        outer * inner, c.threads(),
        [&](int64_t b, int64_t e) {
          if (inner == 1) {
            for (int64_t o = b; o < e; ++o) {
              const float* p = src + o * n;
              double a = init;
              for (int64_t k = 0; k < n; ++k) a = step(a, p[k]);
              dst[o] = finish(a);
            }
            return;
          }
          std::vector<double> acc;
          for (int64_t t = b; t < e;) {  // runs of one outer index
            const int64_t o = t / inner, i0 = t % inner, w = std::min(inner - i0, e - t);
            acc.assign(static_cast<size_t>(w), init);
            const float* p = src + o * n * inner + i0;
            for (int64_t k = 0; k < n; ++k)
              for (int64_t i = 0; i < w; ++i) acc[i] = step(acc[i], p[k * inner + i]);
            for (int64_t i = 0; i < w; ++i) dst[o * inner + i0 + i] = finish(acc[i]);
            t += w;
          }
        },
        std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)));
    if (compute_dtype(c.output_type(0).dtype) == DType::I32) y = as_i32(y);
    c.set(0, std::move(y));
    return;
  }
  auto ost = broadcast_strides(kept, x.shape);  // 0 on reduced axes
  int64_t count = out_n ? x.size() / out_n : 0;
  double init = op == Red::Max ? -std::numeric_limits<double>::infinity()
                : op == Red::Min ? std::numeric_limits<double>::infinity()
                : op == Red::Prod ? 1.0
                                  : 0.0;
  std::vector<double> acc(static_cast<size_t>(out_n), init);
  std::vector<double> mx;
  const float* src = x.fdata();
  auto for_each = [&](auto&& f) {
    std::vector<int64_t> idx(static_cast<size_t>(rank), 0);
    int64_t o = 0;
    for (int64_t k = 0, n = x.size(); k < n; ++k) {
      f(o, static_cast<double>(src[k]));
      for (int64_t d = rank - 1; d >= 0; --d) {
        if (++idx[d] < x.shape[d]) {
          o += ost[d];
          break;
        }
        o -= ost[d] * (x.shape[d] - 1);
        idx[d] = 0;
      }
    }
  };
  if (op == Red::LogSumExp) {
    mx.assign(static_cast<size_t>(out_n), -std::numeric_limits<double>::infinity());
    for_each([&](int64_t o, double v) { mx[o] = std::max(mx[o], v); });
  }
  for_each([&](int64_t o, double v) {
    double& a = acc[o];
    switch (op) {
      case Red::Sum: case Red::Mean: case Red::LogSum: a += v; break;
      case Red::Max: a = std::max(a, v); break;
      case Red::Min: a = std::min(a, v); break;
      case Red::Prod: a *= v; break;
      case Red::L1: a += std::fabs(v); break;
      case Red::L2: case Red::SumSquare: a += v * v; break;
      case Red::LogSumExp: a += std::exp(v - mx[o]); break;
    }
  });
  Tensor y = Tensor::f32(out_shape);
  for (int64_t k = 0; k < out_n; ++k) {
    double a = acc[k];
    if (op == Red::Mean) a /= static_cast<double>(count);
    else if (op == Red::L2) a = std::sqrt(a);
    else if (op == Red::LogSum) a = std::log(a);
    else if (op == Red::LogSumExp) a = std::log(a) + mx[k];
    y.fdata()[k] = static_cast<float>(a);
  }
  if (compute_dtype(c.output_type(0).dtype) == DType::I32) y = as_i32(y);
  c.set(0, std::move(y));
}

template <bool is_max>
void k_argreduce(OpContext& c) {
  const Tensor& xin = c.in("x");
  Tensor x = as_f32(xin);
  int64_t axis = norm_axis(static_cast<int64_t>(c.num("axis", -1)), x.rank(), "op '" + c.node().name + "'");
  bool keep = c.flag("keep_dims", false);
  AxisSplit s = split_at(x.shape, axis);
  Shape out_shape;
  for (int64_t k = 0; k < x.rank(); ++k)
    if (k != axis) out_shape.push_back(x.shape[k]);
    else if (keep) out_shape.push_back(1);
  Tensor y = Tensor::i32(out_shape);
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t i = 0; i < s.inner; ++i) {
      const float* p = x.fdata() + o * s.n * s.inner + i;
      int64_t best = 0;
      for (int64_t k = 1; k < s.n; ++k) {
        float v = p[k * s.inner], b = p[best * s.inner];
        if (is_max ? v > b : v < b) best = k;
      }
      y.idata()[o * s.inner + i] = static_cast<int32_t>(best);
    }
  c.set(0, std::move(y));
}

// softmax over one axis. Rows along the axis are contiguous when it is the last one; otherwise
// (inner > 1) a block of up to 1024 neighbouring columns is processed together so every pass reads
// memory in order instead of striding through it.
void k_softmax(OpContext& c) {
  Tensor x = as_f32(c.in("x"));
  int64_t axis = norm_axis(static_cast<int64_t>(c.num("axis", -1)), x.rank(), "op '" + c.node().name + "'");
  AxisSplit s = split_at(x.shape, axis);
  Tensor y = Tensor::f32(x.shape);
  const float* xs = x.fdata();
  float* ys = y.fdata();
  if (s.inner == 1) {
    parallel_range(
        s.outer, c.threads(),
        [&](int64_t b, int64_t e) {
          for (int64_t r = b; r < e; ++r) {
            const float* p = xs + r * s.n;
            float* q = ys + r * s.n;
            float m = vec::max_of(p, s.n);
            if (m == -std::numeric_limits<float>::infinity()) m = 0;  // an all -inf row gives 0/0 = NaN, as exp/sum would
            // Lane sums in float, their total in double: the fixtures' softmax tolerance is 2e-5 relative.
            const double sum = vec::exp_shift_sum(p, m, q, s.n);
            vec::scale(q, static_cast<float>(1.0 / sum), s.n);
          }
        },
        std::max<int64_t>(1, 16384 / std::max<int64_t>(s.n, 1)));
    c.set(0, std::move(y));
    return;
  }
  constexpr int64_t kCols = 1024;
  const int64_t col_blocks = (s.inner + kCols - 1) / kCols;
  parallel_range(
      s.outer * col_blocks, c.threads(),
      [&](int64_t b, int64_t e) {
        float mx[kCols], inv[kCols];
        double sum[kCols];
        for (int64_t t = b; t < e; ++t) {
          const int64_t o = t / col_blocks, i0 = (t % col_blocks) * kCols, w = std::min(kCols, s.inner - i0);
          const float* p = xs + o * s.n * s.inner + i0;
          float* q = ys + o * s.n * s.inner + i0;
          std::fill(mx, mx + w, -std::numeric_limits<float>::infinity());
          std::fill(sum, sum + w, 0.0);
          for (int64_t k = 0; k < s.n; ++k)
            for (int64_t i = 0; i < w; ++i) mx[i] = std::max(mx[i], p[k * s.inner + i]);
          for (int64_t i = 0; i < w; ++i) mx[i] = mx[i] == -std::numeric_limits<float>::infinity() ? 0.0f : mx[i];
          for (int64_t k = 0; k < s.n; ++k)
            for (int64_t i = 0; i < w; ++i) {
              const float ev = exp_fast(p[k * s.inner + i] - mx[i]);
              q[k * s.inner + i] = ev;
              sum[i] += ev;
            }
          for (int64_t i = 0; i < w; ++i) inv[i] = static_cast<float>(1.0 / sum[i]);
          for (int64_t k = 0; k < s.n; ++k)
            for (int64_t i = 0; i < w; ++i) q[k * s.inner + i] *= inv[i];
        }
      },
      std::max<int64_t>(1, 16384 / std::max<int64_t>(s.n * std::min(kCols, s.inner), 1)));
  c.set(0, std::move(y));
}

void k_cumsum(OpContext& c) {
  const Tensor& xin = c.in("x");
  bool ints = xin.is_int();
  Tensor x = as_f32(xin);
  int64_t axis = norm_axis(static_cast<int64_t>(c.num("axis", 0)), x.rank(), "op '" + c.node().name + "'");
  bool exclusive = c.flag("exclusive", false), reverse = c.flag("reverse", false);
  AxisSplit s = split_at(x.shape, axis);
  Tensor y = Tensor::f32(x.shape);
  for (int64_t o = 0; o < s.outer; ++o)
    for (int64_t i = 0; i < s.inner; ++i) {
      const float* p = x.fdata() + o * s.n * s.inner + i;
      float* q = y.fdata() + o * s.n * s.inner + i;
      double acc = 0;
      for (int64_t t = 0; t < s.n; ++t) {
        int64_t k = reverse ? s.n - 1 - t : t;
        if (exclusive) {
          q[k * s.inner] = static_cast<float>(acc);
          acc += p[k * s.inner];
        } else {
          acc += p[k * s.inner];
          q[k * s.inner] = static_cast<float>(acc);
        }
      }
    }
  c.set(0, ints ? as_i32(y) : std::move(y));
}

}  // namespace

void register_reduce_ops() {
  register_kernel("reduce_sum", k_reduce<Red::Sum>);
  register_kernel("reduce_mean", k_reduce<Red::Mean>);
  register_kernel("reduce_max", k_reduce<Red::Max>);
  register_kernel("reduce_min", k_reduce<Red::Min>);
  register_kernel("reduce_prod", k_reduce<Red::Prod>);
  register_kernel("reduce_l1_norm", k_reduce<Red::L1>);
  register_kernel("reduce_l2_norm", k_reduce<Red::L2>);
  register_kernel("reduce_log_sum", k_reduce<Red::LogSum>);
  register_kernel("reduce_log_sum_exp", k_reduce<Red::LogSumExp>);
  register_kernel("reduce_sum_square", k_reduce<Red::SumSquare>);
  register_kernel("reduce_argmax", k_argreduce<true>);
  register_kernel("reduce_argmin", k_argreduce<false>);
  register_kernel("softmax", k_softmax);
  register_kernel("cumsum", k_cumsum);
}

}  // namespace cmo::exec
