// Generators and masks: fill, fill_like, range_1d, band_part, ones_like-style helpers.
#include <cmath>

#include "common.h"

namespace cmo::exec {
namespace {

void k_fill(OpContext& c) {
  auto shape = c.ints("shape");
  for (int64_t d : shape)
    if (d < 0) c.fail("negative dimension in shape");
  const Tensor* v = c.find("value");
  if (v && v->is_int()) {
    Tensor y = Tensor::i32(shape);
    y.dtype = v->dtype;
    std::fill_n(y.idata(), y.size(), v->idata()[0]);
    c.set(0, std::move(y));
  } else {
    Tensor y = Tensor::f32(shape);
    std::fill_n(y.fdata(), y.size(), v ? static_cast<float>(v->at(0)) : 0.f);
    c.set(0, std::move(y));
  }
}

void k_fill_like(OpContext& c) {
  const Tensor& ref = c.in("ref_tensor");
  Tensor y = Tensor::f32(ref.shape);
  std::fill_n(y.fdata(), y.size(), static_cast<float>(c.num("value", 0.0)));
  c.set(0, compute_dtype(c.output_type(0).dtype) == DType::I32 ? as_i32(y) : std::move(y));
}

void k_range_1d(OpContext& c) {
  const Tensor& e = c.in("end");
  const Tensor& s = c.in("start");
  const Tensor& st = c.in("step");
  double end = c.num("end"), start = c.num("start"), step = c.num("step");
  if (step == 0) c.fail("step is 0");
  double n = std::ceil((end - start) / step);
  int64_t count = n > 0 ? static_cast<int64_t>(n) : 0;
  if (count > (int64_t{1} << 31)) c.fail("range is too long");
  if (e.is_int() && s.is_int() && st.is_int()) {
    Tensor y = Tensor::i32({count});
    for (int64_t k = 0; k < count; ++k) y.idata()[k] = static_cast<int32_t>(start + static_cast<double>(k) * step);
    c.set(0, std::move(y));
  } else {
    Tensor y = Tensor::f32({count});
    for (int64_t k = 0; k < count; ++k) y.fdata()[k] = static_cast<float>(start + static_cast<double>(k) * step);
    c.set(0, std::move(y));
  }
}

// band_part: keep x[..., i, j] when (lower < 0 or i - j <= lower) and (upper < 0 or j - i <= upper).
void k_band_part(OpContext& c) {
  const Tensor& x = c.in("x");
  if (x.rank() < 2) c.fail("x must have rank >= 2");
  int64_t lower = static_cast<int64_t>(c.num("lower", -1)), upper = static_cast<int64_t>(c.num("upper", -1));
  int64_t M = x.shape[x.rank() - 2], N = x.shape[x.rank() - 1], B = x.size() / std::max<int64_t>(M * N, 1);
  Tensor y = x.dtype == DType::F32 ? as_f32(x) : as_i32(x);
  Tensor out = x.dtype == DType::F32 ? Tensor::f32(x.shape) : Tensor::i32(x.shape);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        bool keep = (lower < 0 || i - j <= lower) && (upper < 0 || j - i <= upper);
        int64_t k = (b * M + i) * N + j;
        if (x.dtype == DType::F32) out.fdata()[k] = keep ? y.fdata()[k] : 0.f;
        else out.idata()[k] = keep ? y.idata()[k] : 0;
      }
  c.set(0, std::move(out));
}

// non_zero: int32 [count, rank] coordinates of the non-zero elements in row-major order.
void k_non_zero(OpContext& c) {
  const Tensor& x = c.in("x");
  const int64_t r = x.rank();
  std::vector<int32_t> coords;
  std::vector<int64_t> idx(static_cast<size_t>(r), 0);
  for (int64_t k = 0; k < x.size(); ++k) {
    if (x.at(k) != 0)
      for (int64_t d = 0; d < r; ++d) coords.push_back(static_cast<int32_t>(idx[d]));
    for (int64_t d = r - 1; d >= 0; --d) {
      if (++idx[d] < x.shape[d]) break;
      idx[d] = 0;
    }
  }
  Tensor y = Tensor::i32({r ? static_cast<int64_t>(coords.size()) / r : 0, r});
  std::copy(coords.begin(), coords.end(), y.idata());
  c.set(0, std::move(y));
}

}  // namespace

void register_misc_ops() {
  register_kernel("non_zero", k_non_zero);
  register_kernel("fill", k_fill);
  register_kernel("fill_like", k_fill_like);
  register_kernel("range_1d", k_range_1d);
  register_kernel("band_part", k_band_part);
}

}  // namespace cmo::exec
