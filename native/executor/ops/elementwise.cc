// Elementwise unary and binary ops (numpy broadcasting), activations, select, cast.
#include <cmath>

#include "../../util/fp16.h"
#include "common.h"
#include "fastmath.h"
#include "vecmath.h"

namespace cmo::exec {
namespace {

bool declared_int(const OpContext& c, size_t k = 0) {
  DType d = compute_dtype(c.output_type(k).dtype);
  return d == DType::I32;
}

template <class F>
void unary(OpContext& c, F f) {
  Tensor x = as_f32(c.in("x"));
  Tensor y = Tensor::f32(x.shape);
  const float* src = x.fdata();
  float* dst = y.fdata();
  parallel_range(x.size(), c.threads(), [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) dst[k] = f(src[k]);
  });
  c.set(0, declared_int(c) ? as_i32(y) : std::move(y));
}

// Activations through the runtime-dispatched row kernels (vecmath.h: AVX-512 / AVX2 / baseline).
void unary_act(OpContext& c, vec::Act act, float alpha = 1.702f) {
  Tensor x = as_f32(c.in("x"));
  Tensor y = Tensor::f32(x.shape);
  const float* src = x.fdata();
  float* dst = y.fdata();
  parallel_range(x.size(), c.threads(), [&](int64_t b, int64_t e) { vec::activation(act, src + b, dst + b, e - b, alpha); });
  c.set(0, declared_int(c) ? as_i32(y) : std::move(y));
}

float erf_f(float x) { return static_cast<float>(std::erf(static_cast<double>(x))); }

#define CMO_UNARY(name, expr)                             \
  void k_##name(OpContext& c) {                           \
    unary(c, [](float x) -> float { return (expr); });    \
  }

CMO_UNARY(abs, std::fabs(x))
CMO_UNARY(acos, std::acos(x))
CMO_UNARY(asin, std::asin(x))
CMO_UNARY(atan, std::atan(x))
CMO_UNARY(atanh, std::atanh(x))
CMO_UNARY(ceil, std::ceil(x))
CMO_UNARY(floor, std::floor(x))
CMO_UNARY(round, std::nearbyint(x))  // MIL round: half to even (numpy.round)
CMO_UNARY(sign, static_cast<float>((x > 0) - (x < 0)))
CMO_UNARY(cos, std::cos(x))
CMO_UNARY(cosh, std::cosh(x))
CMO_UNARY(sin, std::sin(x))
CMO_UNARY(sinh, std::sinh(x))
CMO_UNARY(tan, std::tan(x))
CMO_UNARY(tanh, std::tanh(x))
CMO_UNARY(exp, exp_fast(x))
CMO_UNARY(exp2, std::exp2(x))
CMO_UNARY(sqrt, std::sqrt(x))
CMO_UNARY(square, x * x)
CMO_UNARY(erf, erf_f(x))
CMO_UNARY(relu, x > 0 ? x : 0.f)
CMO_UNARY(relu6, std::min(std::max(x, 0.f), 6.f))
void k_sigmoid(OpContext& c) { unary_act(c, vec::Act::Sigmoid); }
void k_silu(OpContext& c) { unary_act(c, vec::Act::Silu); }
CMO_UNARY(softplus, static_cast<float>(std::log1p(std::exp(-std::fabs(static_cast<double>(x)))) + std::max(0.0, static_cast<double>(x))))
CMO_UNARY(softsign, x / (1.f + std::fabs(x)))
CMO_UNARY(neg, -x)

