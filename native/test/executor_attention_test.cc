// Fused / vectorized transformer paths against plain references:
//  - vecmath's row kernels at every ISA level this CPU has (AVX-512, AVX2, baseline) vs double-precision
//    std:: functions, on odd lengths (tails) and extreme values; the levels give the same bits;
//  - the tiled online-softmax attention vs the whole-score-matrix reference (random shapes, broadcast
//    batch axes, transposed K / V, float / bool / int masks, fully masked rows, tiny key blocks);
//  - graph fusion: a matmul → mul → add → softmax → matmul program (and the activation chains) gives the
//    unfused result, does not fuse when an intermediate is a program output or has a second use, and a
//    fused node whose runtime shapes do not fit runs the original ops.
#include "alloc_counter.h"  // first: it replaces the global operator new
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <random>
#include <string>

#include "../executor/ops/attention.h"
#include "../executor/ops/vecmath.h"
#include "../linalg/blas.h"
#include "check.h"
#include "executor_test_util.h"

using namespace cmo::exec;
using namespace cmo::exec::testing;

namespace {

const char* kLevels[] = {"avx512", "avx2", "baseline"};
const vec::Act kActs[] = {vec::Act::Identity, vec::Act::Sigmoid, vec::Act::Silu, vec::Act::GeluExact, vec::Act::GeluTanh,
                          vec::Act::GeluSigmoid};

std::vector<float> act_inputs(size_t n, uint32_t seed) {
  auto v = random_floats(n, seed);
  for (size_t i = 0; i < n; ++i) v[i] *= 8.f;  // [-8, 8]: both tails of every activation
  const float extremes[] = {0.f, -0.f, 100.f, -100.f, 1e-8f, -1e-8f, 0.25f, -0.29f, 0.31f, 88.f, -88.f, 1e30f, -1e30f};
  for (size_t i = 0; i < n && i < sizeof(extremes) / sizeof(float); ++i) v[i * 7 % n] = extremes[i];
  return v;
}

// |got - want| <= abs + rel·|want|
bool close(double got, double want, double abs, double rel) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  return std::fabs(got - want) <= abs + rel * std::fabs(want);
}

Tensor tensor_of(Shape shape, uint32_t seed, float scale = 1.f) {
  Tensor t = Tensor::f32(shape);
  auto v = random_floats(static_cast<size_t>(t.size()), seed);
  for (int64_t i = 0; i < t.size(); ++i) t.fdata()[i] = v[static_cast<size_t>(i)] * scale;
  return t;
}

double max_abs_diff(const Tensor& a, const Tensor& b, bool nan_equal = true) {
  if (a.shape != b.shape) return std::numeric_limits<double>::infinity();
  double worst = 0;
  for (int64_t i = 0; i < a.size(); ++i) {
    const double x = a.fdata()[i], y = b.fdata()[i];
    if (std::isnan(x) || std::isnan(y)) {
      if (!(nan_equal && std::isnan(x) && std::isnan(y))) return std::numeric_limits<double>::infinity();
      continue;
    }
    worst = std::max(worst, std::fabs(x - y));
  }
  return worst;
}

}  // namespace

