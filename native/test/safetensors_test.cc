// safetensors reader: header parsing (escapes, metadata, order), validation errors carrying the file
// name, and fp32/fp16 conversion of F32/F16/BF16 (threaded chunks == per-element reference).
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "blob_test_util.h"
#include "check.h"
#include "util/error.h"
#include "util/fp16.h"
#include "util/safetensors.h"

using cmo::safetensors::DType;
using cmo::safetensors::File;

namespace {

cmo::test::TempDirCleanup cleanup;

std::string write_file(const std::string& name, const std::string& header, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> bytes(8);
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(n >> (8 * i));
  bytes.insert(bytes.end(), header.begin(), header.end());
  bytes.insert(bytes.end(), data.begin(), data.end());
  std::string path = cmo::test::temp_path(name);
  cmo::test::write_all(path, bytes);
  return path;
}

template <class T>
std::vector<uint8_t> bytes_of(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// The error message of opening `path`, or "" when it opens.
std::string open_error(const std::string& path) {
  try {
    File f(path);
  } catch (const cmo::Error& e) {
    if (e.code() != "EMODELFORMAT") return "wrong code " + e.code();
    return e.what();
  }
  return "";
}

}  // namespace

TEST(parses_names_metadata_and_order) {
  std::vector<float> a = {1.5f, -2.f};
  std::vector<uint16_t> b = {0x3c00};
  std::vector<uint8_t> data = bytes_of(a);
  auto bb = bytes_of(b);
  data.insert(data.end(), bb.begin(), bb.end());
  std::string header =
      "{\"__metadata__\":{\"format\":\"pt\"}, \"z.w\\u00e9\\ud83d\\ude00\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
      " \"a\\\"b\" : {\"shape\":[1,1],\"dtype\":\"F16\",\"data_offsets\":[8,10]}}   ";
  File f(write_file("names.safetensors", header, data));
  CHECK_EQ(f.tensors().size(), size_t{2});
  CHECK(f.tensors()[0].name == "z.w\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(f.tensors()[1].name == "a\"b");
  CHECK(f.metadata().at("format") == "pt");
  const auto* t = f.find("a\"b");
  CHECK(t != nullptr && t->dtype == DType::F16 && t->element_count == 1);
  float out[2];
  f.read_fp32(f.tensors()[0], out);
  CHECK_EQ(out[0], 1.5f);
  CHECK_EQ(out[1], -2.f);
  uint16_t h[2];
  f.read_fp16(f.tensors()[0], h);
  CHECK_EQ(h[0], uint16_t{0x3e00});
  CHECK_EQ(h[1], uint16_t{0xc000});
}

TEST(validation_errors_name_the_file) {
  struct Case {
    const char* header;
    size_t data;
    const char* expect;
  };
  const Case cases[] = {
      {"{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "truncated"},
      {"{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "span 8 bytes"},
      {"{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"y\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[7,8]}}", 8,
       "overlaps"},
      {"{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}", 4, "unknown key 'extra'"},
      {"{\"x\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "non-negative integers"},
      {"{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,99999999999999999999999]}}", 4, "non-negative integers"},
      {"{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
       8, "appears twice"},
      {"{\"x\":\"F32\"}", 0, "is not an object"},
      {"{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4, "invalid safetensors header"},
      {"{\"x\\q\":1}", 0, "bad escape"},
      {"{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x", 4, "unexpected characters"},
  };
  int i = 0;
  for (const Case& c : cases) {
    std::string path = write_file("bad" + std::to_string(i++) + ".safetensors", c.header, std::vector<uint8_t>(c.data));
    std::string msg = open_error(path);
    if (msg.rfind(path, 0) != 0 || msg.find(c.expect) == std::string::npos) {
      ::cmo::test::fail(__FILE__, __LINE__, std::string("header ") + c.header + " -> '" + msg + "', expected '" + c.expect + "'");
    }
  }
  std::string tiny = cmo::test::temp_path("tiny.safetensors");
  cmo::test::write_all(tiny, {1, 0, 0});
  CHECK(open_error(tiny).find("shorter than the 8-byte header length") != std::string::npos);
}

TEST(threaded_conversions_equal_the_scalar_reference) {
  // 3 × the threading threshold plus a ragged tail, every source dtype.
  const size_t n = (1u << 16) * 3 + 123;
  std::vector<float> f(n);
  std::vector<uint16_t> h(n), bf(n);
  uint64_t s = 99;
  for (size_t i = 0; i < n; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    uint32_t r = static_cast<uint32_t>(s >> 32);
    std::memcpy(&f[i], &r, 4);
    if (std::isnan(f[i])) f[i] = 1.0f;
    h[i] = static_cast<uint16_t>(r);
    bf[i] = static_cast<uint16_t>(r >> 16);
  }
  std::vector<uint8_t> data = bytes_of(f);
  for (auto* v : {&h, &bf}) {
    auto b = bytes_of(*v);
    data.insert(data.end(), b.begin(), b.end());
  }
  std::string N = std::to_string(n);
  std::string header = "{\"f\":{\"dtype\":\"F32\",\"shape\":[" + N + "],\"data_offsets\":[0," + std::to_string(4 * n) +
                       "]},\"h\":{\"dtype\":\"F16\",\"shape\":[" + N + "],\"data_offsets\":[" + std::to_string(4 * n) + "," +
                       std::to_string(6 * n) + "]},\"b\":{\"dtype\":\"BF16\",\"shape\":[" + N + "],\"data_offsets\":[" +
                       std::to_string(6 * n) + "," + std::to_string(8 * n) + "]}}";
  File file(write_file("big.safetensors", header, data));
  std::vector<float> out32(n);
  std::vector<uint16_t> out16(n);
  size_t bad = 0;
  file.read_fp16(*file.find("f"), out16.data());
  for (size_t i = 0; i < n; ++i) bad += out16[i] != cmo::float_to_half(f[i]);
  file.read_fp32(*file.find("h"), out32.data());
  for (size_t i = 0; i < n; ++i) {
    float want = cmo::half_to_float(h[i]);
    bad += !(std::memcmp(&out32[i], &want, 4) == 0);
  }
  file.read_fp16(*file.find("h"), out16.data());
  bad += std::memcmp(out16.data(), h.data(), 2 * n) != 0;
  file.read_fp32(*file.find("b"), out32.data());
  for (size_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &out32[i], 4);
    bad += bits != (static_cast<uint32_t>(bf[i]) << 16);
  }
  file.read_fp16(*file.find("b"), out16.data());
  for (size_t i = 0; i < n; ++i) bad += out16[i] != cmo::float_to_half(cmo::safetensors::bf16_to_float(bf[i]));
  CHECK_EQ(bad, size_t{0});
  // bf16 → fp16 rounds once: 2^-25 (a tie) → 0, 1.5 × 2^-25 → the smallest subnormal.
  CHECK_EQ(cmo::safetensors::bf16_to_half(0x3300), uint16_t{0});
  CHECK_EQ(cmo::safetensors::bf16_to_half(0x3340), uint16_t{1});
  CHECK_EQ(cmo::safetensors::bf16_to_half(0x4780), uint16_t{0x7c00});
}

TEST(unsupported_source_dtype) {
  std::string path = write_file("i64.safetensors", "{\"p\":{\"dtype\":\"I64\",\"shape\":[1,2],\"data_offsets\":[0,16]}}",
                                std::vector<uint8_t>(16));
  File f(path);
  float out[2];
  try {
    f.read_fp32(f.tensors()[0], out);
    CHECK(false);
  } catch (const cmo::Error& e) {
    CHECK(e.code() == "EUNSUPPORTED");
    CHECK(std::string(e.what()).find("'p' is I64") != std::string::npos);
  }
}

CMO_TEST_MAIN()
