// Fast kernels (im2col + sgemm conv, col2im conv_transpose, batched sgemm matmul/linear) against
// the scalar references in native/executor/ops/reference.cc.
#include <cmath>
#include <limits>
#include <string>

#include "../executor/ops/fastmath.h"
#include "../executor/ops/reference.h"
#include "check.h"
#include "executor_test_util.h"

using namespace cmo::exec;
using namespace cmo::exec::testing;

namespace {

struct ConvCase {
  int64_t N, C, H, W, O, KH, KW;
  ref::Conv2dParams p;
};

// Runs one conv or conv_transpose op (custom padding) and compares it with the scalar reference.
void check_conv_op(const char* op, const ConvCase& k, uint32_t seed) {
  const bool transpose = std::string(op) == "conv_transpose";
  // conv weights are [O, C/groups, KH, KW]; conv_transpose weights are [C, O/groups, KH, KW].
  const Shape wshape = transpose ? Shape{k.C, k.O / k.p.groups, k.KH, k.KW} : Shape{k.O, k.C / k.p.groups, k.KH, k.KW};
  auto x = random_floats(static_cast<size_t>(k.N * k.C * k.H * k.W), seed);
  auto w = random_floats(static_cast<size_t>(wshape[0] * wshape[1] * k.KH * k.KW), seed + 1);
  auto b = random_floats(static_cast<size_t>(k.O), seed + 2);
  int64_t OH, OW;
  auto want = transpose ? ref::conv_transpose2d(x, k.N, k.C, k.H, k.W, w, k.O, k.KH, k.KW, b, k.p, OH, OW)
                        : ref::conv2d(x, k.N, k.C, k.H, k.W, w, k.O, k.KH, k.KW, b, k.p, OH, OW);
  GraphDesc d;
  d.opset = "CoreML7";
  d.inputs = {{"x", {"fp32", {k.N, k.C, k.H, k.W}, true}}};
  d.block.ops.push_back(const_op("w", floats(wshape, w)));
  d.block.ops.push_back(const_op("b", floats({k.O}, b)));
  d.block.ops.push_back(make_op(op, "y",
                                {{"x", {name_of("x")}},
                                 {"weight", {name_of("w")}},
                                 {"bias", {name_of("b")}},
                                 {"strides", {val(ints1({int32_t(k.p.stride_h), int32_t(k.p.stride_w)}))}},
                                 {"dilations", {val(ints1({int32_t(k.p.dil_h), int32_t(k.p.dil_w)}))}},
                                 {"pad_type", {val(string_value("custom"))}},
                                 {"pad", {val(ints1({int32_t(k.p.pad_top), int32_t(k.p.pad_bottom), int32_t(k.p.pad_left), int32_t(k.p.pad_right)}))}},
                                 {"groups", {val(scalar_i(int32_t(k.p.groups)))}}}));
  d.block.outputs = {"y"};
  Tensor y = run1(d, {{"x", input_f32({k.N, k.C, k.H, k.W}, x)}});
  CHECK((y.shape == Shape{k.N, k.O, OH, OW}));
  CHECK(max_rel_err(y.fdata(), want) < 1e-4);
}

void check_conv(const ConvCase& k, uint32_t seed) { check_conv_op("conv", k, seed); }
void check_conv_transpose(const ConvCase& k, uint32_t seed) { check_conv_op("conv_transpose", k, seed); }

}  // namespace

TEST(conv_matches_reference) {
  ref::Conv2dParams plain;
  check_conv({1, 3, 7, 6, 4, 3, 3, plain}, 1);
  ref::Conv2dParams strided{2, 3, 1, 2, 1, 2, 0, 3, 1};
  check_conv({2, 4, 11, 13, 6, 3, 2, strided}, 2);
  ref::Conv2dParams grouped{1, 1, 2, 1, 0, 0, 1, 1, 2};
  check_conv({1, 6, 9, 8, 4, 2, 3, grouped}, 3);
  ref::Conv2dParams depthwise{2, 2, 1, 1, 1, 1, 1, 1, 5};
  check_conv({1, 5, 8, 8, 10, 3, 3, depthwise}, 4);
  ref::Conv2dParams pointwise;
  check_conv({2, 8, 5, 5, 3, 1, 1, pointwise}, 5);  // the 1x1 fast path (no im2col)
  ref::Conv2dParams wide_pad{1, 2, 2, 1, 3, 0, 4, 2, 1};  // padding wider than the kernel reach
  check_conv({1, 2, 6, 5, 3, 2, 3, wide_pad}, 9);
  // 512·3·3 = 4608 rows of im2col: the 32×32 output positions are done in tiles of 910, which end in
  // the middle of an output row. Dilation 2 keeps it on im2col (a plain 3×3 would take Winograd).
  ref::Conv2dParams dilated{1, 1, 2, 2, 0, 0, 0, 0, 1};
  check_conv({1, 512, 36, 36, 2, 3, 3, dilated}, 10);
}

TEST(exp_fast_and_erf_fast_are_accurate) {
  // exp_fast: relative error < 2^-22 over the whole float range it does not clamp; exact 0 / inf
  // beyond it, NaN through. erf_fast: absolute error < 4e-7 (A&S 7.1.26: 1.5e-7, plus float rounding of 1 − p·t·e^{−x²}).
  double worst = 0, worst_erf = 0;
  for (int i = 0; i <= (1 << 20); ++i) {
    const float x = -87.0f + 175.0f * static_cast<float>(i) / static_cast<float>(1 << 20);
    const double want = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::fabs(exp_fast(x) - want) / want);
    const float e = -6.0f + 12.0f * static_cast<float>(i) / static_cast<float>(1 << 20);
    worst_erf = std::max(worst_erf, std::fabs(erf_fast(e) - std::erf(static_cast<double>(e))));
  }
  CHECK(worst < std::ldexp(1.0, -22));
  CHECK(worst_erf < 4e-7);
  CHECK_EQ(exp_fast(-100.0f), 0.0f);
  CHECK_EQ(exp_fast(-std::numeric_limits<float>::infinity()), 0.0f);
  CHECK(std::isinf(exp_fast(100.0f)));
  CHECK(std::isnan(exp_fast(std::nanf(""))));
  CHECK_EQ(exp_fast(0.0f), 1.0f);
}

