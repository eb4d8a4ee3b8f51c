// Sub-byte packing and dtype table: spec §8.3 known answers, fast path vs the bit-at-a-time
// reference on random data, range errors.
#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "blob/blob.h"
#include "check.h"
#include "util/error.h"

using namespace cmo::blob;

namespace {

std::vector<uint8_t> pack(DType t, const std::vector<int>& values, bool ref = false) {
  std::vector<uint8_t> in(values.begin(), values.end());  // int4 negatives wrap to two's complement
  std::vector<uint8_t> out(packed_size(t, in.size()), 0xAA);
  if (ref)
    pack_sub_byte_ref(t, in.data(), in.size(), out.data());
  else
    pack_sub_byte(t, in.data(), in.size(), out.data());
  return out;
}

std::vector<int> unpack(DType t, const std::vector<uint8_t>& bytes, uint64_t n, bool ref = false) {
  std::vector<uint8_t> out(n);
  if (ref)
    unpack_sub_byte_ref(t, bytes.data(), n, out.data());
  else
    unpack_sub_byte(t, bytes.data(), n, out.data());
  std::vector<int> v;
  for (uint8_t b : out) v.push_back(t == DType::Int4 ? static_cast<int8_t>(b) : b);
  return v;
}

void check_known(DType t, const std::vector<int>& values, const std::vector<uint8_t>& expected) {
  for (bool ref : {false, true}) {
    auto got = pack(t, values, ref);
    CHECK(got == expected);
    CHECK(unpack(t, expected, values.size(), ref) == values);
  }
}

const DType kPackable[] = {DType::Int4,  DType::UInt1, DType::UInt2,        DType::UInt3,     DType::UInt4,
                           DType::UInt6, DType::UInt8, DType::Int8, DType::Float8E4M3FN, DType::Float8E5M2};

}  // namespace

TEST(known_answers_spec_8_3) {
  check_known(DType::UInt4, {1, 2, 3, 4}, {0x21, 0x43});
  check_known(DType::UInt4, {1, 2, 3, 4, 5}, {0x21, 0x43, 0x05});
  check_known(DType::Int4, {-8, 7, 3, 4, -2}, {0x78, 0x43, 0x0e});
  check_known(DType::UInt2, {0, 3, 2, 1, 3}, {0x6c, 0x03});
  check_known(DType::UInt3, {2, 7, 7, 5, 5, 4, 3, 0}, {0xfa, 0x5b, 0x0e});
  check_known(DType::UInt6, {1, 2, 3, 4}, {0x81, 0x30, 0x10});
  check_known(DType::UInt1, {1, 0, 1, 1, 0, 0, 0, 1, 1}, {0x8d, 0x01});
  check_known(DType::UInt1, {0, 0, 1, 1, 0}, {0x0c});  // iOS16 sparse mask example
}

TEST(sizes_and_padding_spec_8_3) {
  CHECK_EQ(packed_size(DType::UInt3, 9), 4u);
  CHECK_EQ(padding_bits(DType::UInt3, 9), 5u);
  CHECK_EQ(packed_size(DType::UInt1, 9), 2u);
  CHECK_EQ(padding_bits(DType::UInt1, 9), 7u);
  CHECK_EQ(packed_size(DType::UInt4, 65511), 32756u);  // joint_prune50_pal4gs16_ios18
  CHECK_EQ(padding_bits(DType::UInt4, 65511), 4u);
  CHECK_EQ(packed_size(DType::UInt4, 5), 3u);
  CHECK_EQ(padding_bits(DType::UInt4, 5), 4u);
  CHECK_EQ(padding_bits(DType::Float16, 5), 0u);
  CHECK_EQ(packed_size(DType::Float16, 16), 32u);
  CHECK_EQ(packed_size(DType::Float32, 3), 12u);
  CHECK_EQ(packed_size(DType::UInt6, 0), 0u);
  CHECK_EQ(padding_bits(DType::UInt6, 0), 0u);
}

