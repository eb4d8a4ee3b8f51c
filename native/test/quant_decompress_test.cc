// Decompression kernels: known answers (spec §8.3, §8.5, §8.6) and fast vs scalar reference on
// random shapes. The end-to-end check against every golden package is test/kernels/decompress-golden.test.ts.
#include <cstring>
#include <random>

#include "../kernels/decompress.h"
#include "../kernels/decompress_bitpack.h"
#include "../util/fp16.h"
#include "check.h"

using namespace cmo::kernels;

namespace {

Tensor make(DType t, std::vector<int64_t> shape, const std::vector<float>& vals) {
  Tensor x(t, std::move(shape));
  for (size_t i = 0; i < vals.size(); ++i) x.set_float(i, vals[i]);
  return x;
}

std::vector<uint8_t> bytes(std::initializer_list<int> v) {
  std::vector<uint8_t> b;
  for (int x : v) b.push_back(static_cast<uint8_t>(x));
  return b;
}

bool same(const Tensor& a, const Tensor& b) { return a.dtype == b.dtype && a.shape == b.shape && a.bytes == b.bytes; }

std::vector<uint8_t> pack(std::initializer_list<int> vals, int bits) {
  std::vector<uint8_t> v;
  for (int x : vals) v.push_back(static_cast<uint8_t>(x));
  return pack_bits_lsb(v.data(), v.size(), bits);
}

}  // namespace

TEST(bitpack_known_answers_8_3) {
  CHECK(pack({1, 2, 3, 4}, 4) == bytes({0x21, 0x43}));
  CHECK(pack({1, 2, 3, 4, 5}, 4) == bytes({0x21, 0x43, 0x05}));
  CHECK(pack({-8, 7, 3, 4, -2}, 4) == bytes({0x78, 0x43, 0x0e}));
  CHECK(pack({0, 3, 2, 1, 3}, 2) == bytes({0x6c, 0x03}));
  CHECK(pack({2, 7, 7, 5, 5, 4, 3, 0}, 3) == bytes({0xfa, 0x5b, 0x0e}));
  CHECK_EQ(packed_size_bytes(9, 3), size_t{4});
  CHECK(pack({1, 2, 3, 4}, 6) == bytes({0x81, 0x30, 0x10}));
  CHECK(pack({1, 0, 1, 1, 0, 0, 0, 1, 1}, 1) == bytes({0x8d, 0x01}));
  CHECK(pack({0, 0, 1, 1, 0}, 1) == bytes({0x0c}));
  auto b = bytes({0x78, 0x43, 0x0e});
  auto u = unpack_bits_lsb(b.data(), b.size(), 5, 4, true);
  CHECK_EQ(static_cast<int8_t>(u[0]), -8);
  CHECK_EQ(static_cast<int8_t>(u[4]), -2);
  CHECK_THROWS(unpack_bits_lsb(b.data(), 2, 5, 4, false));
}

TEST(bitpack_roundtrip_random) {
  std::mt19937 rng(1);
  for (int bits : {1, 2, 3, 4, 6, 8}) {
    for (size_t n : {size_t{1}, size_t{7}, size_t{64}, size_t{1001}}) {
      std::vector<uint8_t> v(n);
      for (auto& x : v) x = static_cast<uint8_t>(rng() & ((1u << bits) - 1));
      auto p = pack_bits_lsb(v.data(), n, bits);
      CHECK_EQ(p.size(), packed_size_bytes(n, bits));
      CHECK(unpack_bits_lsb(p.data(), p.size(), n, bits, false) == v);
    }
  }
}

TEST(ios18_grouped_lut_8_6) {
  // indices uint2 [6,2], lut fp16 [2,1,4,1]: rows 0-2 use the first LUT, rows 3-5 the second.
  Tensor idx = make(DType::UInt2, {6, 2}, {2, 3, 3, 0, 1, 0, 3, 0, 2, 1, 0, 3});
  Tensor lut = make(DType::Float16, {2, 1, 4, 1}, {1, 5, 9, 13, 2, 10, 18, 26});
  Tensor out = lut_to_dense(idx.view(), lut.view(), std::nullopt, "t");
  std::vector<float> want = {9, 13, 13, 1, 5, 1, 26, 2, 18, 10, 2, 26};
  CHECK(to_float32(out.view()) == want);
  CHECK(same(out, lut_to_dense_ref(idx.view(), lut.view(), std::nullopt, "t")));
}