TEST(vecmath_levels_match_double_references_and_each_other) {
  std::printf("  vecmath detected level: %s\n", vec::level());
  const int64_t sizes[] = {1, 3, 7, 15, 16, 17, 31, 33, 1003};
  std::vector<std::vector<float>> baseline_out;
  for (const char* lv : kLevels) {
    if (!vec::force_level(lv)) {
      std::printf("  level %s not available on this CPU: skipped\n", lv);
      continue;
    }
    size_t slot = 0;
    for (int64_t n : sizes) {
      auto x = act_inputs(static_cast<size_t>(n), static_cast<uint32_t>(n));
      auto g = random_floats(static_cast<size_t>(n), static_cast<uint32_t>(n + 100));
      for (vec::Act act : kActs) {
        std::vector<float> y(static_cast<size_t>(n)), ym(static_cast<size_t>(n));
        vec::activation(act, x.data(), y.data(), n, 1.702f);
        vec::activation_mul(act, x.data(), g.data(), ym.data(), n, 1.702f);
        for (int64_t i = 0; i < n; ++i) {
          const double want = vec::act_reference(act, x[i], 1.702);
          // exp_fast: 2^-22 relative; erf_fast: 4e-7 absolute (times 0.5|x| in gelu). Plus the float
          // input's own rounding, amplified by the function's condition number |x·f'(x)/f(x)| (the
          // exponent's size: up to ~100 for gelu-tanh at x = -8, whose cube makes the exponent large).
          const double ax = std::fabs(x[i]);
          const double cond = act == vec::Act::GeluTanh ? 1.6 * (ax + 0.134 * ax * ax * ax) : act == vec::Act::GeluExact ? 0 : 1.702 * ax;
          const double rel = 2e-6 + 6e-8 * cond;
          const double abs = act == vec::Act::GeluExact ? 4e-7 * ax + 1e-30 : 1e-30;
          if (!close(y[i], want, abs, rel)) {
            std::fprintf(stderr, "  %s act %d x=%.9g got %.9g want %.9g\n", lv, static_cast<int>(act), x[i], y[i], want);
            CHECK(false);
          }
          CHECK(close(ym[i], static_cast<double>(g[i]) * want, std::fabs(g[i]) * abs + 1e-30, rel + 1e-7));
        }
        // The levels run the same operations: the same bits as the baseline build.
        if (slot >= baseline_out.size()) baseline_out.push_back(y);
        else CHECK(std::memcmp(baseline_out[slot].data(), y.data(), y.size() * 4) == 0);
        ++slot;
      }
      // Reductions and the normalization maps.
      auto r = random_floats(static_cast<size_t>(n), static_cast<uint32_t>(n + 7));
      double mx = -1e300, sum = 0, sq = 0;
      for (float v : r) mx = std::max(mx, static_cast<double>(v)), sum += v, sq += static_cast<double>(v) * v;
      CHECK(vec::max_of(r.data(), n) == static_cast<float>(mx));
      std::vector<float> e(static_cast<size_t>(n));
      const double es = vec::exp_shift_sum(r.data(), 0.5f, e.data(), n);
      double es_want = 0;
      for (int64_t i = 0; i < n; ++i) {
        const double w = std::exp(static_cast<double>(r[i]) - 0.5);
        es_want += w;
        CHECK(close(e[i], w, 0, 1e-6));
      }
      CHECK(close(es, es_want, 0, 1e-6));
      double s1, s2;
      vec::sum_sumsq(r.data(), n, s1, s2);
      CHECK(close(s1, sum, 1e-12, 1e-12));
      CHECK(close(s2, sq, 1e-12, 1e-12));
      std::vector<float> na(static_cast<size_t>(n)), af(static_cast<size_t>(n));
      vec::normalize_affine(r.data(), 0.1f, 2.f, g.data(), x.data(), na.data(), n, vec::Act::Silu);
      vec::affine_scalar(r.data(), 1.5f, -0.25f, af.data(), n, vec::Act::GeluExact);
      for (int64_t i = 0; i < n; ++i) {
        const double t = (static_cast<double>(r[i]) - 0.1) * 2.0 * g[i] + x[i];
        CHECK(close(na[i], vec::act_reference(vec::Act::Silu, t), 1e-5, 1e-5));
        CHECK(close(af[i], vec::act_reference(vec::Act::GeluExact, r[i] * 1.5 - 0.25), 1e-6, 1e-5));
      }
      // NaN in, NaN out; max_of skips NaN like std::max(m, x).
      float nan_row[3] = {1.f, std::numeric_limits<float>::quiet_NaN(), 2.f};
      float nan_out[3];
      vec::activation(vec::Act::Sigmoid, nan_row, nan_out, 3);
      CHECK(std::isnan(nan_out[1]) && close(nan_out[2], 1.0 / (1.0 + std::exp(-2.0)), 0, 2e-6));
      CHECK(vec::max_of(nan_row, 3) == 2.f);
    }
  }
  vec::force_level(nullptr);
}