TEST(conv_transpose_matches_reference) {
  ref::Conv2dParams plain;
  check_conv_transpose({1, 3, 4, 5, 2, 3, 3, plain}, 6);
  ref::Conv2dParams strided{2, 3, 1, 1, 1, 0, 0, 2, 1};
  check_conv_transpose({2, 4, 5, 4, 6, 3, 4, strided}, 7);
  ref::Conv2dParams grouped{2, 1, 2, 1, 1, 1, 0, 0, 2};
  check_conv_transpose({1, 4, 3, 6, 6, 2, 3, grouped}, 8);
}

TEST(matmul_matches_reference_with_transposes_and_broadcast) {
  const int64_t B = 3, M = 5, K = 7, N = 4;
  for (int t = 0; t < 4; ++t) {
    bool ta = t & 1, tb = t & 2;
    auto a = random_floats(static_cast<size_t>(B * M * K), 10 + t);
    auto b = random_floats(static_cast<size_t>(K * N), 20 + t);
    // y is shared across the batch (rank 2): broadcast by repeating it for the reference.
    std::vector<float> b_rep;
    for (int64_t i = 0; i < B; ++i) b_rep.insert(b_rep.end(), b.begin(), b.end());
    auto want = ref::batched_matmul(a, b_rep, B, M, K, N, ta, tb);
    GraphDesc d;
    d.opset = "CoreML7";
    Shape as = ta ? Shape{B, K, M} : Shape{B, M, K};
    Shape bs = tb ? Shape{N, K} : Shape{K, N};
    d.inputs = {{"a", {"fp32", as, true}}, {"b", {"fp32", bs, true}}};
    OpDesc mm = make_op("matmul", "y", {{"x", {name_of("a")}}, {"y", {name_of("b")}}});
    ValueDesc tx;
    tx.dtype = "bool";
    tx.encoding = ValueDesc::Encoding::Bools;
    tx.bytes = {uint8_t(ta)};
    ValueDesc ty = tx;
    ty.bytes = {uint8_t(tb)};
    mm.inputs.push_back({"transpose_x", {val(tx)}});
    mm.inputs.push_back({"transpose_y", {val(ty)}});
    d.block.ops.push_back(mm);
    d.block.outputs = {"y"};
    Tensor y = run1(d, {{"a", input_f32(as, a)}, {"b", input_f32(bs, b)}});
    CHECK((y.shape == Shape{B, M, N}));
    CHECK(max_rel_err(y.fdata(), want) < 1e-4);
  }
}

TEST(linear_matches_reference) {
  const int64_t M = 6, K = 33, N = 9;
  auto x = random_floats(static_cast<size_t>(M * K), 31);
  auto w = random_floats(static_cast<size_t>(N * K), 32);
  auto b = random_floats(static_cast<size_t>(N), 33);
  auto want = ref::batched_matmul(x, w, 1, M, K, N, false, true);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) want[i * N + j] += b[j];
  GraphDesc d;
  d.opset = "CoreML7";
  d.inputs = {{"x", {"fp32", {2, 3, K}, true}}};
  d.block.ops.push_back(const_op("w", floats({N, K}, w)));
  d.block.ops.push_back(make_op("linear", "y", {{"x", {name_of("x")}}, {"weight", {name_of("w")}}, {"bias", {val(floats({N}, b))}}}));
  d.block.outputs = {"y"};
  Tensor y = run1(d, {{"x", input_f32({2, 3, K}, x)}});
  CHECK((y.shape == Shape{2, 3, N}));
  CHECK(max_rel_err(y.fdata(), want) < 1e-4);
}

TEST(broadcast_add_fast_paths_match_generic_path) {
  // Same-shape, scalar and general broadcasting must agree with an index-by-index reference.
  auto a = random_floats(2 * 3 * 4, 41);
  auto b = random_floats(3 * 1, 42);
  GraphDesc d;
  d.opset = "CoreML7";
  d.inputs = {{"a", {"fp32", {2, 3, 4}, true}}, {"b", {"fp32", {3, 1}, true}}};
  d.block.ops.push_back(make_op("add", "y", {{"x", {name_of("a")}}, {"y", {name_of("b")}}}));
  d.block.ops.push_back(make_op("mul", "z", {{"x", {name_of("y")}}, {"y", {val(floats({}, {2.f}))}}}));
  d.block.ops.push_back(make_op("sub", "w", {{"x", {name_of("z")}}, {"y", {name_of("z")}}}));
  d.block.outputs = {"z", "w"};
  auto g = Graph::build(d);
  auto out = g->run({{"a", input_f32({2, 3, 4}, a)}, {"b", input_f32({3, 1}, b)}}, {});
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 4; ++k) {
        int64_t o = (i * 3 + j) * 4 + k;
        CHECK_NEAR(out[0].tensor.fdata()[o], (a[o] + b[j]) * 2.f, 1e-6);
        CHECK_EQ(out[1].tensor.fdata()[o], 0.f);
      }
}

CMO_TEST_MAIN()
