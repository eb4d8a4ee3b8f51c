// Graph building: constant decoding (spec §8 known answers), weight blob validation, constexpr
// decoders (iOS16 and iOS18 forms), load-time errors.
#include <cstdlib>
#include <cstdio>
#include <fstream>

#include "../util/error.h"
#include "check.h"
#include "executor_test_util.h"

using namespace cmo::exec;
using namespace cmo::exec::testing;

namespace {

std::vector<int32_t> ivec(const Tensor& t) { return std::vector<int32_t>(t.idata(), t.idata() + t.size()); }
std::vector<float> fvec(const Tensor& in) {
  Tensor t = as_f32(in);  // fp16 weights stay half-backed until used
  return std::vector<float>(t.fdata(), t.fdata() + t.size());
}

// A graph whose single output is a constexpr op applied to constant inputs.
Tensor run_constexpr(OpDesc op, const std::string& opset = "CoreML8") {
  GraphDesc d;
  d.opset = opset;
  std::string out = op.outputs[0].name;
  d.block.ops.push_back(std::move(op));
  d.block.outputs = {out};
  return run1(d, {});
}

std::string temp_path(const char* name) { return std::string("/tmp/cmo_executor_test_") + name; }

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

TEST(sub_byte_immediates_decode_lsb_first) {
  // spec §8.3
  CHECK((ivec(value_to_tensor(raw("uint4", {5}, {0x21, 0x43, 0x05}), ".", nullptr)) == std::vector<int32_t>{1, 2, 3, 4, 5}));
  CHECK((ivec(value_to_tensor(raw("int4", {5}, {0x78, 0x43, 0x0e}), ".", nullptr)) == std::vector<int32_t>{-8, 7, 3, 4, -2}));
  CHECK((ivec(value_to_tensor(raw("uint2", {5}, {0x6c, 0x03}), ".", nullptr)) == std::vector<int32_t>{0, 3, 2, 1, 3}));
  CHECK((ivec(value_to_tensor(raw("uint3", {8}, {0xfa, 0x5b, 0x0e}), ".", nullptr)) == std::vector<int32_t>{2, 7, 7, 5, 5, 4, 3, 0}));
  CHECK((ivec(value_to_tensor(raw("uint6", {4}, {0x81, 0x30, 0x10}), ".", nullptr)) == std::vector<int32_t>{1, 2, 3, 4}));
  CHECK((ivec(value_to_tensor(raw("uint1", {9}, {0x8d, 0x01}), ".", nullptr)) == std::vector<int32_t>{1, 0, 1, 1, 0, 0, 0, 1, 1}));
  CHECK((fvec(value_to_tensor(raw("fp16", {2}, {0x00, 0x3c, 0x00, 0xc0}), ".", nullptr)) == std::vector<float>{1.f, -2.f}));
  CHECK((ivec(value_to_tensor(raw("uint32", {2}, {64, 0, 0, 0, 1, 1, 0, 0}), ".", nullptr)) == std::vector<int32_t>{64, 257}));
  // Too few bytes for the shape is a format error, not an over-read.
  CHECK(error_of([] { value_to_tensor(raw("uint4", {5}, {0x21, 0x43}), ".", nullptr); }).rfind("EMODELFORMAT", 0) == 0);
}

TEST(blob_values_are_read_and_validated) {
  // spec §8.1: one fp16 tensor [1, 2, 3, 4], metadata at 64, data at 128.
  std::vector<uint8_t> file(136, 0);
  file[0] = 1;
  file[4] = 2;
  const uint8_t meta[] = {0xef, 0xbe, 0xad, 0xde, 0x01, 0, 0, 0, 0x08, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0};
  std::copy(std::begin(meta), std::end(meta), file.begin() + 64);
  const uint8_t data[] = {0x00, 0x3c, 0x00, 0x40, 0x00, 0x42, 0x00, 0x44};
  std::copy(std::begin(data), std::end(data), file.begin() + 128);
  const std::string dir = temp_path("blob");
  std::remove((dir + "/weights/weight.bin").c_str());
  std::system(("mkdir -p " + dir + "/weights").c_str());
  write_file(dir + "/weights/weight.bin", file);

  auto blob = [&](const std::string& dtype, uint64_t offset, Shape shape) {
    ValueDesc v;
    v.dtype = dtype;
    v.shape = std::move(shape);
    v.encoding = ValueDesc::Encoding::Blob;
    v.blob_file = "@model_path/weights/weight.bin";
    v.blob_offset = offset;
    return v;
  };
  auto load = [&](ValueDesc v) {
    GraphDesc d;
    d.model_dir = dir;
    d.block.ops.push_back(const_op("w", std::move(v)));
    d.block.outputs = {"w"};
    return run1(d, {});
  };
  // By default fp16 weights are widened to fp32 once per executor (within COREML_OPTIMIZE_WIDEN_MB);
  // with a budget of 0 they stay a view of the mapped halves, not an fp32 copy.
  Tensor widened = load(blob("fp16", 64, {2, 2}));
  CHECK(!widened.is_half_backed());
  CHECK((fvec(widened) == std::vector<float>{1, 2, 3, 4}));
  setenv("COREML_OPTIMIZE_WIDEN_MB", "0", 1);
  Tensor w = load(blob("fp16", 64, {2, 2}));
  unsetenv("COREML_OPTIMIZE_WIDEN_MB");
  CHECK(w.is_half_backed());
  CHECK((fvec(w) == std::vector<float>{1, 2, 3, 4}));
  std::string e = error_of([&] { load(blob("fp32", 64, {2})); });
  CHECK(e.find("EWEIGHTS") == 0 && e.find("has dtype float16") != std::string::npos && e.find("'w' (const)") != std::string::npos);
  e = error_of([&] { load(blob("fp16", 72, {4})); });
  CHECK(e.find("sentinel") != std::string::npos);
  CHECK(e.find("weight.bin") != std::string::npos);
  e = error_of([&] { load(blob("fp16", 4096, {4})); });
  CHECK(e.find("past the end") != std::string::npos);
  e = error_of([&] { load(blob("fp16", 8, {4})); });
  CHECK(e.find("header") != std::string::npos);
  e = error_of([&] { load(blob("fp16", 64, {5})); });  // needs 10 bytes, blob holds 8
  CHECK(e.find("EMODELFORMAT") == 0);
  // Truncated data: sizeInBytes says 8 but the file ends early.
  file.resize(132);
  write_file(dir + "/weights/weight.bin", file);
  e = error_of([&] { load(blob("fp16", 64, {4})); });
  CHECK(e.find("extends past the end") != std::string::npos);
}

TEST(constexpr_lut_to_dense_ios18_grouped_known_answer) {
  // spec §8.6: uint2 indices [6,2], fp16 lut [2,1,4,1]
  OpDesc op;
  op.type = "constexpr_lut_to_dense";
  op.name = "w";
  ValueDesc idx = raw("uint2", {6, 2}, {});
  std::vector<int> iv{2, 3, 3, 0, 1, 0, 3, 0, 2, 1, 0, 3};
  idx.bytes.assign(3, 0);
  for (size_t k = 0; k < iv.size(); ++k) idx.bytes[k / 4] |= static_cast<uint8_t>(iv[k] << (2 * (k % 4)));
  std::vector<float> lutv{1, 5, 9, 13, 2, 10, 18, 26};
  op.inputs = {{"indices", {val(idx)}}, {"lut", {val(floats({2, 1, 4, 1}, lutv))}}};
  op.outputs = {{"w", {"fp32", {6, 2}, true}}};
  CHECK((fvec(run_constexpr(op)) == std::vector<float>{9, 13, 13, 1, 5, 1, 26, 2, 18, 10, 2, 26}));
}

TEST(constexpr_lut_to_dense_vector_and_ios16_forms) {
  // Vector palettization: V=2 along axis 0 doubles that axis.
  OpDesc op;
  op.type = "constexpr_lut_to_dense";
  op.name = "w";
  op.inputs = {{"indices", {val(raw("uint1", {1, 3}, {0b101}))}},
               {"lut", {val(floats({1, 1, 2, 2}, {10, 11, 20, 21}))}},
               {"vector_axis", {val(scalar_i(0))}}};
  op.outputs = {{"w", {"fp32", {2, 3}, true}}};
  CHECK((fvec(run_constexpr(op)) == std::vector<float>{20, 10, 20, 21, 11, 21}));
  // iOS16: packed 2-bit stream [1, 2, 3, 1, 0, 0] = 0b01_11_10_01, 0b0000; lut [0, .1, .2, .3]; shape [2, 3]
  OpDesc old;
  old.type = "constexpr_lut_to_dense";
  old.name = "w";
  old.attributes = {{"indices", raw("uint8", {2}, {0x79, 0x00})},
                    {"lut", floats({4}, {0.f, 0.1f, 0.2f, 0.3f})},
                    {"shape", raw("uint32", {2}, {2, 0, 0, 0, 3, 0, 0, 0})}};
  old.outputs = {{"w", {"fp32", {2, 3}, true}}};
  CHECK((fvec(run_constexpr(old, "CoreML6")) == std::vector<float>{0.1f, 0.2f, 0.3f, 0.1f, 0.f, 0.f}));
}

TEST(constexpr_sparse_and_quantized_forms) {
  // iOS16 sparse: mask [0,0,1,1,0] -> 0x0c
  OpDesc s16;
  s16.type = "constexpr_sparse_to_dense";
  s16.name = "w";
  s16.attributes = {{"nonzero_data", floats({2}, {7, 8})}, {"mask", raw("uint8", {1}, {0x0c})}, {"shape", raw("uint32", {1}, {5, 0, 0, 0})}};
  s16.outputs = {{"w", {"fp32", {5}, true}}};
  CHECK((fvec(run_constexpr(s16, "CoreML6")) == std::vector<float>{0, 0, 7, 8, 0}));
  // Mismatched bit count vs values is an error naming the op.
  OpDesc bad = s16;
  bad.attributes[0].second = floats({3}, {7, 8, 9});
  CHECK(error_of([&] { run_constexpr(bad, "CoreML6"); }).find("'w' (constexpr_sparse_to_dense)") != std::string::npos);
  // iOS18 blockwise: int4 data [2,4], scale [2,2] (blocks of 2), offset int4 [2,2]
  OpDesc bs;
  bs.type = "constexpr_blockwise_shift_scale";
  bs.name = "w";
  bs.inputs = {{"data", {val(raw("int4", {2, 4}, {0x21, 0x43, 0xf8, 0x07}))}},  // [1,2,3,4,-8,-1,7,0]
               {"scale", {val(floats({2, 2}, {1, 2, 0.5f, 3}))}},
               {"offset", {val(raw("int4", {2, 2}, {0x01, 0xf0}))}}};                 // [1,0,0,-1]
  bs.outputs = {{"w", {"fp32", {2, 4}, true}}};
  CHECK((fvec(run_constexpr(bs)) == std::vector<float>{0, 1, 6, 8, -4, -0.5f, 24, 3}));
  // iOS16 affine: int8 per-channel along axis 0
  OpDesc aq;
  aq.type = "constexpr_affine_dequantize";
  aq.name = "w";
  aq.attributes = {{"quantized_data", raw("int8", {2, 3}, {30, 0x81, 60, 25, 51, 0x81})},
                   {"zero_point", raw("int8", {2}, {0, 1})},
                   {"scale", floats({2}, {0.01f, 2.f})},
                   {"axis", scalar_i(0)}};
  aq.outputs = {{"w", {"fp32", {2, 3}, true}}};
  auto v = fvec(run_constexpr(aq, "CoreML6"));
  CHECK_NEAR(v[0], 0.3, 1e-6);
  CHECK_NEAR(v[1], -1.27, 1e-6);
  CHECK_EQ(v[3], 48.f);
  CHECK_EQ(v[5], -256.f);
}

TEST(joint_sparse_palettized_chain) {
  // lut_to_sparse -> sparse_to_dense: mask [1,0,1,1], nonzero indices [1,0,1] over lut [5, 9].
  GraphDesc d;
  d.opset = "CoreML8";
  OpDesc ls;
  ls.type = "constexpr_lut_to_sparse";
  ls.name = "ls";
  ls.inputs = {{"indices_mask", {val(raw("uint1", {4}, {0b1101}))}},
               {"indices_nonzero_data", {val(raw("uint1", {3}, {0b101}))}},
               {"lut", {val(floats({1, 2, 1}, {5, 9}))}}};
  ls.outputs = {{"ls_0", {"uint1", {4}, true}}, {"ls_1", {"fp32", {3}, true}}};
  d.block.ops.push_back(ls);
  OpDesc sd;
  sd.type = "constexpr_sparse_to_dense";
  sd.name = "w";
  sd.inputs = {{"nonzero_data", {name_of("ls_1")}}, {"mask", {name_of("ls_0")}}};
  sd.outputs = {{"w", {"fp32", {4}, true}}};
  d.block.ops.push_back(sd);
  d.block.outputs = {"w"};
  CHECK((fvec(run1(d, {})) == std::vector<float>{9, 0, 5, 9}));
}

TEST(unsupported_op_and_undefined_value_fail_at_load) {
  GraphDesc d;
  d.function = "main";
  d.inputs = {{"x", {"fp32", {2}, true}}};
  d.block.ops.push_back(make_op("mystery_op", "m1", {{"x", {name_of("x")}}}));
  d.block.outputs = {"m1"};
  std::string e = error_of([&] { Graph::build(d); });
  CHECK(e.find("EUNSUPPORTED") == 0);
  CHECK(e.find("mystery_op") != std::string::npos && e.find("'m1'") != std::string::npos && e.find("function 'main'") != std::string::npos);
  GraphDesc u;
  u.inputs = {{"x", {"fp32", {2}, true}}};
  u.block.ops.push_back(make_op("relu", "r", {{"x", {name_of("nope")}}}));
  u.block.outputs = {"r"};
  e = error_of([&] { Graph::build(u); });
  CHECK(e.find("undefined value 'nope'") != std::string::npos);
}

TEST(intermediates_are_freed_but_outputs_survive) {
  // A chain where an intermediate is also an output: it must not be freed after its last use.
  GraphDesc d;
  d.inputs = {{"x", {"fp32", {3}, true}}};
  d.block.ops.push_back(make_op("relu", "a", {{"x", {name_of("x")}}}));
  d.block.ops.push_back(make_op("exp", "b", {{"x", {name_of("a")}}}));
  d.block.ops.push_back(make_op("neg", "c", {{"x", {name_of("b")}}}));
  d.block.outputs = {"c", "a"};
  auto g = Graph::build(d);
  auto out = g->run({{"x", input_f32({3}, {-1, 0, 1})}}, {});
  CHECK_EQ(out.size(), size_t{2});
  CHECK_EQ(out[1].tensor.fdata()[2], 1.f);
  CHECK_NEAR(out[0].tensor.fdata()[2], -std::exp(1.0), 1e-6);
  // Running twice gives the same answer (constants are not consumed).
  auto again = g->run({{"x", input_f32({3}, {-1, 0, 1})}}, {});
  CHECK_EQ(again[0].tensor.fdata()[0], out[0].tensor.fdata()[0]);
}

// A 0-element fp32 tensor must still hold storage: the graph treats a null buffer as "output not
// produced" (an empty slice_by_index used to fail that way).
TEST(empty_f32_tensor_is_produced) {
  CHECK(Tensor::f32({2, 0}).f != nullptr);
  auto pool = std::make_shared<BufferPool>(1 << 20);
  BufferPool::Scope scope(pool.get());
  Tensor t = Tensor::f32({0});
  CHECK(t.f != nullptr);
  CHECK_EQ(t.size(), int64_t{0});
}

TEST(buffer_pool_recycles_zeroed_buffers) {
  auto pool = std::make_shared<BufferPool>(1 << 20);
  float* first;
  {
    BufferPool::Scope scope(pool.get());
    Tensor t = Tensor::f32({1000});
    first = t.fdata();
    std::fill_n(t.fdata(), 1000, 7.f);
  }
  CHECK_EQ(pool->pooled_bytes(), size_t{4000});
  {
    BufferPool::Scope scope(pool.get());
    Tensor again = Tensor::f32({900});  // fits the freed buffer (not more than 2x + slack)
    CHECK(again.fdata() == first);
    CHECK_EQ(again.fdata()[0], 0.f);
    CHECK_EQ(again.fdata()[899], 0.f);
    CHECK_EQ(pool->pooled_bytes(), size_t{0});
    Tensor small = Tensor::f32({10});  // a new buffer: the pool is empty
    CHECK(small.fdata() != first);
  }
  // Over the byte budget: buffers are really freed, not kept.
  {
    BufferPool::Scope scope(pool.get());
    Tensor big = Tensor::f32({1 << 19});  // 2 MiB > 1 MiB budget
  }
  CHECK(pool->pooled_bytes() <= (size_t{1} << 20));
  // Without a scope, allocation does not touch the pool; tensors outliving the pool are freed normally.
  Tensor outside = Tensor::f32({5});
  CHECK_EQ(outside.fdata()[4], 0.f);
}

CMO_TEST_MAIN()