TEST(ios18_vector_lut_expands_along_axis) {
  // indices [2,2] along axis 0 with V=2 → out [4,2]; out[2*i+j, c] = lut[idx[i,c], j].
  Tensor idx = make(DType::UInt1, {2, 2}, {0, 1, 1, 0});
  Tensor lut = make(DType::Float32, {1, 1, 2, 2}, {1, 2, 3, 4});
  Tensor out = lut_to_dense(idx.view(), lut.view(), 0, "t");
  CHECK(out.shape == (std::vector<int64_t>{4, 2}));
  CHECK(to_float32(out.view()) == (std::vector<float>{1, 3, 2, 4, 3, 1, 4, 2}));
  CHECK(same(out, lut_to_dense_ref(idx.view(), lut.view(), 0, "t")));
  CHECK_THROWS(lut_to_dense(idx.view(), lut.view(), std::nullopt, "t"));  // vector_axis required
}

TEST(ios16_lut_packed_indices) {
  auto packed = pack({0, 3, 2, 1, 3, 0}, 2);
  Tensor pk(DType::UInt8, {static_cast<int64_t>(packed.size())});
  pk.bytes = packed;
  Tensor lut = make(DType::Float16, {4}, {-1, 0.5f, 2, 8});
  Tensor shape(DType::UInt32, {2});
  uint32_t dims[2] = {2, 3};
  std::memcpy(shape.bytes.data(), dims, 8);
  ParamMap p{{"indices", pk.view()}, {"lut", lut.view()}, {"shape", shape.view()}};
  auto out = decompress_op("constexpr_lut_to_dense", Opset::IOS16, p);
  CHECK(out[0].shape == (std::vector<int64_t>{2, 3}));
  CHECK(to_float32(out[0].view()) == (std::vector<float>{-1, 8, 2, 0.5f, 8, -1}));
  Tensor lut3 = make(DType::Float16, {8}, {0, 1, 2, 3, 4, 5, 6, 7});  // 3-bit is iOS18-only
  ParamMap bad{{"indices", pk.view()}, {"lut", lut3.view()}, {"shape", shape.view()}};
  CHECK_THROWS(decompress_op("constexpr_lut_to_dense", Opset::IOS16, bad));
}

TEST(sparse_to_dense_ios16_and_ios18) {
  Tensor nz = make(DType::Float16, {2}, {3, -4});
  Tensor mask(DType::UInt8, {1});
  mask.bytes = {0x0c};  // [0,0,1,1,0]
  Tensor shape(DType::UInt32, {1});
  uint32_t five = 5;
  std::memcpy(shape.bytes.data(), &five, 4);
  auto a = decompress_op("constexpr_sparse_to_dense", Opset::IOS16, {{"nonzero_data", nz.view()}, {"mask", mask.view()}, {"shape", shape.view()}});
  CHECK(to_float32(a[0].view()) == (std::vector<float>{0, 0, 3, -4, 0}));
  Tensor dirty(DType::UInt8, {1});
  dirty.bytes = {0x2c};  // bit 5 lies past the 5 elements
  CHECK_THROWS(decompress_op("constexpr_sparse_to_dense", Opset::IOS16, {{"nonzero_data", nz.view()}, {"mask", dirty.view()}, {"shape", shape.view()}}));
  Tensor m1 = make(DType::UInt1, {5}, {0, 0, 1, 1, 0});
  auto b = decompress_op("constexpr_sparse_to_dense", Opset::IOS18, {{"nonzero_data", nz.view()}, {"mask", m1.view()}});
  CHECK(same(a[0], b[0]));
  Tensor m2 = make(DType::UInt1, {5}, {1, 0, 1, 1, 0});  // 3 bits set, 2 values
  CHECK_THROWS(sparse_to_dense(nz.view(), m2.view(), "t"));
  CHECK_THROWS(sparse_to_dense_ref(nz.view(), m2.view(), "t"));
}

