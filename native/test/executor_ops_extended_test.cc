// The kernels added for issue 12 (lists, states, resampling, spatial, recurrent, quantize, random,
// NMS) on known answers and on hostile inputs (NaN / huge coordinates, out-of-range indices), so the
// sanitizer run (scripts/native-sanitize.sh) covers them; the slow float64 references for every
// mode live in test/runtime/executor-ops-extended.test.ts.
#include <cmath>
#include <limits>
#include <string>

#include "../util/error.h"
#include "check.h"
#include "executor_test_util.h"

using namespace cmo::exec;
using namespace cmo::exec::testing;

namespace {

std::vector<float> fvec(const Tensor& t) { return std::vector<float>(t.fdata(), t.fdata() + t.size()); }
std::vector<int32_t> ivec(const Tensor& t) { return std::vector<int32_t>(t.idata(), t.idata() + t.size()); }

OpDesc op_with(const std::string& type, const std::string& out,
               std::vector<std::pair<std::string, std::vector<BindingDesc>>> inputs, const std::string& dtype = "fp32") {
  return make_op(type, out, std::move(inputs), dtype);
}

GraphDesc one_op(OpDesc op, std::vector<NamedType> inputs, const std::string& opset = "CoreML7") {
  GraphDesc d;
  d.opset = opset;
  d.inputs = std::move(inputs);
  std::string out = op.outputs[0].name;
  d.block.ops.push_back(std::move(op));
  d.block.outputs = {out};
  return d;
}

bool near(const std::vector<float>& a, const std::vector<float>& b, double tol) {
  if (a.size() != b.size()) return false;
  for (size_t k = 0; k < a.size(); ++k)
    if (!(std::fabs(double(a[k]) - b[k]) <= tol)) return false;
  return true;
}

}  // namespace

TEST(resize_bilinear_default_grid_matches_the_documented_points) {
  // x = [0, 1] along W: the value is the grid point (DEFAULT, Xout = 5: 0, 0.4, 0.8, 1, 1).
  auto d = one_op(op_with("resize_bilinear", "y", {{"x", {name_of("x")}}, {"target_size_height", {val(scalar_i(1))}},
                                                   {"target_size_width", {val(scalar_i(5))}}}),
                  {{"x", {"fp32", {1, 1, 2}, true}}});
  Tensor y = run1(d, {{"x", input_f32({1, 1, 2}, {0.f, 1.f})}});
  CHECK((y.shape == Shape{1, 1, 5}));
  CHECK(near(fvec(y), {0.f, 0.4f, 0.8f, 1.f, 1.f}, 1e-6));
}

TEST(resample_handles_nan_and_huge_coordinates_without_reading_out_of_bounds) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  std::vector<float> g = {nan, 0.f, 1e30f, -1e30f, inf, 0.f, 1.f, 0.f};
  for (const char* pad : {"constant", "border", "reflection", "symmetric"}) {
    auto d = one_op(op_with("resample", "y", {{"x", {name_of("x")}}, {"coordinates", {name_of("g")}},
                                              {"sampling_mode", {val(string_value("bilinear"))}},
                                              {"padding_mode", {val(string_value(pad))}},
                                              {"padding_value", {val(floats({}, {-5.f}))}},
                                              {"coordinates_mode", {val(string_value("unnormalized"))}},
                                              {"align_corners", {val(scalar_i(0))}}}),
                    {{"x", {"fp32", {1, 1, 1, 3}, true}}, {"g", {"fp32", {1, 1, 4, 2}, true}}});
    Tensor y = run1(d, {{"x", input_f32({1, 1, 1, 3}, {1.f, 2.f, 3.f})}, {"g", input_f32({1, 1, 4, 2}, g)}});
    CHECK((y.shape == Shape{1, 1, 1, 4}));
    CHECK(y.fdata()[0] == -5.f);  // NaN -> padding value
    CHECK(y.fdata()[3] == 2.f);   // x = 1 is the middle pixel in every mode
  }
}