void k_log(OpContext& c) {
  float eps = static_cast<float>(c.num("epsilon", 1e-45));
  unary(c, [eps](float x) { return std::log(x + eps); });
}
void k_rsqrt(OpContext& c) {
  float eps = static_cast<float>(c.num("epsilon", 1e-12));
  unary(c, [eps](float x) { return 1.f / std::sqrt(x + eps); });
}
void k_inverse(OpContext& c) {
  float eps = static_cast<float>(c.num("epsilon", 1e-4));
  unary(c, [eps](float x) { return 1.f / (x + eps); });
}
void k_leaky_relu(OpContext& c) {
  float a = static_cast<float>(c.num("alpha", 0.01));
  unary(c, [a](float x) { return x >= 0 ? x : a * x; });
}
void k_elu(OpContext& c) {
  float a = static_cast<float>(c.num("alpha", 1.0));
  unary(c, [a](float x) { return x > 0 ? x : a * (std::exp(x) - 1.f); });
}
void k_clip(OpContext& c) {
  float lo = static_cast<float>(c.num("alpha")), hi = static_cast<float>(c.num("beta"));
  unary(c, [lo, hi](float x) { return std::min(std::max(x, lo), hi); });
}
void k_clamped_relu(OpContext& c) {
  float a = static_cast<float>(c.num("alpha", 0.0)), b = static_cast<float>(c.num("beta", 6.0));
  unary(c, [a, b](float x) { return std::min(b, x >= 0 ? x : a * x); });
}
void k_threshold(OpContext& c) {
  float a = static_cast<float>(c.num("alpha"));
  unary(c, [a](float x) { return std::max(x, a); });
}
void k_sigmoid_hard(OpContext& c) {
  float a = static_cast<float>(c.num("alpha", 0.2)), b = static_cast<float>(c.num("beta", 0.5));
  unary(c, [a, b](float x) { return std::min(std::max(a * x + b, 0.f), 1.f); });
}
void k_scaled_tanh(OpContext& c) {
  float a = static_cast<float>(c.num("alpha", 1.0)), b = static_cast<float>(c.num("beta", 1.0));
  unary(c, [a, b](float x) { return a * std::tanh(b * x); });
}
void k_linear_activation(OpContext& c) {
  float a = static_cast<float>(c.num("alpha")), b = static_cast<float>(c.num("beta", 0.0));
  unary(c, [a, b](float x) { return a * x + b; });
}
void k_softplus_parametric(OpContext& c) {
  // alpha/beta are per channel (axis 1).
  Tensor x = as_f32(c.in("x"));
  Tensor al = as_f32(c.in("alpha")), be = as_f32(c.in("beta"));
  if (x.rank() < 2 || al.size() != x.shape[1] || be.size() != x.shape[1]) c.fail("alpha/beta must have C = x.shape[1] elements");
  Tensor y = Tensor::f32(x.shape);
  int64_t C = x.shape[1], inner = x.size() / (x.shape[0] * C);
  for (int64_t k = 0; k < x.size(); ++k) {
    int64_t ch = (k / inner) % C;
    y.fdata()[k] = al.fdata()[ch] * std::log1p(std::exp(be.fdata()[ch] * x.fdata()[k]));
  }
  c.set(0, std::move(y));
}
void k_prelu(OpContext& c) {
  Tensor x = as_f32(c.in("x"));
  Tensor al = as_f32(c.in("alpha"));
  if (x.rank() < 2 || al.size() != x.shape[1]) c.fail("alpha must have C = x.shape[1] elements");
  Tensor y = Tensor::f32(x.shape);
  int64_t C = x.shape[1], inner = x.size() / (x.shape[0] * C);
  for (int64_t k = 0; k < x.size(); ++k) {
    float v = x.fdata()[k];
    y.fdata()[k] = v >= 0 ? v : al.fdata()[(k / inner) % C] * v;
  }
  c.set(0, std::move(y));
}

// gelu modes as in MIL: EXACT, TANH_APPROXIMATION, SIGMOID_APPROXIMATION.
void k_gelu(OpContext& c) {
  std::string mode = c.str("mode", "EXACT");
  if (mode == "EXACT") unary_act(c, vec::Act::GeluExact);
  else if (mode == "TANH_APPROXIMATION") unary_act(c, vec::Act::GeluTanh);
  else if (mode == "SIGMOID_APPROXIMATION") unary_act(c, vec::Act::GeluSigmoid, 1.702f);
  else c.fail("unknown gelu mode '" + mode + "'");
}

// ---- binary ----

enum class Bin { Add, Sub, Mul, Div, FloorDiv, Mod, Pow, Max, Min, Eq, Ne, Lt, Le, Gt, Ge, And, Or, Xor };

bool is_compare(Bin op) { return op >= Bin::Eq; }

template <class T>
T apply_arith(Bin op, T a, T b) {
  switch (op) {
    case Bin::Add: return a + b;
    case Bin::Sub: return a - b;
    case Bin::Mul: return a * b;
    case Bin::Div: return a / b;
    case Bin::FloorDiv: return static_cast<T>(std::floor(static_cast<double>(a) / static_cast<double>(b)));
    case Bin::Mod: {
      double r = std::fmod(static_cast<double>(a), static_cast<double>(b));
      if (r != 0 && ((r < 0) != (b < 0))) r += b;
      return static_cast<T>(r);
    }
    case Bin::Pow: return static_cast<T>(std::pow(static_cast<double>(a), static_cast<double>(b)));
    case Bin::Max: return a > b ? a : b;
    case Bin::Min: return a < b ? a : b;
    default: return T{};
  }
}

template <class T>
int32_t apply_cmp(Bin op, T a, T b) {
  switch (op) {
    case Bin::Eq: return a == b;
    case Bin::Ne: return a != b;
    case Bin::Lt: return a < b;
    case Bin::Le: return a <= b;
    case Bin::Gt: return a > b;
    case Bin::Ge: return a >= b;
    case Bin::And: return (a != 0) && (b != 0);
    case Bin::Or: return (a != 0) || (b != 0);
    case Bin::Xor: return (a != 0) != (b != 0);
    default: return 0;
  }
}

