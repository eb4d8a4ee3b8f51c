// Calibration capture (executor/hessian_capture.h): Hessians fed while a graph runs equal the float64
// reference built from the explicit activations — a grouped, strided, dilated conv with 'same'
// padding (unfolded by kernels::conv_unfold_ref with pads computed here, and checked against the
// conv's own output), a rank-3 linear, a matmul with transpose_x — over two runs (running mean).
#include <cmath>

#include "../executor/hessian_capture.h"
#include "check.h"
#include "executor_test_util.h"

using namespace cmo;
using namespace cmo::exec;
using namespace cmo::exec::testing;

namespace {

double rel_diff(const std::vector<float>& a, const std::vector<double>& b) {
  double m = 0, s = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    m = std::max(m, std::fabs(a[i] - b[i]));
    s = std::max(s, std::fabs(b[i]));
  }
  return s > 0 ? m / s : m;
}

GraphDesc make_graph(const std::vector<float>& wc, const std::vector<float>& wl, const std::vector<float>& wm) {
  GraphDesc d;
  d.inputs = {{"x", {"fp32", {2, 3, 5, 6}, true}}, {"t", {"fp32", {2, 4, 5}, true}}, {"u", {"fp32", {2, 5, 4}, true}}};
  d.block.ops.push_back(const_op("wc", floats({6, 1, 3, 2}, wc)));
  d.block.ops.push_back(const_op("wl", floats({3, 5}, wl)));
  d.block.ops.push_back(const_op("wm", floats({5, 3}, wm)));
  d.block.ops.push_back(make_op("conv", "c", {{"x", {name_of("x")}}, {"weight", {name_of("wc")}}, {"strides", {val(ints1({2, 1}))}},
                                              {"dilations", {val(ints1({1, 2}))}}, {"pad_type", {val(string_value("same"))}},
                                              {"groups", {val(scalar_i(3))}}}));
  d.block.ops.push_back(make_op("linear", "l", {{"x", {name_of("t")}}, {"weight", {name_of("wl")}}}));
  d.block.ops.push_back(make_op("matmul", "m", {{"x", {name_of("u")}}, {"y", {name_of("wm")}}, {"transpose_x", {val(raw("bool", {}, {1}))}},
                                                {"transpose_y", {val(raw("bool", {}, {0}))}}}));
  d.block.outputs = {"c", "l", "m"};
  return d;
}

}  // namespace

TEST(capture_matches_explicit_activations) {
  const auto wc = random_floats(6 * 3 * 2, 1), wl = random_floats(15, 2), wm = random_floats(15, 3);
  auto graph = Graph::build(make_graph(wc, wl, wm));
  std::vector<std::shared_ptr<kernels::Hessian>> conv_h, lin_h{std::make_shared<kernels::Hessian>(5)}, mm_h{std::make_shared<kernels::Hessian>(5)};
  for (int g = 0; g < 3; ++g) conv_h.push_back(std::make_shared<kernels::Hessian>(6));
  HessianCapture capture({{"c", CaptureKind::Conv, conv_h}, {"l", CaptureKind::Linear, lin_h}, {"m", CaptureKind::Matmul, mm_h}});
  // The geometry as MIL 'same' defines it, worked out by hand: H 5, stride 2, k 3 → pads 1/1;
  // W 6, stride 1, k 2 dilation 2 (effective 3) → pads 1/1.
  kernels::ConvGeometry g;
  g.in_channels = 3, g.groups = 3, g.kernel_h = 3, g.kernel_w = 2, g.stride_h = 2, g.stride_w = 1, g.dilation_h = 1, g.dilation_w = 2;
  g.pad_top = 1, g.pad_bottom = 1, g.pad_left = 1, g.pad_right = 1;
  std::vector<std::vector<double>> ref_conv(3, std::vector<double>(36, 0.0));
  std::vector<double> ref_lin(25, 0.0), ref_mm(25, 0.0);
  int64_t n_conv[3] = {0, 0, 0}, n_lin = 0, n_mm = 0;
  for (uint32_t run = 0; run < 2; ++run) {
    const auto x = random_floats(2 * 3 * 5 * 6, 10 + run), t = random_floats(40, 20 + run), u = random_floats(40, 30 + run);
    RunOptions opts;
    opts.observe = [&](const Node& n, const OpContext& c) { capture.observe(n, c); };
    auto out = graph->run({{"x", input_f32({2, 3, 5, 6}, x)}, {"t", input_f32({2, 4, 5}, t)}, {"u", input_f32({2, 5, 4}, u)}}, opts);
    const Tensor& conv_out = out[0].tensor;
    CHECK(conv_out.shape == Shape({2, 6, 3, 6}));
    for (int64_t gi = 0; gi < 3; ++gi) {
      std::vector<float> rows = kernels::conv_unfold_ref(x.data(), 2, 5, 6, g, gi);
      CHECK_EQ(rows.size(), size_t{2 * 3 * 6 * 6});
      // The unfolded rows times the group's weights are the conv's output: same geometry as the kernel.
      double worst = 0;
      for (int64_t r = 0; r < 2 * 18; ++r)
        for (int64_t oc = 0; oc < 2; ++oc) {
          double acc = 0;
          for (int64_t k = 0; k < 6; ++k) acc += rows[r * 6 + k] * wc[(gi * 2 + oc) * 6 + k];
          const int64_t b = r / 18, pos = r % 18;
          worst = std::max(worst, std::fabs(acc - conv_out.fdata()[(b * 6 + gi * 2 + oc) * 18 + pos]));
        }
      CHECK(worst < 1e-5);
      kernels::hessian_add_rows_ref(ref_conv[gi], 6, n_conv[gi], rows.data(), 2 * 18, 2);
    }
    kernels::hessian_add_rows_ref(ref_lin, 5, n_lin, t.data(), 8, 2);
    std::vector<float> ut(40);  // u [2, 5, 4] transposed per batch: rows [2·4, 5]
    for (int b = 0; b < 2; ++b)
      for (int i = 0; i < 5; ++i)
        for (int j = 0; j < 4; ++j) ut[(b * 4 + j) * 5 + i] = u[(b * 5 + i) * 4 + j];
    kernels::hessian_add_rows_ref(ref_mm, 5, n_mm, ut.data(), 8, 2);
  }
  for (int gi = 0; gi < 3; ++gi) CHECK(rel_diff(conv_h[gi]->dense(), ref_conv[gi]) < 1e-5);
  CHECK(rel_diff(lin_h[0]->dense(), ref_lin) < 1e-5);
  CHECK(rel_diff(mm_h[0]->dense(), ref_mm) < 1e-5);
  CHECK_EQ(lin_h[0]->samples(), int64_t{4});
  CHECK_EQ(capture.hits()[0], int64_t{2});
}

TEST(capture_rejects_a_mismatched_hessian) {
  auto graph = Graph::build(make_graph(random_floats(36, 1), random_floats(15, 2), random_floats(15, 3)));
  HessianCapture capture({{"l", CaptureKind::Linear, {std::make_shared<kernels::Hessian>(7)}}});
  RunOptions opts;
  opts.observe = [&](const Node& n, const OpContext& c) { capture.observe(n, c); };
  CHECK_THROWS(graph->run({{"x", input_f32({2, 3, 5, 6}, random_floats(180, 4))}, {"t", input_f32({2, 4, 5}, random_floats(40, 5))},
                           {"u", input_f32({2, 5, 4}, random_floats(40, 6))}}, opts));
}

CMO_TEST_MAIN()
