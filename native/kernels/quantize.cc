#include "quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "../util/fp16.h"
#include "../util/thread_pool.h"
#include "decompress.h"

namespace cmo::kernels {

std::pair<int, int> quant_range(DType dtype, QuantMode mode) {
  const bool sym = mode == QuantMode::LinearSymmetric;
  switch (dtype) {
    case DType::Int8: return {sym ? -127 : -128, 127};
    case DType::UInt8: return {0, sym ? 254 : 255};
    case DType::Int4: return {sym ? -7 : -8, 7};
    case DType::UInt4: return {0, sym ? 14 : 15};
    default: throw Error("EINVAL", std::string("quantization dtype must be int8, uint8, int4 or uint4, got ") + mil_dtype_name(dtype));
  }
}

static int64_t norm_axis(int64_t a, size_t rank, const char* what) {
  const int64_t r = static_cast<int64_t>(rank);
  if (a < -r || a >= r) throw Error("EINVAL", std::string(what) + " " + std::to_string(a) + " out of range for rank " + std::to_string(r));
  return a < 0 ? a + r : a;
}

int64_t default_input_axis(int64_t output_axis, size_t rank) {
  const int64_t r = static_cast<int64_t>(rank);
  if (r < 2) return 0;
  int64_t a = output_axis < 0 ? output_axis + r : output_axis;
  if (a == 0) return 1;
  if (a == r - 1) return r - 2;
  if (a == r - 2) return r - 1;
  return 0;
}

std::vector<int64_t> quant_block_sizes(QuantGranularity g, const std::vector<int64_t>& shape, int64_t output_axis,
                                       int64_t input_axis, int64_t block_size) {
  std::vector<int64_t> b(shape.size(), 0);
  if (g == QuantGranularity::PerTensor) return b;
  b[static_cast<size_t>(norm_axis(output_axis, shape.size(), "axis"))] = 1;
  if (g == QuantGranularity::PerBlock) {
    if (block_size < 0) throw Error("EINVAL", "block_size must be >= 0");
    int64_t in = norm_axis(input_axis, shape.size(), "input axis");
    if (in == norm_axis(output_axis, shape.size(), "axis")) throw Error("EINVAL", "input axis equals the output axis");
    b[static_cast<size_t>(in)] = block_size;
  }
  return b;
}

std::string check_block_sizes(const std::vector<int64_t>& shape, const std::vector<int64_t>& bs) {
  if (bs.size() != shape.size())
    return "block_sizes has " + std::to_string(bs.size()) + " entries but the weight has rank " + std::to_string(shape.size());
  for (size_t k = 0; k < shape.size(); ++k) {
    if (bs[k] < 0) return "negative block size on axis " + std::to_string(k);
    if (bs[k] > 0 && shape[k] % bs[k] != 0)
      return "on axis " + std::to_string(k) + " the dim size " + std::to_string(shape[k]) +
             " is not divisible by block size " + std::to_string(bs[k]);
  }
  return {};
}

namespace qdetail {

struct Plan {
  DType wdt;
  int qmin, qmax;
  std::vector<int64_t> scale_shape;
  std::vector<int64_t> block;  // elements per block along each axis (whole axis when block size 0)
};

Plan make_plan(const TensorData& w, const QuantizeOptions& o) {
  w.validate("quantize weight");
  if (w.dtype != DType::Float16 && w.dtype != DType::Float32)
    throw Error("EINVAL", std::string("quantize: weight must be fp16 or fp32, got ") + mil_dtype_name(w.dtype));
  std::string why = check_block_sizes(w.shape, o.block_sizes);
  if (!why.empty()) throw Error("EBLOCKSIZE", "quantize: invalid block_sizes: " + why);
  Plan p;
  p.wdt = w.dtype;
  std::tie(p.qmin, p.qmax) = quant_range(o.dtype, o.mode);
  for (size_t k = 0; k < w.shape.size(); ++k) {
    const int64_t b = o.block_sizes[k] > 0 ? o.block_sizes[k] : w.shape[k];
    p.block.push_back(b);
    p.scale_shape.push_back(o.block_sizes[k] > 0 ? w.shape[k] / b : 1);
  }
  return p;
}

struct BlockParams {
  float scale;  // in the weight's float type (already rounded)
  float zero_point;
  bool has_zero_point;
};

// From the block's min and max, numpy step by step in the weight dtype.
BlockParams block_params(float mn, float mx, const Plan& p, QuantMode mode, DType qdt) {
  const DType t = p.wdt;
  float lo, hi;
  if (mode == QuantMode::LinearSymmetric) {
    const float r = std::max(std::fabs(mn), std::fabs(mx));
    lo = -r;
    hi = r;
  } else {
    lo = std::min(0.0f, mn);
    hi = std::max(0.0f, mx);
  }
  BlockParams b{};
  const float range = round_to(t, hi - lo);
  b.scale = round_to(t, range / static_cast<float>(p.qmax - p.qmin));
  if (mode == QuantMode::LinearSymmetric && !dtype_is_signed_int(qdt)) {
    b.has_zero_point = true;
    b.zero_point = static_cast<float>(p.qmax / 2);
  } else if (mode == QuantMode::Linear) {
    b.has_zero_point = true;
    const float num = round_to(t, round_to(t, static_cast<float>(p.qmin) * hi) - round_to(t, static_cast<float>(p.qmax) * lo));
    // hi == lo only for an all-zero block: numpy gives NaN here; we use qmin so the block stays 0.
    float z = range == 0.0f ? static_cast<float>(p.qmin) : std::nearbyint(round_to(t, num / range));
    b.zero_point = std::min(std::max(z, static_cast<float>(p.qmin)), static_cast<float>(p.qmax));
  }
  return b;
}

int quantize_value(float w, const BlockParams& b, const Plan& p) {
  // An all-zero block has scale 0 (numpy: 0/0 = NaN); every such value is exactly 0 → q = zero point.
  float q = b.scale == 0.0f ? 0.0f : std::nearbyint(round_to(p.wdt, w / b.scale));
  if (b.has_zero_point) q = round_to(p.wdt, q + b.zero_point);
  q = std::min(std::max(q, static_cast<float>(p.qmin)), static_cast<float>(p.qmax));
  return static_cast<int>(q);
}

QuantizeResult make_result(const TensorData& w, const QuantizeOptions& o, const Plan& p, bool zp) {
  QuantizeResult r;
  r.quantized = Tensor(o.dtype, w.shape);
  r.scale = Tensor(w.dtype, p.scale_shape);
  if (zp) r.zero_point = Tensor(o.dtype, p.scale_shape);
  return r;
}

bool has_zero_point(const QuantizeOptions& o) {
  return o.mode == QuantMode::Linear || !dtype_is_signed_int(o.dtype);
}

}  // namespace qdetail

using namespace qdetail;

namespace {

// std::nearbyint under the default round-to-nearest-even mode, without the libm call that baseline
// x86-64 makes for it: adding and subtracting 2^23 rounds |v| < 2^23 to an integer, half to even.
inline float round_half_even(float v) {
  const float a = std::fabs(v);
  if (!(a < 8388608.0f)) return v;  // already integral, inf or NaN
  return std::copysign((a + 8388608.0f) - 8388608.0f, v);
}

inline float round_to_half(float v);

// Typed element access, chosen once per tensor so the hot loops carry no dtype switch. Arithmetic
// matches block_params/quantize_value exactly: F16 rounds each intermediate to fp16 (RNE), as round_to.
template <bool F16>
struct WeightAccess {
  const uint8_t* data;
  float load(size_t i) const { return load_float_element<F16>(data, i); }
  static float round(float v) {
    if constexpr (F16) return round_to_half(v);
    else return v;
  }
};

// half_to_float(float_to_half(v)) computed in the float domain (bit-identical, no branches on the
// common normal path): RNE on bit 13 for normals, on a 2^-24 grid for subnormals, inf past 65520.
inline float round_to_half(float v) {
  uint32_t x;
  std::memcpy(&x, &v, 4);
  const uint32_t sign = x & 0x80000000u, a = x & 0x7FFFFFFFu;
  if (a >= 0x38800000u && a < 0x477FF000u) {  // fp16 normal range
    const uint32_t bits = sign | ((a + 0xFFFu + ((a >> 13) & 1u)) & ~0x1FFFu);
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  if (a < 0x38800000u) return std::copysign(round_half_even(std::fabs(v) * 16777216.0f) * (1.0f / 16777216.0f), v);
  return half_to_float(float_to_half(v));  // inf / NaN / overflow
}

// Same value as quantize_value, inlined and with the block constants hoisted.
template <bool F16>
inline uint8_t quantize_one(float w, float scale, bool scale_zero, bool zp, float zero_point, float qmin, float qmax) {
  using A = WeightAccess<F16>;
  float q = scale_zero ? 0.0f : round_half_even(A::round(w / scale));
  if (zp) q = A::round(q + zero_point);
  q = std::min(std::max(q, qmin), qmax);
  // Int8/Int4 store static_cast<int8_t>, the unsigned types static_cast<uint8_t>: for the
  // integer-valued q in [qmin, qmax] both equal the low byte of the int.
  return static_cast<uint8_t>(static_cast<int>(q));
}

// min/max with NaN sticky in mn, as the reference.
struct MinMax {
  float mn = INFINITY, mx = -INFINITY;
  void add(float v) {
    if (std::isnan(v)) mn = NAN;
    if (!std::isnan(mn)) {
      mn = std::min(mn, v);
      mx = std::max(mx, v);
    }
  }
};

template <bool F16>
void quantize_typed(const TensorData& w, const QuantizeOptions& o, const Plan& p, QuantizeResult& r) {
  const WeightAccess<F16> acc{w.data};
  uint8_t* out = r.quantized.bytes.data();
  const float qmin = static_cast<float>(p.qmin), qmax = static_cast<float>(p.qmax);
  const int64_t nblocks = shape_numel(p.scale_shape);

  if (nblocks == 1) {  // per tensor: one block, so split the element range instead
    const size_t n = static_cast<size_t>(w.numel()), chunk = 1 << 16, chunks = (n + chunk - 1) / chunk;
    std::vector<float> mns(chunks, INFINITY), mxs(chunks, -INFINITY);
    parallel_for(chunks, [&](size_t c) {
      MinMax m;
      for (size_t i = c * chunk, e = std::min(n, (c + 1) * chunk); i < e; ++i) m.add(acc.load(i));
      mns[c] = m.mn;
      mxs[c] = m.mx;
    });
    float mn = INFINITY, mx = -INFINITY;
    for (size_t c = 0; c < chunks; ++c) {
      if (std::isnan(mns[c])) mn = NAN;
      if (std::isnan(mn)) break;
      mn = std::min(mn, mns[c]);
      mx = std::max(mx, mxs[c]);
    }
    if (!std::isfinite(mn) || !std::isfinite(mx)) throw Error("EINVAL", "quantize: weight contains inf or NaN");
    const BlockParams bp = block_params(mn, mx, p, o.mode, o.dtype);
    r.scale.set_float(0, bp.scale);
    if (r.zero_point) r.zero_point->set_float(0, bp.zero_point);
    parallel_for(chunks, [&](size_t c) {
      for (size_t i = c * chunk, e = std::min(n, (c + 1) * chunk); i < e; ++i)
        out[i] = quantize_one<F16>(acc.load(i), bp.scale, bp.scale == 0.0f, bp.has_zero_point, bp.zero_point, qmin, qmax);
    });
    return;
  }

  // Collapse trailing axes that a block covers whole (their scale dim is 1), so a block's
  // contiguous runs are as long as possible: per-channel on axis 0 becomes one run per block.
  std::vector<int64_t> shape = w.shape, block = p.block, sshape = p.scale_shape;
  while (shape.size() > 1 && block.back() == shape.back()) {
    const int64_t inner = shape.back();
    shape.pop_back();
    block.pop_back();
    sshape.pop_back();
    shape.back() *= inner;
    block.back() *= inner;
  }
  const size_t rank = shape.size();
  std::vector<int64_t> strides(rank, 1);
  for (size_t k = rank; k-- > 1;) strides[k - 1] = strides[k] * shape[k];
  const int64_t run = block[rank - 1];
  int64_t runs_per_block = 1;
  for (size_t k = 0; k + 1 < rank; ++k) runs_per_block *= block[k];

  // Calls fn(base) for every contiguous run (length `run`) of block b, in row-major order.
  auto for_each_run = [&](int64_t b, int64_t* origin, int64_t* pos, auto&& fn) {
    for (size_t k = rank; k-- > 0;) {
      origin[k] = (b % sshape[k]) * block[k];
      b /= sshape[k];
      pos[k] = 0;
    }
    for (int64_t n = 0; n < runs_per_block; ++n) {
      int64_t base = 0;
      for (size_t k = 0; k < rank; ++k) base += (origin[k] + pos[k]) * strides[k];
      fn(static_cast<size_t>(base));
      for (size_t k = rank - 1; k-- > 0;) {
        if (++pos[k] < block[k]) break;
        pos[k] = 0;
      }
    }
  };

  const size_t per_block = static_cast<size_t>(std::max<int64_t>(1, w.numel() / nblocks));
  const size_t grain = std::max<size_t>(1, 16384 / per_block);
  const size_t tasks = (static_cast<size_t>(nblocks) + grain - 1) / grain;
  parallel_for(tasks, [&](size_t t) {
    std::vector<int64_t> scratch(2 * rank);
    int64_t* origin = scratch.data();
    int64_t* pos = origin + rank;
    for (size_t bi = t * grain, be = std::min<size_t>(static_cast<size_t>(nblocks), (t + 1) * grain); bi < be; ++bi) {
      const int64_t b = static_cast<int64_t>(bi);
      MinMax m;
      for_each_run(b, origin, pos, [&](size_t base) {
        for (size_t i = base, e = base + static_cast<size_t>(run); i < e; ++i) m.add(acc.load(i));
      });
      if (!std::isfinite(m.mn) || !std::isfinite(m.mx)) throw Error("EINVAL", "quantize: weight contains inf or NaN");
      const BlockParams bp = block_params(m.mn, m.mx, p, o.mode, o.dtype);
      r.scale.set_float(bi, bp.scale);
      if (r.zero_point) r.zero_point->set_float(bi, bp.zero_point);
      const bool sz = bp.scale == 0.0f;
      for_each_run(b, origin, pos, [&](size_t base) {
        for (size_t i = base, e = base + static_cast<size_t>(run); i < e; ++i)
          out[i] = quantize_one<F16>(acc.load(i), bp.scale, sz, bp.has_zero_point, bp.zero_point, qmin, qmax);
      });
    }
  });
}

}  // namespace

QuantizeResult quantize_linear(const TensorData& w, const QuantizeOptions& o) {
  Plan p = make_plan(w, o);
  QuantizeResult r = make_result(w, o, p, has_zero_point(o));
  if (w.numel() == 0) return r;
  if (w.dtype == DType::Float16) quantize_typed<true>(w, o, p, r);
  else quantize_typed<false>(w, o, p, r);
  return r;
}

QuantizeResult quantize_linear_ref(const TensorData& w, const QuantizeOptions& o) {
  Plan p = make_plan(w, o);
  QuantizeResult r = make_result(w, o, p, has_zero_point(o));
  const size_t rank = w.shape.size();
  const int64_t n = w.numel(), nblocks = shape_numel(p.scale_shape);
  auto block_of = [&](int64_t i) {
    int64_t b = 0, mul = 1;
    for (size_t k = rank; k-- > 0;) {
      const int64_t ik = i % w.shape[k];
      i /= w.shape[k];
      b += (ik / p.block[k]) * mul;
      mul *= p.scale_shape[k];
    }
    return b;
  };
  std::vector<float> mn(static_cast<size_t>(nblocks), INFINITY), mx(static_cast<size_t>(nblocks), -INFINITY);
  for (int64_t i = 0; i < n; ++i) {
    const size_t b = static_cast<size_t>(block_of(i));
    const float v = w.get_float(static_cast<size_t>(i));
    if (std::isnan(v)) mn[b] = NAN;
    if (std::isnan(mn[b])) continue;
    mn[b] = std::min(mn[b], v);
    mx[b] = std::max(mx[b], v);
  }
  std::vector<BlockParams> bp(static_cast<size_t>(nblocks));
  for (size_t b = 0; b < bp.size(); ++b) {
    if (!std::isfinite(mn[b]) || !std::isfinite(mx[b])) throw Error("EINVAL", "quantize: weight contains inf or NaN");
    bp[b] = block_params(mn[b], mx[b], p, o.mode, o.dtype);
    r.scale.set_float(b, bp[b].scale);
    if (r.zero_point) r.zero_point->set_float(b, bp[b].zero_point);
  }
  for (int64_t i = 0; i < n; ++i)
    r.quantized.set_float(static_cast<size_t>(i),
                          static_cast<float>(quantize_value(w.get_float(static_cast<size_t>(i)), bp[static_cast<size_t>(block_of(i))], p)));
  return r;
}

}  // namespace cmo::kernels