template <class T, class R, class F>
void run_binary(const T* a, const Shape& as, const T* b, const Shape& bs, R* out, const Shape& os, unsigned threads, F f) {
  if (as == bs) {
    parallel_range(numel(os), threads, [&](int64_t s, int64_t e) {
      for (int64_t k = s; k < e; ++k) out[k] = f(a[k], b[k]);
    });
    return;
  }
  if (numel(bs) == 1 && as == os) {
    T bv = b[0];
    parallel_range(numel(os), threads, [&](int64_t s, int64_t e) {
      for (int64_t k = s; k < e; ++k) out[k] = f(a[k], bv);
    });
    return;
  }
  broadcast_rows<2>(os, {&as, &bs}, threads, [&](int64_t o, int64_t len, const std::array<int64_t, 2>& off,
                                                 const std::array<int64_t, 2>& st) {
    const T* pa = a + off[0];
    const T* pb = b + off[1];
    for (int64_t k = 0; k < len; ++k) out[o + k] = f(pa[k * st[0]], pb[k * st[1]]);
  });
}

template <Bin op>
void k_binary(OpContext& c) {
  const Tensor& x = c.in("x");
  const Tensor& y = c.in("y");
  Shape os = broadcast_shapes(x.shape, y.shape, "op '" + c.node().name + "' (" + c.node().type + ")");
  bool ints = x.is_int() && y.is_int();
  if (is_compare(op)) {
    Tensor out = Tensor::boolean(os);
    if (ints)
      run_binary(x.idata(), x.shape, y.idata(), y.shape, out.idata(), os, c.threads(),
                 [](int32_t a, int32_t b) { return apply_cmp(op, a, b); });
    else {
      Tensor xf = as_f32(x), yf = as_f32(y);
      run_binary(xf.fdata(), xf.shape, yf.fdata(), yf.shape, out.idata(), os, c.threads(),
                 [](float a, float b) { return apply_cmp(op, a, b); });
    }
    c.set(0, std::move(out));
    return;
  }
  if (ints && op != Bin::Div) {
    Tensor out = Tensor::i32(os);
    if (op == Bin::FloorDiv || op == Bin::Mod) {
      const int32_t* yi = y.idata();
      for (int64_t k = 0; k < y.size(); ++k)
        if (yi[k] == 0) c.fail("integer division by zero");
    }
    run_binary(x.idata(), x.shape, y.idata(), y.shape, out.idata(), os, c.threads(),
               [](int32_t a, int32_t b) { return apply_arith<int32_t>(op, a, b); });
    c.set(0, std::move(out));
    return;
  }
  Tensor xf = as_f32(x), yf = as_f32(y);
  Tensor out = Tensor::f32(os);
  run_binary(xf.fdata(), xf.shape, yf.fdata(), yf.shape, out.fdata(), os, c.threads(),
             [](float a, float b) { return apply_arith<float>(op, a, b); });
  c.set(0, declared_int(c) ? as_i32(out) : std::move(out));
}

void k_logical_not(OpContext& c) {
  const Tensor& x = c.in("x");
  Tensor out = Tensor::boolean(x.shape);
  for (int64_t k = 0; k < x.size(); ++k) out.idata()[k] = x.at(k) == 0;
  c.set(0, std::move(out));
}

// select(cond, a, b): numpy where with three-way broadcasting.
void k_select(OpContext& c) {
  const Tensor& cond = c.in("cond");
  const Tensor& a = c.in("a");
  const Tensor& b = c.in("b");
  std::string what = "op '" + c.node().name + "' (select)";
  Shape os = broadcast_shapes(broadcast_shapes(cond.shape, a.shape, what), b.shape, what);
  Tensor ci = as_i32(cond);
  bool ints = a.is_int() && b.is_int();
  Tensor out = ints ? Tensor::i32(os) : Tensor::f32(os);
  if (ints && (a.dtype == DType::Bool && b.dtype == DType::Bool)) out.dtype = DType::Bool;
  Tensor af = ints ? as_i32(a) : as_f32(a), bf = ints ? as_i32(b) : as_f32(b);
  broadcast_rows<3>(os, {&ci.shape, &af.shape, &bf.shape}, c.threads(),
                    [&](int64_t o, int64_t len, const std::array<int64_t, 3>& off, const std::array<int64_t, 3>& st) {
                      const int32_t* pc = ci.idata() + off[0];
                      for (int64_t k = 0; k < len; ++k) {
                        bool t = pc[k * st[0]] != 0;
                        if (ints) out.idata()[o + k] = t ? af.idata()[off[1] + k * st[1]] : bf.idata()[off[2] + k * st[2]];
                        else out.fdata()[o + k] = t ? af.fdata()[off[1] + k * st[1]] : bf.fdata()[off[2] + k * st[2]];
                      }
                    });
  c.set(0, std::move(out));
}