namespace {

struct AttnCase {
  Shape qb, kb, vb;
  int64_t L, S, E, Ev;
  bool kt, vt;
  int mask;  // 0 none, 1 float, 2 bool, 3 int
  Shape mask_shape;
};

void check_attention(const AttnCase& c, uint32_t seed) {
  auto with = [](Shape b, int64_t r, int64_t col) {
    b.push_back(r);
    b.push_back(col);
    return b;
  };
  Tensor q = tensor_of(with(c.qb, c.L, c.E), seed);
  Tensor k = tensor_of(c.kt ? with(c.kb, c.E, c.S) : with(c.kb, c.S, c.E), seed + 1);
  Tensor v = tensor_of(c.vt ? with(c.vb, c.Ev, c.S) : with(c.vb, c.S, c.Ev), seed + 2);
  Tensor m;
  if (c.mask == 1) {
    m = tensor_of(c.mask_shape, seed + 3, 3.f);
    for (int64_t i = 0; i < m.size(); i += 5) m.fdata()[i] = -std::numeric_limits<float>::infinity();
  } else if (c.mask) {
    m = c.mask == 2 ? Tensor::boolean(c.mask_shape) : Tensor::i32(c.mask_shape);
    std::mt19937 rng(seed + 4);
    for (int64_t i = 0; i < m.size(); ++i) m.idata()[i] = c.mask == 2 ? (rng() % 4 != 0) : static_cast<int32_t>(rng() % 5) - 2;
  }
  for (int zero_rows = 0; zero_rows < 2; ++zero_rows) {
    AttentionInputs in;
    in.q = &q, in.k = &k, in.v = &v, in.mask = c.mask ? &m : nullptr;
    in.k_transposed = c.kt, in.v_transposed = c.vt;
    in.scale = 0.37f;
    in.masked_rows_zero = zero_rows != 0;
    CHECK(attention_problem(in).empty());
    Tensor want = attention_reference(in, "test");
    for (int64_t block : {int64_t{3}, int64_t{7}, int64_t{512}})
      for (unsigned threads : {1u, 2u}) {
        Tensor got = attention(in, "test", threads, block);
        const double d = max_abs_diff(got, want);
        if (!(d < 2e-5)) {
          std::fprintf(stderr, "  attention L%lld S%lld E%lld Ev%lld kt%d vt%d mask%d block %lld threads %u: max diff %g\n",
                       static_cast<long long>(c.L), static_cast<long long>(c.S), static_cast<long long>(c.E),
                       static_cast<long long>(c.Ev), c.kt, c.vt, c.mask, static_cast<long long>(block), threads, d);
          CHECK(false);
        }
      }
  }
}

}  // namespace

TEST(tiled_attention_matches_reference) {
  // Batch broadcasting (heads shared K/V, a [1, L, S] mask), odd sizes, transposed operands.
  check_attention({{2, 3}, {2, 3}, {2, 3}, 5, 9, 4, 3, false, false, 0, {}}, 1);
  check_attention({{2, 3}, {1, 3}, {2, 1}, 13, 17, 7, 5, true, false, 1, {2, 1, 13, 17}}, 2);
  check_attention({{4}, {4}, {4}, 70, 33, 16, 9, false, true, 2, {70, 33}}, 3);  // > 64 rows: two query tiles
  check_attention({{1, 2}, {1, 2}, {1, 2}, 1, 1, 1, 1, true, true, 3, {1, 1, 1, 1}}, 4);
  check_attention({{}, {}, {}, 9, 40, 8, 8, false, false, 1, {9, 40}}, 5);  // rank-2 operands
  check_attention({{3}, {}, {}, 6, 11, 5, 4, false, false, 2, {1, 11}}, 6);
  // Fully masked rows: NaN (softmax's 0/0) or zero (SDPA), identical for every tiling.
  Tensor q = tensor_of({1, 4, 3}, 7), k = tensor_of({1, 6, 3}, 8), v = tensor_of({1, 6, 2}, 9);
  Tensor m = Tensor::boolean({4, 6});
  for (int64_t j = 0; j < 6; ++j) m.idata()[1 * 6 + j] = 0, m.idata()[0 * 6 + j] = m.idata()[2 * 6 + j] = m.idata()[3 * 6 + j] = j % 2;
  m.idata()[3 * 6 + 5] = 0, m.idata()[3 * 6 + 1] = 0, m.idata()[3 * 6 + 3] = 0;  // row 3 masked too
  AttentionInputs in;
  in.q = &q, in.k = &k, in.v = &v, in.mask = &m, in.scale = 1.f;
  for (int64_t block : {int64_t{1}, int64_t{2}, int64_t{6}}) {
    in.masked_rows_zero = false;
    Tensor nan_rows = attention(in, "t", 1, block);
    CHECK(std::isnan(nan_rows.fdata()[1 * 2]) && std::isnan(nan_rows.fdata()[3 * 2 + 1]) && !std::isnan(nan_rows.fdata()[0]));
    in.masked_rows_zero = true;
    Tensor zero_rows = attention(in, "t", 2, block);
    CHECK(zero_rows.fdata()[1 * 2] == 0.f && zero_rows.fdata()[3 * 2 + 1] == 0.f);
    CHECK(max_abs_diff(zero_rows, attention_reference(in, "t")) < 1e-6);
  }
  // Shapes that cannot be attention are named.
  Tensor k_bad = tensor_of({1, 6, 4}, 10);
  in.k = &k_bad;
  CHECK(attention_problem(in).find("feature size") != std::string::npos);
  in.k = &k;
  Tensor m_big = Tensor::boolean({2, 4, 6});  // would enlarge the scores' batch
  in.mask = &m_big;
  CHECK(attention_problem(in).find("does not broadcast") != std::string::npos);
  CHECK(error_of([&] { attention(in, "op 'x'", 1); }).find("EINVAL: op 'x': attn_mask") == 0);
}

