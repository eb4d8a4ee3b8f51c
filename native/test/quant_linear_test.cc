// Linear quantization: spec §8.5 known answers, ranges, scale shapes, fast vs scalar reference.
// Bit-exactness against coremltools is tested end to end in test/kernels/compress-golden.test.ts.
#include <cmath>
#include <random>

#include "../kernels/decompress.h"
#include "../kernels/quantize.h"
#include "../util/fp16.h"
#include "check.h"

using namespace cmo::kernels;

namespace {
Tensor make(DType t, std::vector<int64_t> shape, const std::vector<float>& vals) {
  Tensor x(t, std::move(shape));
  for (size_t i = 0; i < vals.size(); ++i) x.set_float(i, vals[i]);
  return x;
}
std::vector<int> ints(const Tensor& t) {
  std::vector<int> v;
  for (size_t i = 0; i < static_cast<size_t>(t.numel()); ++i) v.push_back(static_cast<int>(t.view().get_int(i)));
  return v;
}
bool same(const QuantizeResult& a, const QuantizeResult& b) {
  return a.quantized.bytes == b.quantized.bytes && a.scale.bytes == b.scale.bytes && a.scale.shape == b.scale.shape &&
         a.zero_point.has_value() == b.zero_point.has_value() && (!a.zero_point || a.zero_point->bytes == b.zero_point->bytes);
}
}  // namespace

TEST(ranges) {
  CHECK(quant_range(DType::Int8, QuantMode::LinearSymmetric) == std::make_pair(-127, 127));
  CHECK(quant_range(DType::Int8, QuantMode::Linear) == std::make_pair(-128, 127));
  CHECK(quant_range(DType::UInt8, QuantMode::LinearSymmetric) == std::make_pair(0, 254));
  CHECK(quant_range(DType::UInt8, QuantMode::Linear) == std::make_pair(0, 255));
  CHECK(quant_range(DType::Int4, QuantMode::LinearSymmetric) == std::make_pair(-7, 7));
  CHECK(quant_range(DType::Int4, QuantMode::Linear) == std::make_pair(-8, 7));
  CHECK(quant_range(DType::UInt4, QuantMode::LinearSymmetric) == std::make_pair(0, 14));
  CHECK(quant_range(DType::UInt4, QuantMode::Linear) == std::make_pair(0, 15));
  CHECK_THROWS(quant_range(DType::Float16, QuantMode::Linear));
}

TEST(int4_linear_per_tensor_8_5) {
  Tensor w = make(DType::Float32, {4}, {-2, -10, 6, -3});
  QuantizeOptions o{QuantMode::Linear, DType::Int4, {0}};
  auto r = quantize_linear(w.view(), o);
  CHECK_NEAR(r.scale.view().get_float(0), 16.0 / 15.0, 1e-6);
  CHECK(r.zero_point.has_value());
  CHECK_EQ(r.zero_point->view().get_int(0), int64_t{1});
  CHECK(ints(r.quantized) == (std::vector<int>{-1, -8, 7, -2}));
  CHECK(same(r, quantize_linear_ref(w.view(), o)));
}

TEST(int8_symmetric_per_channel_8_5) {
  Tensor w = make(DType::Float32, {2, 3}, {0.3f, -1.27f, 0.6f, 0.02f, 0.04f, -0.1f});
  QuantizeOptions o{QuantMode::LinearSymmetric, DType::Int8, quant_block_sizes(QuantGranularity::PerChannel, {2, 3}, 0, 1, 32)};
  auto r = quantize_linear(w.view(), o);
  CHECK(r.scale.shape == (std::vector<int64_t>{2, 1}));
  CHECK_NEAR(r.scale.view().get_float(0), 0.01, 1e-7);
  CHECK_NEAR(r.scale.view().get_float(1), 0.000787401, 1e-9);
  CHECK(!r.zero_point.has_value());
  CHECK(ints(r.quantized) == (std::vector<int>{30, -127, 60, 25, 51, -127}));
}

TEST(unsigned_symmetric_offsets) {
  Tensor w = make(DType::Float16, {2, 4}, {-1, 0.5f, 1, 0, 2, -2, 0.25f, 1});
  QuantizeOptions o8{QuantMode::LinearSymmetric, DType::UInt8, {1, 0}};
  auto r8 = quantize_linear(w.view(), o8);
  CHECK(ints(*r8.zero_point) == (std::vector<int>{127, 127}));
  CHECK_EQ(r8.quantized.view().get_int(0), int64_t{0});    // -1 → -127 + 127
  CHECK_EQ(r8.quantized.view().get_int(2), int64_t{254});  // 1 → 127 + 127
  QuantizeOptions o4{QuantMode::LinearSymmetric, DType::UInt4, {1, 0}};
  auto r4 = quantize_linear(w.view(), o4);
  CHECK(ints(*r4.zero_point) == (std::vector<int>{7, 7}));
  CHECK_EQ(r4.quantized.view().get_int(4), int64_t{14});
  CHECK_EQ(r4.quantized.view().get_int(5), int64_t{0});
  CHECK(r4.scale.dtype == DType::Float16);
}

