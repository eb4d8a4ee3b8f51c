#include "vecmath.h"

#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>

#include "fastmath.h"

// The vector-typed helpers are all inlined into their level's entry points (no vector crosses a call),
// so GCC's note that such arguments would change the ABI does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace cmo::exec::vec {
namespace {

#define CMO_INLINE inline __attribute__((always_inline))
#define CMO_LAMBDA_INLINE __attribute__((always_inline))

// ---- element functions on GCC vector types (one template, every width) ----
// GCC's if-conversion of exp_fast's selects does not survive inside target("avx2") / target("avx512f")
// functions (jump threading turns them back into branches first), so the maps are written on vector
// types directly: the same operations in the same order as fastmath.h's scalar exp_fast / erf_fast
// (no FMA contraction), which also handle the tails — every lane gives the scalar function's bits.

template <int W>
struct VT {
  typedef float F __attribute__((vector_size(W * 4)));
  typedef int32_t I __attribute__((vector_size(W * 4)));
};

template <class V>
CMO_INLINE V splat(float c) {
  return V{} + c;
}

template <class V, class I>
CMO_INLINE V vexp(V x) {
  const V lo = splat<V>(-87.33654022216796875f), hi = splat<V>(88.72283935546875f);
  V xc = x < lo ? lo : x;   // std::max(x, lo)
  xc = hi < xc ? hi : xc;   // std::min(xc, hi)
  xc = x == x ? xc : V{};  // NaN: anything finite, replaced at the end
  const V fx = xc * 1.44269504088896341f + 0.5f;
  V fn = __builtin_convertvector(__builtin_convertvector(fx, I), V);
  fn = fn > fx ? fn - 1.0f : fn;
  const V r = (xc - fn * 0.693359375f) - fn * -2.12194440e-4f;
  V p = splat<V>(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const I bits = (__builtin_convertvector(fn, I) + 127) << 23;
  V y = p * (V)bits;
  y = x < lo ? V{} : y;
  y = x > hi ? splat<V>(std::numeric_limits<float>::infinity()) : y;
  return x == x ? y : x;
}

template <class V, class I>
CMO_INLINE V verf(V x) {
  const I sign_bit = I{} + std::numeric_limits<int32_t>::min();  // 0x80000000 per lane
  const I xb = (I)x;                                               // GCC vector casts keep the bits
  const V ax = (V)(xb & ~sign_bit);
  const V t = 1.0f / (1.0f + 0.3275911f * ax);
  V p = splat<V>(1.061405429f);
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  const V e = 1.0f - p * t * vexp<V, I>(-ax * ax);
  const V x2 = x * x;
  const V series = x * (1.12837916709551257f +
                        x2 * (-0.37612638903183752f +
                              x2 * (0.11283791670955126f + x2 * (-0.02686617064513125f + x2 * 0.00522397762544218f))));
  const V signed_e = (V)(((I)e & ~sign_bit) | (xb & sign_bit));  // std::copysign(e, x)
  return ax < 0.3f ? series : signed_e;
}

template <Act A, class V, class I>
CMO_INLINE V act_v(V x, float alpha) {
  if constexpr (A == Act::Identity) return x;
  if constexpr (A == Act::Sigmoid) return 1.0f / (1.0f + vexp<V, I>(-x));
  if constexpr (A == Act::Silu) return x / (1.0f + vexp<V, I>(-x));
  if constexpr (A == Act::GeluExact) return 0.5f * x * (1.0f + verf<V, I>(x * 0.70710678118654752f));
  if constexpr (A == Act::GeluTanh) {
    const V u2 = 1.5957691216057308f * (x + 0.044715f * x * x * x);
    return x / (1.0f + vexp<V, I>(-u2));
  }
  if constexpr (A == Act::GeluSigmoid) return x / (1.0f + vexp<V, I>(-alpha * x));
  return x;
}

// The scalar twins (tails; and the functions' definition): fastmath.h's exp_fast / erf_fast.
template <Act A>
CMO_INLINE float act_one(float x, float alpha) {
  if constexpr (A == Act::Identity) return x;
  if constexpr (A == Act::Sigmoid) return 1.0f / (1.0f + exp_fast(-x));
  if constexpr (A == Act::Silu) return x / (1.0f + exp_fast(-x));
  if constexpr (A == Act::GeluExact) return 0.5f * x * (1.0f + erf_fast(x * 0.70710678118654752f));
  // 0.5·x·(1 + tanh(u)) = x·sigmoid(2u): no cancellation where tanh(u) ≈ -1.
  if constexpr (A == Act::GeluTanh) {
    const float u2 = 1.5957691216057308f * (x + 0.044715f * x * x * x);  // 2·sqrt(2/π)·(x + 0.044715x³)
    return x / (1.0f + exp_fast(-u2));
  }
  if constexpr (A == Act::GeluSigmoid) return x / (1.0f + exp_fast(-alpha * x));
  return x;
}

template <int W>
CMO_INLINE typename VT<W>::F load(const float* p) {
  typename VT<W>::F v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <int W>
CMO_INLINE void store(float* p, typename VT<W>::F v) {
  std::memcpy(p, &v, sizeof v);
}

// y[i] = f(x[i]) for a map f given as (vector, scalar) twins over W lanes.
template <int W, class FV, class FS>
CMO_INLINE void map_loop(const float* x, float* y, int64_t n, FV fv, FS fs) {
  int64_t i = 0;
  for (; i + W <= n; i += W) store<W>(y + i, fv(load<W>(x + i), i));
  for (; i < n; ++i) y[i] = fs(x[i], i);
}

template <int W, Act A>
CMO_INLINE void act_loop(const float* x, float* y, int64_t n, float alpha) {
  using V = typename VT<W>::F;
  using I = typename VT<W>::I;
  map_loop<W>(x, y, n, [&](V v, int64_t) CMO_LAMBDA_INLINE { return act_v<A, V, I>(v, alpha); }, [&](float v, int64_t) { return act_one<A>(v, alpha); });
}
template <int W, Act A>
CMO_INLINE void act_mul_loop(const float* x, const float* g, float* y, int64_t n, float alpha) {
  using V = typename VT<W>::F;
  using I = typename VT<W>::I;
  map_loop<W>(
      x, y, n, [&](V v, int64_t i) CMO_LAMBDA_INLINE { return load<W>(g + i) * act_v<A, V, I>(v, alpha); },
      [&](float v, int64_t i) { return g[i] * act_one<A>(v, alpha); });
}

#define CMO_ACT_SWITCH(CALL)                                       \
  switch (act) {                                                   \
    case Act::Identity: CALL(Act::Identity); break;                \
    case Act::Sigmoid: CALL(Act::Sigmoid); break;                  \
    case Act::Silu: CALL(Act::Silu); break;                        \
    case Act::GeluExact: CALL(Act::GeluExact); break;              \
    case Act::GeluTanh: CALL(Act::GeluTanh); break;                \
    case Act::GeluSigmoid: CALL(Act::GeluSigmoid); break;          \
  }

template <int W>
CMO_INLINE void activation_body(Act act, const float* x, float* y, int64_t n, float alpha) {
#define CMO_CALL(A) act_loop<W, A>(x, y, n, alpha)
  CMO_ACT_SWITCH(CMO_CALL)
#undef CMO_CALL
}
template <int W>
CMO_INLINE void activation_mul_body(Act act, const float* x, const float* g, float* y, int64_t n, float alpha) {
#define CMO_CALL(A) act_mul_loop<W, A>(x, g, y, n, alpha)
  CMO_ACT_SWITCH(CMO_CALL)
#undef CMO_CALL
}

// Reductions keep kLanes independent partial results (no -ffast-math needed to vectorize them).
constexpr int kLanes = 16;

CMO_INLINE float max_body(const float* x, int64_t n) {
  float acc[kLanes];
  for (int j = 0; j < kLanes; ++j) acc[j] = -std::numeric_limits<float>::infinity();
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] = acc[j] < x[i + j] ? x[i + j] : acc[j];
  float m = -std::numeric_limits<float>::infinity();
  for (; i < n; ++i) m = m < x[i] ? x[i] : m;
  for (int j = 0; j < kLanes; ++j) m = m < acc[j] ? acc[j] : m;
  return m;
}

CMO_INLINE double sum_body(const float* y, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += y[i + j];
  double s = 0;
  for (; i < n; ++i) s += y[i];
  for (int j = 0; j < kLanes; ++j) s += acc[j];
  return s;
}

template <int W>
CMO_INLINE double exp_shift_sum_body(const float* x, float shift, float* y, int64_t n) {
  using V = typename VT<W>::F;
  using I = typename VT<W>::I;
  map_loop<W>(x, y, n, [&](V v, int64_t) CMO_LAMBDA_INLINE { return vexp<V, I>(v - shift); }, [&](float v, int64_t) { return exp_fast(v - shift); });
  return sum_body(y, n);
}

CMO_INLINE void scale_body(float* y, float s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] *= s;
}

CMO_INLINE void sum_sumsq_body(const float* x, int64_t n, double& sum, double& sumsq) {
  constexpr int W = 8;
  double s[W] = {}, q[W] = {};
  int64_t i = 0;
  for (; i + W <= n; i += W)
    for (int j = 0; j < W; ++j) {
      const double v = x[i + j];
      s[j] += v;
      q[j] += v * v;
    }
  double ts = 0, tq = 0;
  for (; i < n; ++i) {
    const double v = x[i];
    ts += v;
    tq += v * v;
  }
  for (int j = 0; j < W; ++j) ts += s[j], tq += q[j];
  sum = ts;
  sumsq = tq;
}

template <int W, Act A>
CMO_INLINE void norm_loop(const float* x, float mean, float inv, const float* g, const float* b, float* y, int64_t n) {
  using V = typename VT<W>::F;
  using I = typename VT<W>::I;
  // g / b absent: 1 / 0 (multiplying by 1 and adding 0 change no bits).
  map_loop<W>(
      x, y, n,
      [&](V v, int64_t i) CMO_LAMBDA_INLINE {
        V t = (v - mean) * inv;
        if (g) t = t * load<W>(g + i);
        if (b) t = t + load<W>(b + i);
        return act_v<A, V, I>(t, 1.702f);
      },
      [&](float v, int64_t i) {
        float t = (v - mean) * inv;
        if (g) t = t * g[i];
        if (b) t = t + b[i];
        return act_one<A>(t, 1.702f);
      });
}
template <int W>
CMO_INLINE void normalize_affine_body(const float* x, float mean, float inv, const float* g, const float* b, float* y, int64_t n,
                                      Act act) {
#define CMO_CALL(A) norm_loop<W, A>(x, mean, inv, g, b, y, n)
  CMO_ACT_SWITCH(CMO_CALL)
#undef CMO_CALL
}
template <int W, Act A>
CMO_INLINE void affine_loop(const float* x, float a, float c, float* y, int64_t n) {
  using V = typename VT<W>::F;
  using I = typename VT<W>::I;
  map_loop<W>(x, y, n, [&](V v, int64_t) CMO_LAMBDA_INLINE { return act_v<A, V, I>(v * a + c, 1.702f); },
              [&](float v, int64_t) { return act_one<A>(v * a + c, 1.702f); });
}
template <int W>
CMO_INLINE void affine_scalar_body(const float* x, float a, float c, float* y, int64_t n, Act act) {
#define CMO_CALL(A) affine_loop<W, A>(x, a, c, y, n)
  CMO_ACT_SWITCH(CMO_CALL)
#undef CMO_CALL
}

struct Table {
  const char* name;
  void (*activation)(Act, const float*, float*, int64_t, float);
  void (*activation_mul)(Act, const float*, const float*, float*, int64_t, float);
  float (*max_of)(const float*, int64_t);
  double (*exp_shift_sum)(const float*, float, float*, int64_t);
  void (*scale)(float*, float, int64_t);
  void (*sum_sumsq)(const float*, int64_t, double&, double&);
  void (*normalize_affine)(const float*, float, float, const float*, const float*, float*, int64_t, Act);
  void (*affine_scalar)(const float*, float, float, float*, int64_t, Act);
};

// One set of entry points per ISA level: the same bodies, compiled with the level's target flags.
#define CMO_VEC_LEVEL(SUFFIX, ATTR, NAME, W)                                                                              \
  ATTR void activation_##SUFFIX(Act a, const float* x, float* y, int64_t n, float al) { activation_body<W>(a, x, y, n, al); } \
  ATTR void activation_mul_##SUFFIX(Act a, const float* x, const float* g, float* y, int64_t n, float al) {              \
    activation_mul_body<W>(a, x, g, y, n, al);                                                                            \
  }                                                                                                                    \
  ATTR float max_of_##SUFFIX(const float* x, int64_t n) { return max_body(x, n); }                                     \
  ATTR double exp_shift_sum_##SUFFIX(const float* x, float s, float* y, int64_t n) { return exp_shift_sum_body<W>(x, s, y, n); } \
  ATTR void scale_##SUFFIX(float* y, float s, int64_t n) { scale_body(y, s, n); }                                      \
  ATTR void sum_sumsq_##SUFFIX(const float* x, int64_t n, double& s, double& q) { sum_sumsq_body(x, n, s, q); }        \
  ATTR void normalize_affine_##SUFFIX(const float* x, float m, float i, const float* g, const float* b, float* y, int64_t n, Act a) { \
    normalize_affine_body<W>(x, m, i, g, b, y, n, a);                                                                     \
  }                                                                                                                    \
  ATTR void affine_scalar_##SUFFIX(const float* x, float a, float c, float* y, int64_t n, Act act) {                    \
    affine_scalar_body<W>(x, a, c, y, n, act);                                                                            \
  }                                                                                                                    \
  const Table table_##SUFFIX{NAME,           activation_##SUFFIX,       activation_mul_##SUFFIX,                          \
                             max_of_##SUFFIX, exp_shift_sum_##SUFFIX,   scale_##SUFFIX,                                   \
                             sum_sumsq_##SUFFIX, normalize_affine_##SUFFIX, affine_scalar_##SUFFIX};