// cast(x, dtype): fp16 rounds to nearest even (values stay fp32-stored), floats to ints truncate.
void k_cast(OpContext& c) {
  const Tensor& x = c.in("x");
  std::string d = c.str("dtype", "fp32");
  static const char* alias[][2] = {{"float16", "fp16"}, {"float32", "fp32"}, {"float64", "fp64"}, {"float", "fp32"},
                                   {"double", "fp64"}, {"int", "int32"}};
  for (auto& a : alias)
    if (d == a[0]) d = a[1];
  DType t = compute_dtype(d);
  Tensor out;
  if (t == DType::F32) {
    out = Tensor::f32(x.shape);
    Tensor xf = as_f32(x);
    for (int64_t k = 0; k < x.size(); ++k) {
      float v = xf.fdata()[k];
      out.fdata()[k] = d == "fp16" ? half_to_float(float_to_half(v)) : v;
    }
  } else if (t == DType::Bool) {
    out = Tensor::boolean(x.shape);
    for (int64_t k = 0; k < x.size(); ++k) out.idata()[k] = x.at(k) != 0;
  } else if (t == DType::I32) {
    out = Tensor::i32(x.shape);
    Tensor xi = as_i32(x);
    for (int64_t k = 0; k < x.size(); ++k) {
      int32_t v = xi.idata()[k];
      if (d == "int8") v = static_cast<int8_t>(v);
      else if (d == "uint8") v = static_cast<uint8_t>(v);
      else if (d == "int16") v = static_cast<int16_t>(v);
      else if (d == "uint16") v = static_cast<uint16_t>(v);
      out.idata()[k] = v;
    }
  } else {
    c.fail("cannot cast to " + d);
  }
  c.set(0, std::move(out));
}

void k_identity(OpContext& c) { c.set(0, c.in("x")); }

}  // namespace

void register_elementwise_ops() {
  const std::pair<const char*, Kernel> table[] = {
      {"abs", k_abs}, {"acos", k_acos}, {"asin", k_asin}, {"atan", k_atan}, {"atanh", k_atanh}, {"ceil", k_ceil},
      {"floor", k_floor}, {"round", k_round}, {"sign", k_sign}, {"cos", k_cos}, {"cosh", k_cosh}, {"sin", k_sin},
      {"sinh", k_sinh}, {"tan", k_tan}, {"tanh", k_tanh}, {"exp", k_exp}, {"exp2", k_exp2}, {"sqrt", k_sqrt},
      {"square", k_square}, {"erf", k_erf}, {"relu", k_relu}, {"relu6", k_relu6}, {"sigmoid", k_sigmoid},
      {"silu", k_silu}, {"softplus", k_softplus}, {"softsign", k_softsign}, {"neg", k_neg}, {"log", k_log},
      {"rsqrt", k_rsqrt}, {"inverse", k_inverse}, {"leaky_relu", k_leaky_relu}, {"elu", k_elu}, {"clip", k_clip},
      {"threshold", k_threshold}, {"clamped_relu", k_clamped_relu}, {"sigmoid_hard", k_sigmoid_hard}, {"scaled_tanh", k_scaled_tanh},
      {"linear_activation", k_linear_activation}, {"softplus_parametric", k_softplus_parametric}, {"prelu", k_prelu},
      {"gelu", k_gelu}, {"add", k_binary<Bin::Add>}, {"sub", k_binary<Bin::Sub>}, {"mul", k_binary<Bin::Mul>},
      {"real_div", k_binary<Bin::Div>}, {"floor_div", k_binary<Bin::FloorDiv>}, {"mod", k_binary<Bin::Mod>},
      {"pow", k_binary<Bin::Pow>}, {"maximum", k_binary<Bin::Max>}, {"minimum", k_binary<Bin::Min>},
      {"equal", k_binary<Bin::Eq>}, {"not_equal", k_binary<Bin::Ne>}, {"less", k_binary<Bin::Lt>},
      {"less_equal", k_binary<Bin::Le>}, {"greater", k_binary<Bin::Gt>}, {"greater_equal", k_binary<Bin::Ge>},
      {"logical_and", k_binary<Bin::And>}, {"logical_or", k_binary<Bin::Or>}, {"logical_xor", k_binary<Bin::Xor>},
      {"logical_not", k_logical_not}, {"select", k_select}, {"cast", k_cast}, {"identity", k_identity}};
  for (auto& e : table) register_kernel(e.first, e.second);
}

}  // namespace cmo::exec
