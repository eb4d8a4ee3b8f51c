// topk and argsort (stable: equal values keep index order).
#include <numeric>

#include "common.h"

namespace cmo::exec {
namespace {

// For each (outer, inner) line along `axis`, the indices of its elements sorted by value.
template <class F>
void sorted_lines(const Tensor& x, int64_t axis, bool ascending, F&& emit) {
  int64_t outer = 1, n = x.shape[axis], inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.shape[d];
  for (int64_t d = axis + 1; d < x.rank(); ++d) inner *= x.shape[d];
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const float* p = x.fdata() + o * n * inner + i;
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        return ascending ? p[a * inner] < p[b * inner] : p[a * inner] > p[b * inner];
      });
      emit(o, i, n, inner, order);
    }
}

void k_topk(OpContext& c) {
  const Tensor& xin = c.in("x");
  Tensor x = as_f32(xin);
  int64_t axis = norm_axis(static_cast<int64_t>(c.num("axis", -1)), x.rank(), "op '" + c.node().name + "'");
  int64_t k = static_cast<int64_t>(c.num("k", 1));
  if (k < 0 || k > x.shape[axis]) c.fail("k = " + std::to_string(k) + " is out of range for an axis of " + std::to_string(x.shape[axis]));
  bool ascending = c.flag("ascending", false);
  Shape os = x.shape;
  os[axis] = k;
  Tensor vals = Tensor::f32(os), idx = Tensor::i32(os);
  sorted_lines(x, axis, ascending, [&](int64_t o, int64_t i, int64_t n, int64_t inner, const std::vector<int64_t>& order) {
    (void)n;
    for (int64_t j = 0; j < k; ++j) {
      int64_t dst = (o * k + j) * inner + i;
      vals.fdata()[dst] = x.fdata()[(o * x.shape[axis] + order[j]) * inner + i];
      idx.idata()[dst] = static_cast<int32_t>(order[j]);
    }
  });
  c.set(0, xin.is_int() ? as_i32(vals) : std::move(vals));
  if (c.num_outputs() > 1) c.set(1, std::move(idx));
}

void k_argsort(OpContext& c) {
  Tensor x = as_f32(c.in("x"));
  int64_t axis = norm_axis(static_cast<int64_t>(c.num("axis", -1)), x.rank(), "op '" + c.node().name + "'");
  Tensor idx = Tensor::i32(x.shape);
  sorted_lines(x, axis, c.flag("ascending", false), [&](int64_t o, int64_t i, int64_t n, int64_t inner, const std::vector<int64_t>& order) {
    for (int64_t j = 0; j < n; ++j) idx.idata()[(o * n + j) * inner + i] = static_cast<int32_t>(order[j]);
  });
  c.set(0, std::move(idx));
}

}  // namespace

void register_sort_ops() {
  register_kernel("topk", k_topk);
  register_kernel("argsort", k_argsort);
}

}  // namespace cmo::exec
