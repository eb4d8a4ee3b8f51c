// scatter, scatter_along_axis, scatter_nd (modes update/add/sub/mul/div/max/min) and one_hot.
#include "common.h"

namespace cmo::exec {
namespace {

using Combine = float (*)(float, float);

Combine combine_of(OpContext& c) {
  std::string mode = c.str("mode", "add");
  if (mode == "update") return [](float, float u) { return u; };
  if (mode == "add") return [](float d, float u) { return d + u; };
  if (mode == "sub") return [](float d, float u) { return d - u; };
  if (mode == "mul") return [](float d, float u) { return d * u; };
  if (mode == "div") return [](float d, float u) { return d / u; };
  if (mode == "max") return [](float d, float u) { return d > u ? d : u; };
  if (mode == "min") return [](float d, float u) { return d < u ? d : u; };
  c.fail("unknown scatter mode '" + mode + "'");
}

int64_t fix_index(const OpContext& c, int64_t i, int64_t n) {
  if (i < 0) i += n;
  if (i < 0 || i >= n) c.fail("index out of range for size " + std::to_string(n));
  return i;
}

// Copies data into a float output, applies the updates, converts back for int data.
template <class F>
void scatter_common(OpContext& c, F&& apply) {
  const Tensor& din = c.in("data");
  Tensor out = Tensor::f32(din.shape);
  Tensor d = as_f32(din);
  std::copy_n(d.fdata(), d.size(), out.fdata());
  apply(out, as_f32(c.in("updates")), combine_of(c));
  c.set(0, din.is_int() ? as_i32(out) : std::move(out));
}

void k_scatter(OpContext& c) {
  scatter_common(c, [&](Tensor& out, const Tensor& upd, Combine f) {
    Tensor idx = as_i32(c.in("indices"));
    int64_t axis = norm_axis(static_cast<int64_t>(c.num("axis", 0)), out.rank(), "op '" + c.node().name + "'");
    int64_t outer = 1, inner = 1, n = out.shape[axis], J = idx.size();
    for (int64_t d = 0; d < axis; ++d) outer *= out.shape[d];
    for (int64_t d = axis + 1; d < out.rank(); ++d) inner *= out.shape[d];
    if (upd.size() != outer * J * inner) c.fail("updates must have shape data.shape[:axis] + indices.shape + data.shape[axis+1:]");
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < J; ++j) {
        int64_t i = fix_index(c, idx.idata()[j], n);
        for (int64_t k = 0; k < inner; ++k) {
          float& dst = out.fdata()[(o * n + i) * inner + k];
          dst = f(dst, upd.fdata()[(o * J + j) * inner + k]);
        }
      }
  });
}

void k_scatter_along_axis(OpContext& c) {
  scatter_common(c, [&](Tensor& out, const Tensor& upd, Combine f) {
    Tensor idx = as_i32(c.in("indices"));
    int64_t axis = norm_axis(static_cast<int64_t>(c.num("axis", 0)), out.rank(), "op '" + c.node().name + "'");
    if (idx.shape != upd.shape || idx.rank() != out.rank()) c.fail("indices and updates must have the same shape and rank(data)");
    auto st = strides_of(out.shape);
    std::vector<int64_t> pos(static_cast<size_t>(idx.rank()), 0);
    for (int64_t k = 0; k < idx.size(); ++k) {
      int64_t off = 0;
      for (int64_t d = 0; d < idx.rank(); ++d) {
        int64_t p = d == axis ? fix_index(c, idx.idata()[k], out.shape[d]) : pos[d];
        if (p >= out.shape[d]) c.fail("indices shape exceeds data shape");
        off += p * st[d];
      }
      out.fdata()[off] = f(out.fdata()[off], upd.fdata()[k]);
      for (int64_t d = idx.rank() - 1; d >= 0; --d) {
        if (++pos[d] < idx.shape[d]) break;
        pos[d] = 0;
      }
    }
  });
}

void k_scatter_nd(OpContext& c) {
  scatter_common(c, [&](Tensor& out, const Tensor& upd, Combine f) {
    Tensor idx = as_i32(c.in("indices"));
    if (idx.rank() < 1) c.fail("indices must have rank >= 1");
    int64_t K = idx.shape.back();
    if (K > out.rank()) c.fail("indices.shape[-1] exceeds rank(data)");
    int64_t inner = 1;
    for (int64_t d = K; d < out.rank(); ++d) inner *= out.shape[d];
    int64_t J = idx.size() / std::max<int64_t>(K, 1);
    if (upd.size() != J * inner) c.fail("updates must have shape indices.shape[:-1] + data.shape[K:]");
    auto st = strides_of(out.shape);
    for (int64_t j = 0; j < J; ++j) {
      int64_t off = 0;
      for (int64_t k = 0; k < K; ++k) off += fix_index(c, idx.idata()[j * K + k], out.shape[k]) * st[k];
      for (int64_t t = 0; t < inner; ++t) out.fdata()[off + t] = f(out.fdata()[off + t], upd.fdata()[j * inner + t]);
    }
  });
}

void k_one_hot(OpContext& c) {
  Tensor idx = as_i32(c.in("indices"));
  int64_t depth = static_cast<int64_t>(c.num("one_hot_vector_size"));
  int64_t axis = norm_axis(static_cast<int64_t>(c.num("axis", -1)), idx.rank() + 1, "op '" + c.node().name + "'");
  const Tensor* on_t = c.find("on_value");
  bool ints = on_t && on_t->is_int();
  float on = static_cast<float>(c.num("on_value", 1.0)), off = static_cast<float>(c.num("off_value", 0.0));
  Shape os = idx.shape;
  os.insert(os.begin() + axis, depth);
  Tensor y = Tensor::f32(os);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= idx.shape[d];
  for (int64_t d = axis; d < idx.rank(); ++d) inner *= idx.shape[d];
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t v = 0; v < depth; ++v)
      for (int64_t i = 0; i < inner; ++i) y.fdata()[(o * depth + v) * inner + i] = idx.idata()[o * inner + i] == v ? on : off;
  c.set(0, ints ? as_i32(y) : std::move(y));
}

}  // namespace

void register_scatter_ops() {
  register_kernel("scatter", k_scatter);
  register_kernel("scatter_along_axis", k_scatter_along_axis);
  register_kernel("scatter_nd", k_scatter_nd);
  register_kernel("one_hot", k_one_hot);
}

}  // namespace cmo::exec