TEST(crop_resize_with_nan_boxes_pads_and_a_bad_image_index_is_an_error) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto d = one_op(op_with("crop_resize", "y", {{"x", {name_of("x")}}, {"roi", {name_of("r")}}, {"target_height", {val(scalar_i(2))}},
                                               {"target_width", {val(scalar_i(2))}}, {"pad_value", {val(floats({}, {7.f}))}}}),
                  {{"x", {"fp32", {1, 1, 3, 3}, true}}, {"r", {"fp32", {1, 1, 5, 1, 1}, true}}}, "CoreML6");
  std::vector<float> x(9, 1.f);
  Tensor y = run1(d, {{"x", input_f32({1, 1, 3, 3}, x)}, {"r", input_f32({1, 1, 5, 1, 1}, {0.f, nan, 0.f, 2.f, 2.f})}});
  CHECK(near(fvec(y), {7.f, 7.f, 7.f, 7.f}, 0));
  std::string err = error_of([&] { run1(d, {{"x", input_f32({1, 1, 3, 3}, x)}, {"r", input_f32({1, 1, 5, 1, 1}, {nan, 0.f, 0.f, 2.f, 2.f})}}); });
  CHECK(err.find("outside the batch") != std::string::npos);
}

TEST(list_write_grow_gather_and_out_of_range_reads) {
  GraphDesc d;
  d.opset = "CoreML7";
  d.inputs = {{"v", {"fp32", {2}, true}}};
  OpDesc mk = op_with("make_list", "l0", {{"init_length", {val(scalar_i(1))}}, {"elem_shape", {val(scalar_i(2))}}, {"dtype", {val(string_value("fp32"))}}}, "list");
  OpDesc w = op_with("list_write", "l1", {{"ls", {name_of("l0")}}, {"index", {val(scalar_i(2))}}, {"value", {name_of("v")}}}, "list");
  OpDesc g = op_with("list_gather", "g", {{"ls", {name_of("l1")}}, {"indices", {val(ints1({2, 0, 1}))}}});
  d.block.ops = {mk, w, g};
  d.block.outputs = {"g"};
  Tensor y = run1(d, {{"v", input_f32({2}, {3.f, -4.f})}});
  CHECK((y.shape == Shape{3, 2}));
  CHECK(near(fvec(y), {3.f, -4.f, 0.f, 0.f, 0.f, 0.f}, 0));
  OpDesc r = op_with("list_read", "r", {{"ls", {name_of("l1")}}, {"index", {val(scalar_i(3))}}});
  d.block.ops = {mk, w, r};
  d.block.outputs = {"r"};
  CHECK(error_of([&] { run1(d, {{"v", input_f32({2}, {3.f, -4.f})}}); }).find("outside the list of length 3") != std::string::npos);
}

TEST(state_cells_persist_between_runs_and_reset_to_zero) {
  GraphDesc d;
  d.opset = "CoreML8";
  TypeDesc st{"state", {2}, true, "fp32"};
  d.inputs = {{"s", st}, {"x", {"fp32", {2}, true}}};
  d.block.ops = {op_with("read_state", "old", {{"input", {name_of("s")}}}),
                 op_with("add", "acc", {{"x", {name_of("old")}}, {"y", {name_of("x")}}}),
                 op_with("coreml_update_state", "u", {{"state", {name_of("s")}}, {"value", {name_of("acc")}}})};
  d.block.outputs = {"u"};
  auto g = Graph::build(d);
  CHECK(g->has_state());
  std::vector<FeatureValue> in = {{"x", input_f32({2}, {1.f, 2.f})}};
  g->run(in, {});
  Tensor y = g->run(in, {}).at(0).tensor;
  CHECK(near(fvec(y), {2.f, 4.f}, 0));
  g->reset_state();
  CHECK(near(fvec(g->run(in, {}).at(0).tensor), {1.f, 2.f}, 0));
  std::vector<FeatureValue> bad = {{"x", input_f32({2}, {1.f, 2.f})}, {"s", input_f32({3}, {0.f, 0.f, 0.f})}};
  CHECK(error_of([&] { g->run(bad, {}); }).find("state 's' has shape [2], got [3]") != std::string::npos);
}