TEST(affine_dequantize_8_5) {
  // int8 symmetric per-channel from §8.5: scales [0.01, 0.000787401], q [[30,-127,60],[25,51,-127]].
  Tensor q = make(DType::Int8, {2, 3}, {30, -127, 60, 25, 51, -127});
  Tensor zp = make(DType::Int8, {2}, {0, 0});
  Tensor sc = make(DType::Float32, {2}, {0.01f, 0.1f / 127.0f});
  Tensor out = affine_dequantize(q.view(), zp.view(), sc.view(), 0, "t");
  auto v = to_float32(out.view());
  CHECK_NEAR(v[1], -1.27, 1e-6);
  CHECK_NEAR(v[5], -0.1, 1e-6);
  CHECK(same(out, affine_dequantize_ref(q.view(), zp.view(), sc.view(), 0, "t")));
  // uint8 per-tensor with zero point, fp16 scale, negative axis accepted.
  Tensor q2 = make(DType::UInt8, {2, 2}, {0, 128, 255, 3});
  Tensor z2 = make(DType::UInt8, {}, {128});
  Tensor s2 = make(DType::Float16, {}, {0.5f});
  Tensor o2 = affine_dequantize(q2.view(), z2.view(), s2.view(), -1, "t");
  CHECK(o2.dtype == DType::Float16);
  CHECK(to_float32(o2.view()) == (std::vector<float>{-64, 0, 63.5f, -62.5f}));
  Tensor s3 = make(DType::Float32, {3}, {1, 1, 1});
  CHECK_THROWS(affine_dequantize(q.view(), zp.view(), s3.view(), 0, "t"));
}

TEST(blockwise_shift_scale_fp16_steps) {
  // int4 data, blocks of 2 along axis 1, uint8-style offset: out = scale * (data - offset) in fp16.
  Tensor d = make(DType::Int4, {2, 4}, {-7, 7, 1, 0, 3, -3, 2, 5});
  Tensor s = make(DType::Float16, {2, 2}, {0.1f, 2, 0.333f, 1});
  Tensor o = make(DType::Int4, {2, 2}, {1, 0, -1, 2});
  const TensorData ov = o.view();
  Tensor out = blockwise_shift_scale(d.view(), s.view(), &ov, "t");
  auto v = to_float32(out.view());
  const float s00 = cmo::half_to_float(cmo::float_to_half(0.1f));
  CHECK_EQ(v[0], cmo::half_to_float(cmo::float_to_half(s00 * -8.0f)));
  CHECK_EQ(v[2], 2.0f);
  CHECK_EQ(v[7], 3.0f);
  CHECK(same(out, blockwise_shift_scale_ref(d.view(), s.view(), &ov, "t")));
  Tensor bad = make(DType::Float16, {3, 2}, {1, 1, 1, 1, 1, 1});
  CHECK_THROWS(blockwise_shift_scale(d.view(), bad.view(), nullptr, "t"));
}