namespace {

ValueDesc bool_value(bool b) {
  ValueDesc d;
  d.dtype = "bool";
  d.encoding = ValueDesc::Encoding::Bools;
  d.bytes = {uint8_t(b)};
  return d;
}
ValueDesc float_scalar(float f) { return floats({}, {f}); }

// q [B, H, L, E] · k [B, H, E, S] (transpose_y false, as the SD UNet block) or k [B, H, S, E]
// (transpose_y true) → mul scale → add mask [B, 1, 1, S] → softmax → · v [B, H, S, Ev].
GraphDesc attention_program(bool transpose_k, bool with_mask, const std::vector<std::string>& outputs, bool scores_used_twice) {
  GraphDesc d;
  d.opset = "CoreML7";
  d.inputs = {{"q", {"fp32", {2, 3, 7, 5}, true}},
              {"k", {"fp32", transpose_k ? Shape{2, 3, 11, 5} : Shape{2, 3, 5, 11}, true}},
              {"v", {"fp32", {2, 3, 11, 4}, true}},
              {"mask", {"fp32", {2, 1, 1, 11}, true}}};
  OpDesc mm = make_op("matmul", "scores", {{"x", {name_of("q")}}, {"y", {name_of("k")}}});
  mm.inputs.push_back({"transpose_x", {val(bool_value(false))}});
  mm.inputs.push_back({"transpose_y", {val(bool_value(transpose_k))}});
  mm.outputs[0].type = {"fp32", {2, 3, 7, 11}, true};
  d.block.ops.push_back(mm);
  d.block.ops.push_back(make_op("mul", "scaled", {{"x", {name_of("scores")}}, {"y", {val(float_scalar(0.447f))}}}));
  std::string last = "scaled";
  if (with_mask) {
    d.block.ops.push_back(make_op("add", "masked", {{"x", {name_of("mask")}}, {"y", {name_of("scaled")}}}));
    last = "masked";
  }
  OpDesc sm = make_op("softmax", "probs", {{"x", {name_of(last)}}, {"axis", {val(scalar_i(3))}}});
  d.block.ops.push_back(sm);
  OpDesc mm2 = make_op("matmul", "out", {{"x", {name_of("probs")}}, {"y", {name_of("v")}}});
  d.block.ops.push_back(mm2);
  if (scores_used_twice) d.block.ops.push_back(make_op("reduce_max", "other", {{"x", {name_of("scores")}}}));
  d.block.outputs = outputs;
  // softmax's axis 3 is the last one only by the declared rank: give every op its type.
  for (auto& op : d.block.ops)
    if (op.outputs[0].type.shape.empty() && op.type != "reduce_max" && op.type != "matmul")
      op.outputs[0].type = {"fp32", {2, 3, 7, 11}, true};
  return d;
}

std::vector<FeatureValue> attention_inputs(bool transpose_k) {
  return {{"q", tensor_of({2, 3, 7, 5}, 21)},
          {"k", tensor_of(transpose_k ? Shape{2, 3, 11, 5} : Shape{2, 3, 5, 11}, 22)},
          {"v", tensor_of({2, 3, 11, 4}, 23)},
          {"mask", tensor_of({2, 1, 1, 11}, 24, 2.f)}};
}

// Runs `d` and returns its outputs plus the op types that ran (profile hook).
std::vector<FeatureValue> run_typed(const GraphDesc& d, const std::vector<FeatureValue>& in, std::vector<std::string>& types,
                                    bool fusion) {
  if (fusion) unsetenv("COREML_OPTIMIZE_FUSION");
  else setenv("COREML_OPTIMIZE_FUSION", "0", 1);
  auto g = Graph::build(d);
  unsetenv("COREML_OPTIMIZE_FUSION");
  RunOptions opts;
  opts.profile = [&types](const Node& n, const OpContext&, double) { types.push_back(n.type); };
  return g->run(in, opts);
}

bool ran(const std::vector<std::string>& types, const std::string& t) {
  for (const auto& s : types)
    if (s == t) return true;
  return false;
}

}  // namespace

