// gather (axis, batch_dims), gather_along_axis, gather_nd (batch_dims). Indices are bounds-checked;
// negative indices count from the end (iOS16 semantics; later opsets never produce them).
#include "common.h"

namespace cmo::exec {
namespace {

int64_t fix_index(const OpContext& c, int64_t i, int64_t n) {
  if (i < 0) i += n;
  if (i < 0 || i >= n) c.fail("index " + std::to_string(i < 0 ? i - n : i) + " is out of range for size " + std::to_string(n));
  return i;
}

// Copies `len` elements of any dtype.
void copy_elems(const Tensor& x, int64_t src, Tensor& y, int64_t dst, int64_t len) {
  if (x.dtype == DType::F32) std::copy_n(x.fdata() + src, len, y.fdata() + dst);
  else if (x.dtype == DType::Str) std::copy_n(x.s->data() + src, len, y.s->data() + dst);
  else std::copy_n(x.idata() + src, len, y.idata() + dst);
}

Tensor like(const Tensor& proto, Shape shape) {
  if (proto.dtype == DType::F32) return Tensor::f32(std::move(shape));
  if (proto.dtype == DType::Str) return Tensor::str(std::vector<std::string>(static_cast<size_t>(numel(shape))), shape);
  Tensor t = Tensor::i32(std::move(shape));
  t.dtype = proto.dtype;
  return t;
}

void k_gather(OpContext& c) {
  const Tensor& x = c.in("x");
  Tensor idx = as_i32(c.in("indices"));
  int64_t axis = norm_axis(static_cast<int64_t>(c.num("axis", 0)), x.rank(), "op '" + c.node().name + "'");
  int64_t bd = static_cast<int64_t>(c.num("batch_dims", 0));
  if (bd < 0) bd += idx.rank();
  if (bd < 0 || bd > axis || bd > idx.rank()) c.fail("batch_dims out of range");
  for (int64_t d = 0; d < bd; ++d)
    if (x.shape[d] != idx.shape[d]) c.fail("batch dims of x and indices differ");
  Shape os(x.shape.begin(), x.shape.begin() + axis);
  os.insert(os.end(), idx.shape.begin() + bd, idx.shape.end());
  os.insert(os.end(), x.shape.begin() + axis + 1, x.shape.end());
  int64_t B = 1, outer = 1, inner = 1, n = x.shape[axis];
  for (int64_t d = 0; d < bd; ++d) B *= x.shape[d];
  for (int64_t d = bd; d < axis; ++d) outer *= x.shape[d];
  for (int64_t d = axis + 1; d < x.rank(); ++d) inner *= x.shape[d];
  int64_t J = B ? idx.size() / B : 0;
  Tensor y = like(x, os);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < J; ++j) {
        int64_t i = fix_index(c, idx.idata()[b * J + j], n);
        copy_elems(x, ((b * outer + o) * n + i) * inner, y, ((b * outer + o) * J + j) * inner, inner);
      }
  c.set(0, std::move(y));
}

void k_gather_along_axis(OpContext& c) {
  const Tensor& x = c.in("x");
  Tensor idx = as_i32(c.in("indices"));
  int64_t axis = norm_axis(static_cast<int64_t>(c.num("axis", 0)), x.rank(), "op '" + c.node().name + "'");
  if (idx.rank() != x.rank()) c.fail("indices must have the rank of x");
  for (int64_t d = 0; d < x.rank(); ++d)
    if (d != axis && idx.shape[d] != x.shape[d]) c.fail("indices and x differ outside the gather axis");
  Tensor y = like(x, idx.shape);
  auto xs = strides_of(x.shape);
  std::vector<int64_t> pos(static_cast<size_t>(x.rank()), 0);
  for (int64_t k = 0; k < idx.size(); ++k) {
    int64_t off = 0;
    for (int64_t d = 0; d < x.rank(); ++d)
      off += (d == axis ? fix_index(c, idx.idata()[k], x.shape[d]) : pos[d]) * xs[d];
    copy_elems(x, off, y, k, 1);
    for (int64_t d = x.rank() - 1; d >= 0; --d) {
      if (++pos[d] < idx.shape[d]) break;
      pos[d] = 0;
    }
  }
  c.set(0, std::move(y));
}

void k_gather_nd(OpContext& c) {
  const Tensor& x = c.in("x");
  Tensor idx = as_i32(c.in("indices"));
  int64_t bd = static_cast<int64_t>(c.num("batch_dims", 0));
  if (idx.rank() < 1) c.fail("indices must have rank >= 1");
  int64_t K = idx.shape.back();
  if (bd < 0 || bd + K > x.rank() || bd >= idx.rank()) c.fail("indices.shape[-1] + batch_dims exceeds rank(x)");
  for (int64_t d = 0; d < bd; ++d)
    if (x.shape[d] != idx.shape[d]) c.fail("batch dims of x and indices differ");
  Shape os(idx.shape.begin(), idx.shape.end() - 1);
  os.insert(os.end(), x.shape.begin() + bd + K, x.shape.end());
  int64_t B = 1, inner = 1, sub = 1;
  for (int64_t d = 0; d < bd; ++d) B *= x.shape[d];
  for (int64_t d = bd + K; d < x.rank(); ++d) inner *= x.shape[d];
  for (int64_t d = bd; d < bd + K; ++d) sub *= x.shape[d];
  int64_t per_batch = B ? (idx.size() / K) / B : 0;
  auto xs = strides_of(x.shape);
  Tensor y = like(x, os);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < per_batch; ++j) {
      const int32_t* ip = idx.idata() + (b * per_batch + j) * K;
      int64_t off = b * sub * inner;
      for (int64_t k = 0; k < K; ++k) off += fix_index(c, ip[k], x.shape[bd + k]) * xs[bd + k];
      copy_elems(x, off, y, (b * per_batch + j) * inner, inner);
    }
  c.set(0, std::move(y));
}

}  // namespace

void register_gather_ops() {
  register_kernel("gather", k_gather);
  register_kernel("gather_along_axis", k_gather_along_axis);
  register_kernel("gather_nd", k_gather_nd);
}

}  // namespace cmo::exec