TEST(packed_size_is_exact_for_64_bit_counts) {
  // 2^62 uint4 elements = 2^61 bytes; the naive n*bits would overflow.
  CHECK_EQ(packed_size(DType::UInt4, uint64_t{1} << 62), uint64_t{1} << 61);
  CHECK_EQ(packed_size(DType::UInt3, (uint64_t{1} << 62) + 1), (uint64_t{3} << 59) + 1);
  CHECK_EQ(packed_size(DType::Float16, uint64_t{5} << 30), uint64_t{10} << 30);  // 10 GiB
  CHECK_THROWS(packed_size(DType::Float32, uint64_t{1} << 62));                   // 2^64 bytes
  CHECK_THROWS(packed_size(static_cast<DType>(99), 1));
}

TEST(dtype_table) {
  CHECK_EQ(bits_of(DType::Float16), 16u);
  CHECK_EQ(bits_of(DType::BFloat16), 16u);
  CHECK_EQ(bits_of(DType::UInt3), 3u);
  CHECK_EQ(bits_of(DType::Int32), 32u);
  CHECK_EQ(bits_of(DType::Float8E5M2), 8u);
  CHECK_EQ(bits_of(static_cast<DType>(0)), 0u);
  CHECK_EQ(bits_of(static_cast<DType>(18)), 0u);
  CHECK(is_sub_byte(DType::Int4) && is_sub_byte(DType::UInt6) && !is_sub_byte(DType::UInt8));
  CHECK(std::string(dtype_name(DType::UInt4)) == "uint4");
  CHECK(std::string(dtype_name(DType::Float8E4M3FN)) == "float8e4m3fn");
  CHECK(std::string(dtype_name(static_cast<DType>(0))) == "unknown");
  for (uint32_t code = 1; code <= 17; ++code) {
    DType back;
    CHECK(dtype_from_name(dtype_name(static_cast<DType>(code)), &back));
    CHECK_EQ(static_cast<uint32_t>(back), code);
  }
  DType dummy;
  CHECK(!dtype_from_name("float64", &dummy));
  CHECK(!dtype_is_known(0) && dtype_is_known(17) && !dtype_is_known(18));
}

TEST(fast_pack_matches_reference_on_random_data) {
  std::mt19937_64 rng(1234);
  for (DType t : kPackable) {
    unsigned bits = bits_of(t);
    for (uint64_t n : {0ull, 1ull, 2ull, 3ull, 7ull, 8ull, 9ull, 15ull, 16ull, 17ull, 63ull, 64ull, 65ull, 1000ull, 4097ull}) {
      std::vector<uint8_t> values(n);
      for (auto& v : values) {
        unsigned r = static_cast<unsigned>(rng() & ((1u << bits) - 1));
        v = t == DType::Int4 ? static_cast<uint8_t>(static_cast<int>(r) - 8) : static_cast<uint8_t>(r);
      }
      std::vector<uint8_t> fast(packed_size(t, n) + 1, 0x5A), ref(packed_size(t, n) + 1, 0x5A);
      pack_sub_byte(t, values.data(), n, fast.data());
      pack_sub_byte_ref(t, values.data(), n, ref.data());
      CHECK(fast == ref);
      CHECK_EQ(fast.back(), 0x5A);  // nothing written past packed_size
      if (n && bits < 8) {
        unsigned used = static_cast<unsigned>((n * bits) % 8);
        if (used) CHECK_EQ(fast[packed_size(t, n) - 1] >> used, 0);  // unused high bits are zero
      }
      std::vector<uint8_t> back_fast(n + 1, 0x77), back_ref(n + 1, 0x77);
      unpack_sub_byte(t, fast.data(), n, back_fast.data());
      unpack_sub_byte_ref(t, fast.data(), n, back_ref.data());
      CHECK(back_fast == back_ref);
      CHECK(std::equal(values.begin(), values.end(), back_fast.begin()));
      CHECK_EQ(back_fast.back(), 0x77);
    }
  }
}