TEST(attention_chain_fuses_and_matches_unfused) {
  for (int variant = 0; variant < 4; ++variant) {
    const bool tk = variant & 1, masked = variant & 2;
    GraphDesc d = attention_program(tk, masked, {"out"}, false);
    std::vector<std::string> fused_types, plain_types;
    auto fused = run_typed(d, attention_inputs(tk), fused_types, true);
    auto plain = run_typed(d, attention_inputs(tk), plain_types, false);
    CHECK(ran(fused_types, "fused_attention") && !ran(fused_types, "softmax"));
    CHECK(!ran(plain_types, "fused_attention") && ran(plain_types, "softmax"));
    CHECK((fused.at(0).tensor.shape == Shape{2, 3, 7, 4}));
    // Stated tolerance: 2e-6 absolute on outputs of magnitude <= 1 (one fp32 rounding apart per step).
    CHECK(max_abs_diff(fused[0].tensor, plain.at(0).tensor, false) < 2e-6);
  }
}

TEST(fp16_compute_runs_the_original_ops_of_a_fused_node) {
  // fp16 compute rounds every op's output (scores, probabilities): the fused node must not skip those
  // roundings, so under fp16 it runs its original ops and matches the unfused graph bit for bit.
  GraphDesc d = attention_program(false, true, {"out"}, false);
  std::vector<Tensor> outs;
  for (bool fusion : {true, false}) {
    if (fusion) unsetenv("COREML_OPTIMIZE_FUSION");
    else setenv("COREML_OPTIMIZE_FUSION", "0", 1);
    auto g = Graph::build(d);
    unsetenv("COREML_OPTIMIZE_FUSION");
    RunOptions opts;
    opts.fp16_compute = true;
    std::vector<std::string> types;
    opts.profile = [&types](const Node& n, const OpContext&, double) { types.push_back(n.type); };
    outs.push_back(g->run(attention_inputs(false), opts).at(0).tensor);
    CHECK(ran(types, "softmax") && !ran(types, "fused_attention"));
  }
  CHECK(max_abs_diff(outs[0], outs[1], false) == 0);
}

TEST(attention_chain_does_not_fuse_when_an_intermediate_is_needed_elsewhere) {
  // "probs" is also a program output.
  {
    GraphDesc d = attention_program(false, true, {"out", "probs"}, false);
    std::vector<std::string> types, plain_types;
    auto got = run_typed(d, attention_inputs(false), types, true);
    auto want = run_typed(d, attention_inputs(false), plain_types, false);
    CHECK(!ran(types, "fused_attention") && ran(types, "softmax"));
    CHECK(got.size() == 2 && max_abs_diff(got[1].tensor, want.at(1).tensor, false) == 0);
  }
  // "scores" has a second consumer.
  {
    GraphDesc d = attention_program(false, true, {"out", "other"}, true);
    std::vector<std::string> types;
    auto got = run_typed(d, attention_inputs(false), types, true);
    CHECK(!ran(types, "fused_attention") && ran(types, "reduce_max"));
  }
}

TEST(fused_attention_declines_shapes_it_cannot_take) {
  // The mask input's declared shape fits, but at run time it is [5, 1, 1, 1, 11]: the add enlarges the
  // scores to [5, 2, 3, 7, 11] (softmax's axis 3 is no longer the last), so the fused node declines and
  // the original ops give numpy's broadcast result.
  GraphDesc d = attention_program(false, true, {"out"}, false);
  d.inputs[3].type.rank_known = false;
  auto in = attention_inputs(false);
  in[3].tensor = tensor_of({5, 1, 1, 1, 11}, 31);
  std::vector<std::string> types, plain_types;
  auto got = run_typed(d, in, types, true);
  auto want = run_typed(d, in, plain_types, false);
  CHECK(ran(types, "softmax") && !ran(types, "fused_attention"));  // the profile reports the ops that ran
  CHECK((got.at(0).tensor.shape == Shape{5, 2, 3, 7, 4}));
  CHECK(max_abs_diff(got[0].tensor, want.at(0).tensor, false) == 0);
}