CMO_VEC_LEVEL(base, , "baseline", 4)
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CMO_VEC_X86 1
CMO_VEC_LEVEL(avx2, __attribute__((target("avx2,fma"))), "avx2", 8)
CMO_VEC_LEVEL(avx512, __attribute__((target("avx512f"))), "avx512", 16)
#endif

const Table* detect() {
#ifdef CMO_VEC_X86
  // __builtin_cpu_supports also checks that the OS saves the wider registers (XGETBV).
  if (__builtin_cpu_supports("avx512f")) return &table_avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &table_avx2;
#endif
  return &table_base;
}

std::atomic<const Table*> g_table{nullptr};

const Table& table() {
  const Table* t = g_table.load(std::memory_order_acquire);
  if (!t) {
    t = detect();
    g_table.store(t, std::memory_order_release);
  }
  return *t;
}

}  // namespace

const char* level() { return table().name; }

bool force_level(const char* name) {
  if (!name) {
    g_table.store(detect(), std::memory_order_release);
    return true;
  }
  const Table* want = nullptr;
  if (std::strcmp(name, "baseline") == 0) want = &table_base;
#ifdef CMO_VEC_X86
  if (std::strcmp(name, "avx2") == 0 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) want = &table_avx2;
  if (std::strcmp(name, "avx512") == 0 && __builtin_cpu_supports("avx512f")) want = &table_avx512;
#endif
  if (!want) return false;
  g_table.store(want, std::memory_order_release);
  return true;
}