TEST(fast_matches_reference_random) {
  std::mt19937 rng(7);
  auto rnd = [&](int lo, int hi) { return static_cast<int64_t>(lo + static_cast<int>(rng() % static_cast<unsigned>(hi - lo + 1))); };
  for (int iter = 0; iter < 200; ++iter) {
    const size_t rank = static_cast<size_t>(rnd(1, 4));
    std::vector<int64_t> groups(rank), per(rank), shape(rank);
    for (size_t k = 0; k < rank; ++k) {
      groups[k] = rnd(1, 3);
      per[k] = rnd(1, 4);
      shape[k] = groups[k] * per[k];
    }
    const int bits = std::vector<int>{1, 2, 3, 4, 6, 8}[static_cast<size_t>(rnd(0, 5))];
    const DType idt = std::vector<DType>{DType::UInt1, DType::UInt2, DType::UInt3, DType::UInt4, DType::UInt6, DType::UInt8}
        [static_cast<size_t>(bits == 1 ? 0 : bits == 2 ? 1 : bits == 3 ? 2 : bits == 4 ? 3 : bits == 6 ? 4 : 5)];
    const int64_t V = rnd(0, 2) == 0 ? 2 : 1;
    const int64_t axis = rnd(0, static_cast<int>(rank) - 1);
    Tensor idx(idt, shape);
    for (auto& b : idx.bytes) b = static_cast<uint8_t>(rng() % (1u << bits));
    std::vector<int64_t> lshape = groups;
    lshape.push_back(int64_t{1} << bits);
    lshape.push_back(V);
    const DType ldt = rnd(0, 1) ? DType::Float16 : DType::Int8;
    Tensor lut(ldt, lshape);
    for (size_t i = 0; i < static_cast<size_t>(lut.numel()); ++i) lut.set_float(i, static_cast<float>(rnd(-100, 100)));
    std::optional<int64_t> va = V > 1 ? std::optional<int64_t>(axis - (rnd(0, 1) ? static_cast<int64_t>(rank) : 0)) : std::nullopt;
    CHECK(same(lut_to_dense(idx.view(), lut.view(), va, "r"), lut_to_dense_ref(idx.view(), lut.view(), va, "r")));

    // blockwise_shift_scale with random data dtype, scale over the same group grid.
    const DType ddt = std::vector<DType>{DType::Int4, DType::UInt4, DType::Int8, DType::UInt8, DType::Float16, DType::Float32}
        [static_cast<size_t>(rnd(0, 5))];
    Tensor data(ddt, shape);
    for (size_t i = 0; i < static_cast<size_t>(data.numel()); ++i)
      data.set_float(i, dtype_is_float(ddt) ? static_cast<float>(rnd(-1000, 1000)) / 37.0f
                                            : static_cast<float>(ddt == DType::Int4 ? rnd(-8, 7) : ddt == DType::UInt4 ? rnd(0, 15) : ddt == DType::Int8 ? rnd(-128, 127) : rnd(0, 255)));
    Tensor scale(rnd(0, 1) ? DType::Float16 : DType::Float32, groups);
    for (size_t i = 0; i < static_cast<size_t>(scale.numel()); ++i) scale.set_float(i, static_cast<float>(rnd(1, 1000)) / 997.0f);
    Tensor off(ddt, groups);
    for (size_t i = 0; i < static_cast<size_t>(off.numel()); ++i) off.set_float(i, static_cast<float>(rnd(0, 7)));
    const bool use_off = rnd(0, 1);
    const TensorData ov = off.view();
    CHECK(same(blockwise_shift_scale(data.view(), scale.view(), use_off ? &ov : nullptr, "r"),
               blockwise_shift_scale_ref(data.view(), scale.view(), use_off ? &ov : nullptr, "r")));

    // sparse ops through the dispatcher (fast vs reference).
    Tensor mask(DType::UInt1, shape);
    int64_t d = 0;
    for (auto& b : mask.bytes) d += (b = static_cast<uint8_t>(rng() & 1));
    Tensor nzi(idt, {d});
    for (auto& b : nzi.bytes) b = static_cast<uint8_t>(rng() % (1u << bits));
    ParamMap lp{{"indices_mask", mask.view()}, {"indices_nonzero_data", nzi.view()}, {"lut", lut.view()}};
    Tensor vaxis(DType::Int32, {});
    if (va) {
      int32_t a32 = static_cast<int32_t>(*va);
      std::memcpy(vaxis.bytes.data(), &a32, 4);
      lp["vector_axis"] = vaxis.view();
    }
    auto f = decompress_op("constexpr_lut_to_sparse", Opset::IOS18, lp);
    auto r = decompress_op_ref("constexpr_lut_to_sparse", Opset::IOS18, lp);
    CHECK(f.size() == 2 && same(f[0], r[0]) && same(f[1], r[1]));
    CHECK_EQ(f[1].numel(), d * V);
    Tensor nzd(ddt, {d});
    for (size_t i = 0; i < static_cast<size_t>(d); ++i) nzd.set_float(i, data.view().get_float(i % static_cast<size_t>(std::max<int64_t>(1, data.numel()))));
    ParamMap sp{{"data_mask", mask.view()}, {"nonzero_data", nzd.view()}, {"scale", scale.view()}};
    auto f2 = decompress_op("constexpr_sparse_blockwise_shift_scale", Opset::IOS18, sp);
    auto r2 = decompress_op_ref("constexpr_sparse_blockwise_shift_scale", Opset::IOS18, sp);
    CHECK(same(f2[0], r2[0]) && same(f2[1], r2[1]));
    CHECK(same(f2[0], mask));
  }
}

TEST(large_tensor_runs_parallel_paths) {
  // Large enough to split across the pool; fast == reference.
  Tensor idx(DType::UInt4, {512, 300});
  for (size_t i = 0; i < idx.bytes.size(); ++i) idx.bytes[i] = static_cast<uint8_t>((i * 7) & 15);
  Tensor lut(DType::Float16, {32, 1, 16, 1});
  for (size_t i = 0; i < 512; ++i) lut.set_float(i, static_cast<float>(i) * 0.25f);
  CHECK(same(lut_to_dense(idx.view(), lut.view(), std::nullopt, "big"), lut_to_dense_ref(idx.view(), lut.view(), std::nullopt, "big")));
  Tensor mask(DType::UInt1, {512, 300});
  int64_t d = 0;
  for (size_t i = 0; i < mask.bytes.size(); ++i) d += (mask.bytes[i] = (i % 3) != 0);
  Tensor nz(DType::Float32, {d});
  for (size_t i = 0; i < static_cast<size_t>(d); ++i) nz.set_float(i, static_cast<float>(i));
  CHECK(same(sparse_to_dense(nz.view(), mask.view(), "big"), sparse_to_dense_ref(nz.view(), mask.view(), "big")));
}