TEST(activation_chains_fuse_and_match_unfused) {
  // quick_gelu: mul(h, 1.702) → sigmoid → mul(h, ·); GEGLU: gelu(b) → mul(a, ·); swish: sigmoid(x)·x;
  // batch_norm → silu.
  GraphDesc d;
  d.opset = "CoreML7";
  d.inputs = {{"h", {"fp32", {3, 37}, true}}, {"a", {"fp32", {3, 37}, true}}, {"x", {"fp32", {2, 4, 3, 5}, true}}};
  d.block.ops.push_back(make_op("mul", "hs", {{"x", {name_of("h")}}, {"y", {val(float_scalar(1.702f))}}}));
  d.block.ops.push_back(make_op("sigmoid", "sg", {{"x", {name_of("hs")}}}));
  d.block.ops.push_back(make_op("mul", "qg", {{"x", {name_of("sg")}}, {"y", {name_of("h")}}}));
  for (const char* mode : {"EXACT", "TANH_APPROXIMATION"}) {
    const std::string m = mode;
    d.block.ops.push_back(make_op("gelu", "g_" + m, {{"x", {name_of("qg")}}, {"mode", {val(string_value(m))}}}));
    d.block.ops.push_back(make_op("mul", "geglu_" + m, {{"x", {name_of("a")}}, {"y", {name_of("g_" + m)}}}));
  }
  d.block.ops.push_back(make_op("sigmoid", "s2", {{"x", {name_of("a")}}}));
  d.block.ops.push_back(make_op("mul", "swish", {{"x", {name_of("s2")}}, {"y", {name_of("a")}}}));
  auto fvec = [](std::vector<float> v) { return v; };
  d.block.ops.push_back(make_op("batch_norm", "bn",
                                {{"x", {name_of("x")}},
                                 {"mean", {val(floats({4}, fvec({0.1f, -0.2f, 0.3f, 0.f})))}},
                                 {"variance", {val(floats({4}, fvec({1.f, 0.5f, 2.f, 0.25f})))}},
                                 {"gamma", {val(floats({4}, fvec({1.f, 2.f, -1.f, 0.5f})))}},
                                 {"beta", {val(floats({4}, fvec({0.f, 0.1f, 0.2f, -0.3f})))}},
                                 {"epsilon", {val(float_scalar(1e-5f))}}}));
  d.block.ops.push_back(make_op("silu", "bn_silu", {{"x", {name_of("bn")}}}));
  d.block.outputs = {"geglu_EXACT", "geglu_TANH_APPROXIMATION", "swish", "bn_silu"};
  std::vector<FeatureValue> in{{"h", tensor_of({3, 37}, 41, 4.f)}, {"a", tensor_of({3, 37}, 42, 4.f)}, {"x", tensor_of({2, 4, 3, 5}, 43, 3.f)}};
  std::vector<std::string> types, plain_types;
  auto got = run_typed(d, in, types, true);
  auto want = run_typed(d, in, plain_types, false);
  int fused_nodes = 0;
  for (const auto& t : types) fused_nodes += t == "fused_activation" || t == "fused_batch_norm_silu";
  // qg's output feeds two gelus (two uses), so quick_gelu fuses but each gelu → mul fuses on its own.
  CHECK_EQ(fused_nodes, 5);
  CHECK(!ran(types, "sigmoid") && !ran(types, "gelu") && !ran(types, "silu"));
  for (size_t k = 0; k < want.size(); ++k) {
    double scale = 0;
    for (int64_t i = 0; i < want[k].tensor.size(); ++i) scale = std::max(scale, std::fabs(static_cast<double>(want[k].tensor.fdata()[i])));
    // Stated tolerance: 1e-6 relative to the output's largest magnitude (x·c rounding inside quick_gelu).
    CHECK(max_abs_diff(got.at(k).tensor, want[k].tensor, false) <= 1e-6 * std::max(1.0, scale));
  }
}