void activation(Act act, const float* x, float* y, int64_t n, float alpha) { table().activation(act, x, y, n, alpha); }
void activation_mul(Act act, const float* x, const float* g, float* y, int64_t n, float alpha) {
  table().activation_mul(act, x, g, y, n, alpha);
}
float max_of(const float* x, int64_t n) { return table().max_of(x, n); }
double exp_shift_sum(const float* x, float shift, float* y, int64_t n) { return table().exp_shift_sum(x, shift, y, n); }
void scale(float* y, float s, int64_t n) { table().scale(y, s, n); }
void sum_sumsq(const float* x, int64_t n, double& sum, double& sumsq) { table().sum_sumsq(x, n, sum, sumsq); }
void normalize_affine(const float* x, float mean, float inv, const float* g, const float* b, float* y, int64_t n, Act act) {
  table().normalize_affine(x, mean, inv, g, b, y, n, act);
}
void affine_scalar(const float* x, float a, float c, float* y, int64_t n, Act act) { table().affine_scalar(x, a, c, y, n, act); }

double act_reference(Act act, double x, double alpha) {
  switch (act) {
    case Act::Identity: return x;
    case Act::Sigmoid: return 1.0 / (1.0 + std::exp(-x));
    case Act::Silu: return x / (1.0 + std::exp(-x));
    case Act::GeluExact: return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    case Act::GeluTanh: {
      // 0.5·x·(1 + tanh(u)) written as x / (1 + e^(-2u)): in double, 1 + tanh(u) loses every digit once
      // tanh(u) rounds to -1 (x below about -6), the exponential form does not.
      const double u = std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x);
      return x / (1.0 + std::exp(-2.0 * u));
    }
    case Act::GeluSigmoid: return x / (1.0 + std::exp(-alpha * x));
  }
  return x;
}

}  // namespace cmo::exec::vec
