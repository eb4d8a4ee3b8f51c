// Helpers for building small graph descriptions in native executor tests.
#pragma once
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "../executor/graph.h"
#include "../util/error.h"

namespace cmo::exec::testing {

// "CODE: message" of the cmo::Error that f throws, or "" when it throws none.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const cmo::Error& e) {
    return e.code() + ": " + e.what();
  }
  return "";
}

// A value holding `count` 4-byte elements copied from `src`.
inline ValueDesc four_byte_value(const char* dtype, ValueDesc::Encoding encoding, Shape shape, const void* src, size_t count) {
  ValueDesc d;
  d.dtype = dtype;
  d.shape = std::move(shape);
  d.encoding = encoding;
  // assign, not resize + memcpy: GCC's -Warray-bounds misreads the memcpy once a 1-element vector is inlined.
  const auto* first = static_cast<const uint8_t*>(src);
  d.bytes.assign(first, first + count * 4);
  return d;
}
inline ValueDesc floats(Shape shape, const std::vector<float>& v) {
  return four_byte_value("fp32", ValueDesc::Encoding::Floats, std::move(shape), v.data(), v.size());
}
inline ValueDesc ints(Shape shape, const std::vector<int32_t>& v) {
  return four_byte_value("int32", ValueDesc::Encoding::Ints, std::move(shape), v.data(), v.size());
}
inline ValueDesc ints1(const std::vector<int32_t>& v) { return ints({static_cast<int64_t>(v.size())}, v); }
inline ValueDesc scalar_i(int32_t v) { return ints({}, {v}); }
inline ValueDesc raw(const std::string& dtype, Shape shape, std::vector<uint8_t> bytes) {
  ValueDesc d;
  d.dtype = dtype;
  d.shape = std::move(shape);
  d.encoding = ValueDesc::Encoding::Bytes;
  d.bytes = std::move(bytes);
  return d;
}
inline ValueDesc string_value(const std::string& s) {
  ValueDesc d;
  d.dtype = "string";
  d.encoding = ValueDesc::Encoding::Strings;
  d.strings = {s};
  return d;
}

inline BindingDesc name_of(const std::string& n) {
  BindingDesc b;
  b.name = n;
  return b;
}
inline BindingDesc val(ValueDesc v) {
  BindingDesc b;
  b.is_name = false;
  b.value = std::move(v);
  return b;
}

inline OpDesc make_op(const std::string& type, const std::string& out,
                      std::vector<std::pair<std::string, std::vector<BindingDesc>>> inputs, const std::string& out_dtype = "fp32") {
  OpDesc op;
  op.type = type;
  op.name = out;
  op.inputs = std::move(inputs);
  op.outputs = {{out, {out_dtype, {}, false}}};
  return op;
}

inline OpDesc const_op(const std::string& name, ValueDesc v) {
  OpDesc op;
  op.type = "const";
  op.name = name;
  std::string dt = v.dtype;
  op.attributes = {{"val", std::move(v)}};
  op.outputs = {{name, {dt, {}, false}}};
  return op;
}

inline std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

inline Tensor input_f32(Shape shape, const std::vector<float>& v) {
  Tensor t = Tensor::f32(std::move(shape));
  std::copy(v.begin(), v.end(), t.fdata());
  return t;
}

// Runs a one-output graph with fp32 inputs named in `inputs`.
inline Tensor run1(const GraphDesc& desc, const std::vector<FeatureValue>& inputs) {
  auto g = Graph::build(desc);
  return g->run(inputs, {}).at(0).tensor;
}

inline double max_rel_err(const float* a, const std::vector<float>& b) {
  double worst = 0;
  for (size_t k = 0; k < b.size(); ++k) {
    // abs 1e-5 + rel 1e-4 (the fixtures' rule), expressed as a ratio that must stay below 1e-4
    double d = std::fabs(static_cast<double>(a[k]) - b[k]) / (0.1 + std::fabs(static_cast<double>(b[k])));
    worst = std::max(worst, d);
  }
  return worst;
}

}  // namespace cmo::exec::testing