namespace {

// GroupNorm as coremltools lowers it, on x [2, 4, 6, 5] (already grouped) over `axes`, then reshape to
// [2, 24, 5] and the per-channel weight / bias (+ silu).
GraphDesc group_norm_program(const std::vector<int32_t>& axes) {
  GraphDesc d;
  d.opset = "CoreML7";
  d.inputs = {{"x", {"fp32", {2, 4, 6, 5}, true}}};
  auto keep = [] { return val(bool_value(true)); };
  d.block.ops.push_back(make_op("reduce_mean", "m", {{"x", {name_of("x")}}, {"axes", {val(ints1(axes))}}, {"keep_dims", {keep()}}}));
  d.block.ops.push_back(make_op("sub", "d", {{"x", {name_of("x")}}, {"y", {name_of("m")}}}));
  d.block.ops.push_back(make_op("square", "sq", {{"x", {name_of("d")}}}));
  d.block.ops.push_back(make_op("reduce_mean", "var", {{"x", {name_of("sq")}}, {"axes", {val(ints1(axes))}}, {"keep_dims", {keep()}}}));
  d.block.ops.push_back(make_op("add", "ve", {{"x", {name_of("var")}}, {"y", {val(float_scalar(1e-5f))}}}));
  d.block.ops.push_back(make_op("sqrt", "sd", {{"x", {name_of("ve")}}}));
  d.block.ops.push_back(make_op("real_div", "nrm", {{"x", {name_of("d")}}, {"y", {name_of("sd")}}}));
  d.block.ops.push_back(make_op("reshape", "r", {{"x", {name_of("nrm")}}, {"shape", {val(ints1({2, 24, 5}))}}}));
  d.block.ops.push_back(const_op("w", floats({1, 24, 1}, random_floats(24, 71))));
  d.block.ops.push_back(const_op("b", floats({1, 24, 1}, random_floats(24, 72))));
  d.block.ops.push_back(make_op("mul", "sc", {{"x", {name_of("r")}}, {"y", {name_of("w")}}}));
  d.block.ops.push_back(make_op("add", "af", {{"x", {name_of("sc")}}, {"y", {name_of("b")}}}));
  d.block.ops.push_back(make_op("silu", "y", {{"x", {name_of("af")}}}));
  d.block.outputs = {"y"};
  return d;
}

}  // namespace

TEST(group_norm_chain_and_channel_affine_fuse_and_match_unfused) {
  std::vector<FeatureValue> in{{"x", tensor_of({2, 4, 6, 5}, 73, 3.f)}};
  for (int v = 0; v < 4; ++v) in[0].tensor.fdata()[v * 30] += 40.f;  // groups with a large mean
  {
    std::vector<std::string> types, plain_types;
    auto got = run_typed(group_norm_program({2, 3}), in, types, true);
    auto want = run_typed(group_norm_program({2, 3}), in, plain_types, false);
    CHECK(ran(types, "fused_group_norm") && ran(types, "fused_channel_affine_silu"));
    CHECK(!ran(types, "reduce_mean") && !ran(types, "real_div") && !ran(types, "silu"));
    CHECK(ran(plain_types, "reduce_mean") && !ran(plain_types, "fused_group_norm"));
    // Stated tolerance: 2e-6 absolute (normalized outputs are O(1); statistics in double either way).
    CHECK(max_abs_diff(got.at(0).tensor, want.at(0).tensor, false) < 2e-6);
  }
  {
    // Axes 1 and 2 are not the trailing ones: the fused node declines, the original ops run.
    std::vector<std::string> types, plain_types;
    auto got = run_typed(group_norm_program({1, 2}), in, types, true);
    auto want = run_typed(group_norm_program({1, 2}), in, plain_types, false);
    CHECK(ran(types, "reduce_mean") && !ran(types, "fused_group_norm"));
    CHECK(max_abs_diff(got.at(0).tensor, want.at(0).tensor, false) < 2e-6);
  }
}

namespace {
// One linear y = x·Wᵀ + b through the graph: prepared weight or not, 1-3 threads, against float64.
void check_prepared_linear(int64_t M, int64_t K, int64_t N) {
  auto x = random_floats(static_cast<size_t>(M * K), 51), w = random_floats(static_cast<size_t>(N * K), 52),
       b = random_floats(static_cast<size_t>(N), 53);
  GraphDesc d;
  d.opset = "CoreML7";
  d.inputs = {{"x", {"fp32", {M, K}, true}}};
  d.block.ops.push_back(const_op("w", floats({N, K}, w)));
  d.block.ops.push_back(make_op("linear", "y", {{"x", {name_of("x")}}, {"weight", {name_of("w")}}, {"bias", {val(floats({N}, b))}}}));
  d.block.outputs = {"y"};
  std::vector<double> want(static_cast<size_t>(M * N));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = b[j];
      for (int64_t k = 0; k < K; ++k) acc += static_cast<double>(x[i * K + k]) * w[j * K + k];
      want[i * N + j] = acc;
    }
  // Prepared copy (packed for the portable GEMM, transposed for a system BLAS); none (COREML_OPTIMIZE_PACK_MB=0).
  const char* prepared_as = cmo::linalg::executor_prefers_portable_gemm() ? "weight_packed" : "weight_t";
  std::vector<float> first;
  for (const char* budget : {"2048", "0"})
    for (unsigned threads : {1u, 2u, 3u}) {
      setenv("COREML_OPTIMIZE_PACK_MB", budget, 1);
      auto g = Graph::build(d);
      unsetenv("COREML_OPTIMIZE_PACK_MB");
      bool prepared = false;
      RunOptions opts;
      opts.threads = threads;
      opts.profile = [&](const Node& n, const OpContext& c, double) { prepared = c.has(prepared_as) && !c.has("weight"); };
      Tensor y = g->run({{"x", input_f32({M, K}, x)}}, opts).at(0).tensor;
      CHECK(prepared == (std::string(budget) != "0"));
      CHECK((y.shape == Shape{M, N}));
      for (int64_t i = 0; i < M * N; ++i) CHECK(close(y.fdata()[i], want[static_cast<size_t>(i)], 1e-5, 1e-5));
      // With the portable GEMM the packed weight changes no bit, nor does the thread count (the split only
      // moves the same tiles between threads); a system BLAS promises neither.
      if (!cmo::linalg::executor_prefers_portable_gemm()) continue;
      if (first.empty()) first.assign(y.fdata(), y.fdata() + M * N);
      else CHECK(std::memcmp(first.data(), y.fdata(), first.size() * sizeof(float)) == 0);
    }
}
}  // namespace