TEST(rejects_bad_parameters_with_errors) {
  Tensor idx = make(DType::UInt2, {4}, {0, 1, 2, 3});
  Tensor lut_bad_rank = make(DType::Float16, {4, 1}, {1, 2, 3, 4});
  CHECK_THROWS(lut_to_dense(idx.view(), lut_bad_rank.view(), std::nullopt, "t"));
  Tensor lut_bad_group = make(DType::Float16, {3, 4, 1}, {});
  CHECK_THROWS(lut_to_dense(idx.view(), lut_bad_group.view(), std::nullopt, "t"));
  TensorData short_view = idx.view();
  short_view.byte_size = 2;
  Tensor lut = make(DType::Float16, {1, 4, 1}, {1, 2, 3, 4});
  CHECK_THROWS(lut_to_dense(short_view, lut.view(), std::nullopt, "t"));
  CHECK_THROWS(decompress_op("constexpr_unknown", Opset::IOS18, {}));
  CHECK_THROWS(decompress_op("constexpr_blockwise_shift_scale", Opset::IOS18, {{"data", idx.view()}}));
  try {
    decompress_op("constexpr_blockwise_shift_scale", Opset::IOS18, {{"data", idx.view()}}, "model.mlpackage:w_quantized");
  } catch (const cmo::Error& e) {
    CHECK(std::string(e.what()).find("model.mlpackage:w_quantized") != std::string::npos);
    CHECK(std::string(e.what()).find("scale") != std::string::npos);
  }
}

// Random, mostly malformed parameter sets: every call must either succeed or throw cmo::Error (run
// under ASan/UBSan in CI, so an out-of-bounds read fails the test).
TEST(random_malformed_params_only_raise_errors) {
  std::mt19937 rng(99);
  const std::vector<std::pair<std::string, std::vector<std::string>>> ops = {
      {"constexpr_lut_to_dense", {"indices", "lut", "shape", "vector_axis"}},
      {"constexpr_sparse_to_dense", {"nonzero_data", "mask", "shape"}},
      {"constexpr_affine_dequantize", {"quantized_data", "zero_point", "scale", "axis"}},
      {"constexpr_cast", {"source_val"}},
      {"constexpr_blockwise_shift_scale", {"data", "scale", "offset"}},
      {"constexpr_lut_to_sparse", {"indices_mask", "indices_nonzero_data", "lut", "vector_axis"}},
      {"constexpr_sparse_blockwise_shift_scale", {"data_mask", "nonzero_data", "scale", "offset"}},
  };
  const std::vector<DType> dtypes = {DType::Float16, DType::Float32, DType::UInt8, DType::Int8, DType::Int4, DType::UInt1,
                                     DType::UInt2, DType::UInt3, DType::UInt4, DType::UInt6, DType::Int32, DType::UInt32};
  int ok = 0, rejected = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    const auto& [op, names] = ops[rng() % ops.size()];
    std::vector<Tensor> store;
    store.reserve(names.size());
    ParamMap p;
    for (const auto& name : names) {
      if (rng() % 6 == 0) continue;  // sometimes missing
      std::vector<int64_t> shape(rng() % 4);
      for (auto& d : shape) d = rng() % 5;
      if (name == "axis" || name == "vector_axis") shape.clear();
      Tensor t(dtypes[rng() % dtypes.size()], shape);
      if (name == "axis" || name == "vector_axis") t = Tensor(DType::Int32, {});
      for (auto& b : t.bytes) b = static_cast<uint8_t>(rng() % 4 == 0 ? rng() : rng() % 4);
      store.push_back(std::move(t));
      TensorData v = store.back().view();
      if (rng() % 10 == 0 && v.byte_size > 0) v.byte_size -= 1;  // truncated data
      p[name] = v;
    }
    const Opset opset = rng() % 2 ? Opset::IOS16 : Opset::IOS18;
    try {
      auto a = decompress_op(op, opset, p, "fuzz");
      auto b = decompress_op_ref(op, opset, p, "fuzz");
      CHECK(a.size() == b.size());
      for (size_t i = 0; i < a.size() && i < b.size(); ++i) CHECK(same(a[i], b[i]));
      ++ok;
    } catch (const cmo::Error&) {
      ++rejected;
    }
  }
  CHECK(ok > 0);
  CHECK(rejected > 0);
}

CMO_TEST_MAIN()
