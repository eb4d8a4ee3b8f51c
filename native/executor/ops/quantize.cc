// iOS17 activation quantization: quantize (float -> int8/uint8: clip(round_half_even(x / scale) +
// zero_point)) and dequantize ((q - zero_point) * scale), per tensor or per `axis` (coremltools
// ops/defs/iOS17/quantization_ops.py, value_inference).
#include <cmath>

#include "common.h"

namespace cmo::exec {
namespace {

// Per-element parameter index: scalars broadcast, vectors run along `axis` of x.
struct AxisParam {
  std::vector<double> v;
  int64_t inner = 1, len = 1;  // element k uses v[(k / inner) % len]
  double at(int64_t k) const { return v.size() == 1 ? v[0] : v[static_cast<size_t>((k / inner) % len)]; }
};

AxisParam axis_param(OpContext& c, const char* param, const Tensor& x, double dflt) {
  AxisParam p;
  if (!c.has(param)) {
    p.v = {dflt};
    return p;
  }
  const Tensor& t = c.in(param);
  if (t.rank() > 1) c.fail(std::string(param) + " must be a scalar or a vector");
  for (int64_t k = 0; k < t.size(); ++k) p.v.push_back(t.at(k));
  if (t.rank() == 0) return p;
  if (!c.has("axis")) c.fail("axis is required when " + std::string(param) + " is a vector");
  int64_t axis = norm_axis(static_cast<int64_t>(c.num("axis")), x.rank(), c.node().name);
  if (t.size() != x.shape[axis])
    c.fail(std::string(param) + " has " + std::to_string(t.size()) + " values, axis " + std::to_string(axis) + " of x has " +
           std::to_string(x.shape[axis]));
  p.len = x.shape[axis];
  for (int64_t d = axis + 1; d < x.rank(); ++d) p.inner *= x.shape[d];
  return p;
}

void k_quantize(OpContext& c) {
  Tensor x = as_f32(c.in("input"));
  std::string dt = c.str("output_dtype", "");
  if (dt != "int8" && dt != "uint8") c.fail("output_dtype must be int8 or uint8, got '" + dt + "'");
  const double lo = dt == "int8" ? -128 : 0, hi = dt == "int8" ? 127 : 255;
  AxisParam scale = axis_param(c, "scale", x, 1.0), zp = axis_param(c, "zero_point", x, 0.0);
  Tensor y = Tensor::i32(x.shape);
  const float* src = x.fdata();
  int32_t* dst = y.idata();
  parallel_range(x.size(), c.threads(), [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      float q = src[k] / static_cast<float>(scale.at(k));  // fp32 division, as numpy does on fp32 data
      double v = std::nearbyint(q) + zp.at(k);               // nearbyint: round half to even (np.around)
      dst[k] = static_cast<int32_t>(std::min(hi, std::max(lo, v)));
    }
  });
  y.declared = dt;
  c.set(0, std::move(y));
}

void k_dequantize(OpContext& c) {
  Tensor q = as_i32(c.in("input"));
  AxisParam scale = axis_param(c, "scale", q, 1.0), zp = axis_param(c, "zero_point", q, 0.0);
  Tensor y = Tensor::f32(q.shape);
  const int32_t* src = q.idata();
  float* dst = y.fdata();
  parallel_range(q.size(), c.threads(), [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k)
      dst[k] = static_cast<float>(scale.at(k)) * (static_cast<float>(src[k]) - static_cast<float>(zp.at(k)));
  });
  c.set(0, std::move(y));
}

}  // namespace

void register_quantize_ops() {
  register_kernel("quantize", k_quantize);
  register_kernel("dequantize", k_dequantize);
}

}  // namespace cmo::exec