TEST(space_to_batch_then_batch_to_space_is_the_identity) {
  std::vector<float> x = random_floats(2 * 2 * 4 * 6, 5);
  auto s2b = one_op(op_with("space_to_batch", "y", {{"x", {name_of("x")}}, {"block_shape", {val(ints1({2, 3}))}},
                                                    {"paddings", {val(ints({2, 2}, {0, 0, 0, 0}))}}}),
                    {{"x", {"fp32", {2, 2, 4, 6}, true}}});
  Tensor y = run1(s2b, {{"x", input_f32({2, 2, 4, 6}, x)}});
  CHECK((y.shape == Shape{12, 2, 2, 2}));
  // batch index (block offset (1, 2) -> 1 * 3 + 2 = 5) * 2 + image 1, channel 0, (0, 0) <- x[1, 0, 1, 2]
  CHECK(y.fdata()[(5 * 2 + 1) * 8] == x[(1 * 2 + 0) * 24 + 1 * 6 + 2]);
  auto b2s = one_op(op_with("batch_to_space", "z", {{"x", {name_of("x")}}, {"block_shape", {val(ints1({2, 3}))}},
                                                    {"crops", {val(ints({2, 2}, {0, 0, 0, 0}))}}}),
                    {{"x", {"fp32", {12, 2, 2, 2}, true}}});
  CHECK(fvec(run1(b2s, {{"x", y}})) == x);
}

TEST(quantize_rounds_halves_to_even_and_clips) {
  auto d = one_op(op_with("quantize", "q", {{"input", {name_of("x")}}, {"scale", {val(floats({}, {0.5f}))}},
                                            {"output_dtype", {val(string_value("int8"))}}}, "int8"),
                  {{"x", {"fp32", {6}, true}}});
  Tensor q = run1(d, {{"x", input_f32({6}, {-1.25f, -0.25f, 0.25f, 0.75f, 1000.f, std::numeric_limits<float>::quiet_NaN()})}});
  CHECK((ivec(q) == std::vector<int32_t>{-2, 0, 0, 2, 127, -128}));
}

TEST(random_uniform_is_deterministic_for_a_seed) {
  auto d = one_op(op_with("random_uniform", "y", {{"shape", {val(ints1({1000}))}}, {"seed", {val(scalar_i(42))}}}), {});
  auto a = fvec(run1(d, {})), b = fvec(run1(d, {}));
  CHECK(a == b);
  double mean = 0;
  for (float v : a) {
    CHECK(v >= 0.f && v < 1.f);
    mean += v / 1000.0;
  }
  CHECK(std::fabs(mean - 0.5) < 0.05);
}

TEST(non_maximum_suppression_keeps_the_best_of_overlapping_boxes) {
  OpDesc op = op_with("non_maximum_suppression", "ob", {{"boxes", {name_of("b")}}, {"scores", {name_of("s")}},
                                                        {"iou_threshold", {val(floats({}, {0.5f}))}},
                                                        {"score_threshold", {val(floats({}, {0.f}))}},
                                                        {"max_boxes", {val(scalar_i(3))}}});
  op.outputs = {{"ob", {"fp32", {}, false}}, {"os", {"fp32", {}, false}}, {"oi", {"int32", {}, false}}, {"on", {"int32", {}, false}}};
  GraphDesc d = one_op(op, {{"b", {"fp32", {1, 3, 4}, true}}, {"s", {"fp32", {1, 3, 1}, true}}});
  d.block.outputs = {"oi", "on"};
  auto out = Graph::build(d)->run({{"b", input_f32({1, 3, 4}, {0, 0, 2, 2, 0.1f, 0, 2, 2, 5, 5, 1, 1})},
                                   {"s", input_f32({1, 3, 1}, {0.5f, 0.9f, 0.1f})}}, {});
  CHECK((ivec(out.at(0).tensor) == std::vector<int32_t>{1, 2, -1}));
  CHECK((ivec(out.at(1).tensor) == std::vector<int32_t>{2}));
}

CMO_TEST_MAIN()