TEST(linear_runs_on_a_once_prepared_weight) {
  check_prepared_linear(7, 37, 19);
  // 2.3 MFLOP with 40 rows: one row block, so 2 and 3 threads split the packed weight's column panels.
  check_prepared_linear(40, 96, 300);
  const int64_t M = 7, K = 37, N = 19;
  GraphDesc d;
  d.opset = "CoreML7";
  d.inputs = {{"x", {"fp32", {M, K}, true}}};
  d.block.ops.push_back(const_op("w", floats({N, K}, random_floats(static_cast<size_t>(N * K), 52))));
  d.block.ops.push_back(make_op("linear", "y", {{"x", {name_of("x")}}, {"weight", {name_of("w")}}}));
  d.block.outputs = {"y"};
  // A wrong x names the weight in its declared [D_out, D_in] layout.
  auto g = Graph::build(d);
  CHECK(error_of([&] { g->run({{"x", input_f32({M, K + 1}, random_floats(static_cast<size_t>(M * (K + 1)), 54))}}, {}); })
            .find("weight [19, 37] does not fit x [7, 38]") != std::string::npos);
}

TEST(warm_fused_transformer_runs_make_no_large_allocation) {
  // The attention chain, GEGLU and layer_norm of a transformer block: after warm-up, a single-threaded run
  // takes every buffer from the graph's pool or the per-thread scratch.
  GraphDesc d = attention_program(false, true, {"out"}, false);
  d.block.ops.push_back(make_op("layer_norm", "ln", {{"x", {name_of("out")}}, {"axes", {val(ints1({-1}))}}}));
  d.block.ops.push_back(make_op("gelu", "g", {{"x", {name_of("ln")}}}));
  d.block.ops.push_back(make_op("mul", "geglu", {{"x", {name_of("out")}}, {"y", {name_of("g")}}}));
  d.block.outputs = {"geglu"};
  // Larger sizes so every intermediate is a "large" allocation.
  d.inputs = {{"q", {"fp32", {2, 3, 70, 40}, true}}, {"k", {"fp32", {2, 3, 40, 90}, true}}, {"v", {"fp32", {2, 3, 90, 40}, true}},
              {"mask", {"fp32", {2, 1, 1, 90}, true}}};
  for (auto& op : d.block.ops)
    if (op.type == "mul" || op.type == "add" || op.type == "softmax" || op.name == "scores") op.outputs[0].type = {"fp32", {2, 3, 70, 90}, true};
  auto g = Graph::build(d);
  std::vector<FeatureValue> in{{"q", tensor_of({2, 3, 70, 40}, 61)}, {"k", tensor_of({2, 3, 40, 90}, 62)},
                               {"v", tensor_of({2, 3, 90, 40}, 63)}, {"mask", tensor_of({2, 1, 1, 90}, 64)}};
  RunOptions opts;
  opts.threads = 1;
  bool fused = false;
  opts.profile = [&fused](const Node& n, const OpContext&, double) { fused = fused || n.type == "fused_attention"; };
  for (int run = 0; run < 4; ++run) {
    const long before = g_big_allocs.load();
    std::vector<FeatureValue> out = g->run(in, opts);
    const long made = g_big_allocs.load() - before;
    CHECK((out.at(0).tensor.shape == Shape{2, 3, 70, 40}));
    if (run == 0) CHECK(made > 0);  // the counter sees the first run's buffers
    if (run >= 2) CHECK_EQ(made, 0L);
  }
  CHECK(fused);
}

CMO_TEST_MAIN()