TEST(packing_in_place_matches_packing_to_another_buffer) {
  std::mt19937_64 rng(4321);
  for (DType t : kPackable) {
    const unsigned bits = bits_of(t);
    for (uint64_t n : {1ull, 7ull, 8ull, 9ull, 64ull, 65ull, 1000ull, 4099ull}) {
      std::vector<uint8_t> values(n);
      for (auto& v : values) {
        const unsigned r = static_cast<unsigned>(rng() & ((1u << bits) - 1));
        v = t == DType::Int4 ? static_cast<uint8_t>(static_cast<int>(r) - 8) : static_cast<uint8_t>(r);
      }
      std::vector<uint8_t> separate(packed_size(t, n));
      pack_sub_byte_ref(t, values.data(), n, separate.data());
      std::vector<uint8_t> in_place = values;
      pack_sub_byte(t, in_place.data(), n, in_place.data());
      CHECK(std::equal(separate.begin(), separate.end(), in_place.begin()));
    }
  }
  // A range error is raised before anything is written: the values are left as they were.
  std::vector<uint8_t> bad = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  const std::vector<uint8_t> before = bad;
  CHECK_THROWS(pack_sub_byte(DType::UInt4, bad.data(), bad.size(), bad.data()));
  CHECK(bad == before);
}

TEST(fast_unpack_matches_reference_on_arbitrary_bytes) {
  // Arbitrary bytes, including non-zero unused high bits: both paths must ignore them identically.
  std::mt19937_64 rng(99);
  for (DType t : kPackable) {
    for (uint64_t n : {1ull, 5ull, 11ull, 333ull}) {
      std::vector<uint8_t> bytes(packed_size(t, n));
      for (auto& b : bytes) b = static_cast<uint8_t>(rng());
      std::vector<uint8_t> a(n), b(n);
      unpack_sub_byte(t, bytes.data(), n, a.data());
      unpack_sub_byte_ref(t, bytes.data(), n, b.data());
      CHECK(a == b);
    }
  }
}

TEST(out_of_range_values_are_rejected_with_index) {
  auto message_of = [](DType t, std::vector<int> v) -> std::string {
    try {
      pack(t, v);
    } catch (const cmo::Error& e) {
      CHECK(e.code() == "ERANGE");
      return e.what();
    }
    return "";
  };
  CHECK(message_of(DType::UInt4, {1, 2, 16}).find("uint4 value 16 at index 2 is out of range [0, 15]") != std::string::npos);
  CHECK(message_of(DType::Int4, {0, 8}).find("int4 value 8 at index 1 is out of range [-8, 7]") != std::string::npos);
  CHECK(message_of(DType::Int4, {-9}).find("int4 value -9 at index 0") != std::string::npos);
  CHECK(!message_of(DType::UInt1, {0, 1, 2}).empty());
  CHECK(!message_of(DType::UInt3, {8}).empty());
  CHECK(!message_of(DType::UInt6, {64}).empty());
  CHECK(!message_of(DType::UInt2, {4}).empty());
  std::vector<uint8_t> v = {200};
  std::vector<uint8_t> out(1);
  CHECK_THROWS(pack_sub_byte_ref(DType::UInt4, v.data(), 1, out.data()));
  // Wider dtypes are not packable one per byte.
  CHECK_THROWS(pack_sub_byte(DType::Float16, v.data(), 1, out.data()));
  CHECK_THROWS(unpack_sub_byte(DType::Int32, v.data(), 1, out.data()));
}

TEST(eight_bit_types_pack_as_copy) {
  std::vector<uint8_t> v = {0, 255, 128, 7};
  std::vector<uint8_t> out(4);
  pack_sub_byte(DType::UInt8, v.data(), 4, out.data());
  CHECK(out == v);
  pack_sub_byte_ref(DType::Int8, v.data(), 4, out.data());
  CHECK(out == v);
}

CMO_TEST_MAIN()