TEST(block_scale_shapes_4_3) {
  auto shape_of = [](std::vector<int64_t> shape, int64_t axis, int64_t bs) {
    Tensor w(DType::Float16, shape);
    for (size_t i = 0; i < static_cast<size_t>(w.numel()); ++i) w.set_float(i, std::sin(static_cast<float>(i)));
    QuantizeOptions o{QuantMode::LinearSymmetric, DType::Int4,
                      quant_block_sizes(QuantGranularity::PerBlock, shape, axis, default_input_axis(axis, shape.size()), bs)};
    return quantize_linear(w.view(), o).scale.shape;
  };
  CHECK(shape_of({256, 512}, 0, 32) == (std::vector<int64_t>{256, 16}));
  CHECK(shape_of({256, 384}, -1, 32) == (std::vector<int64_t>{8, 384}));
  CHECK(shape_of({64, 32, 3, 3}, 0, 32) == (std::vector<int64_t>{64, 1, 1, 1}));
  CHECK(shape_of({70, 81}, 0, 9) == (std::vector<int64_t>{70, 9}));
  Tensor w(DType::Float16, {70, 81});
  QuantizeOptions bad{QuantMode::LinearSymmetric, DType::Int8, {1, 32}};
  CHECK(!check_block_sizes(w.shape, bad.block_sizes).empty());
  CHECK_THROWS(quantize_linear(w.view(), bad));
}

TEST(round_half_to_even_then_add_zero_point) {
  // max |w| = 127 → scale = 254/254 = 1, so w/scale is exactly x.5: np.round gives the even neighbour.
  Tensor w = make(DType::Float32, {5}, {127, 2.5f, 3.5f, -2.5f, 0.5f});
  auto r = quantize_linear(w.view(), {QuantMode::LinearSymmetric, DType::Int8, {0}});
  CHECK_EQ(r.scale.view().get_float(0), 1.0f);
  CHECK(ints(r.quantized) == (std::vector<int>{127, 2, 4, -2, 0}));
  // uint8 symmetric: round first (2.5 → 2), then add 127 → 129 (rounding after adding would give 130).
  auto u = quantize_linear(w.view(), {QuantMode::LinearSymmetric, DType::UInt8, {0}});
  CHECK(ints(u.quantized) == (std::vector<int>{254, 129, 131, 125, 127}));
}

TEST(all_zero_block_and_non_finite) {
  Tensor w = make(DType::Float16, {2, 2}, {0, 0, 1, -1});
  auto r = quantize_linear(w.view(), {QuantMode::Linear, DType::UInt8, {1, 0}});
  CHECK_EQ(r.quantized.view().get_int(0), r.zero_point->view().get_int(0));
  Tensor inf = make(DType::Float32, {2}, {1, INFINITY});
  CHECK_THROWS(quantize_linear(inf.view(), {QuantMode::Linear, DType::Int8, {0}}));
  Tensor nan = make(DType::Float16, {2, 3}, {1, 2, 3, 4, NAN, 6});
  CHECK_THROWS(quantize_linear(nan.view(), {QuantMode::Linear, DType::Int8, {0, 0}}));
  CHECK_THROWS(quantize_linear(nan.view(), {QuantMode::Linear, DType::Int8, {1, 0}}));
  CHECK_THROWS(quantize_linear_ref(nan.view(), {QuantMode::Linear, DType::Int8, {1, 0}}));
  Tensor ints8(DType::Int8, {2});
  CHECK_THROWS(quantize_linear(ints8.view(), {QuantMode::Linear, DType::Int8, {0}}));
}

TEST(fast_matches_reference_and_dequantizes_close) {
  std::mt19937 rng(3);
  for (int iter = 0; iter < 120; ++iter) {
    const size_t rank = 1 + rng() % 4;
    std::vector<int64_t> shape(rank), bs(rank);
    for (size_t k = 0; k < rank; ++k) {
      const int64_t blocks = 1 + rng() % 3, per = 1 + rng() % 5;
      shape[k] = blocks * per;
      bs[k] = (rng() % 3 == 0) ? 0 : per;
    }
    const DType wdt = rng() % 2 ? DType::Float16 : DType::Float32;
    Tensor w(wdt, shape);
    std::normal_distribution<float> nd(0.f, 0.5f);
    for (size_t i = 0; i < static_cast<size_t>(w.numel()); ++i) w.set_float(i, nd(rng));
    const QuantMode mode = rng() % 2 ? QuantMode::Linear : QuantMode::LinearSymmetric;
    const DType qdt = std::vector<DType>{DType::Int8, DType::UInt8, DType::Int4, DType::UInt4}[rng() % 4];
    QuantizeOptions o{mode, qdt, bs};
    auto f = quantize_linear(w.view(), o);
    CHECK(same(f, quantize_linear_ref(w.view(), o)));
    // Round trip through the decompression op: error at most half a step (plus fp16 rounding).
    const TensorData off = f.zero_point ? f.zero_point->view() : TensorData{};
    Tensor back = blockwise_shift_scale(f.quantized.view(), f.scale.view(), f.zero_point ? &off : nullptr, "rt");
    auto blocks = f.scale.shape;
    for (size_t i = 0; i < static_cast<size_t>(w.numel()); ++i) {
      float maxscale = 0;
      for (size_t j = 0; j < static_cast<size_t>(f.scale.numel()); ++j) maxscale = std::max(maxscale, f.scale.view().get_float(j));
      CHECK(std::fabs(back.view().get_float(i) - w.view().get_float(i)) <= 0.51f * maxscale + 2e-3f);
    }
  }
}

CMO_TEST_MAIN()
