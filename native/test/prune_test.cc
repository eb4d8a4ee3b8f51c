// Pruning: spec §8.7 known answers, numpy percentile semantics, ties, n:m fast vs reference.
// Bit-exactness against coremltools is tested end to end in test/kernels/compress-golden.test.ts.
#include <cmath>
#include <random>

#include "../kernels/decompress.h"
#include "../kernels/decompress_bitpack.h"
#include "../kernels/prune.h"
#include "check.h"

using namespace cmo::kernels;

namespace {
Tensor make(DType t, std::vector<int64_t> shape, const std::vector<float>& vals) {
  Tensor x(t, std::move(shape));
  for (size_t i = 0; i < vals.size(); ++i) x.set_float(i, vals[i]);
  return x;
}
std::vector<float> masked(const Tensor& w, const std::vector<uint8_t>& keep) {
  std::vector<float> v;
  for (size_t i = 0; i < keep.size(); ++i) v.push_back(keep[i] ? w.view().get_float(i) : 0.0f);
  return v;
}
}  // namespace

TEST(nm_known_answer_8_7) {
  Tensor w = make(DType::Float32, {4, 4}, {1, 3, 4, -3, -6, -7, 2, 4, 0, 3, 4, 1, -9, 2, -1, 8});
  auto keep = nm_prune_mask(w.view(), 1, 2, 1);
  CHECK(masked(w, keep) == (std::vector<float>{0, 3, 4, 0, 0, -7, 0, 4, 0, 3, 4, 0, -9, 0, 0, 8}));
  CHECK(keep == nm_prune_mask_ref(w.view(), 1, 2, 1));
}

TEST(block_known_answer_8_7) {
  Tensor w = make(DType::Float32, {4, 3}, {1, 3, 4, -6, -7, 2, 0, 3, 4, -9, 2, -1});
  auto keep = block_prune_mask(w.view(), 0.5, 2, 0);
  CHECK(masked(w, keep) == (std::vector<float>{1, 3, 0, -6, -7, 0, 0, 0, 0, -9, 0, 0}));
  CHECK(!block_prune_skip_reason({3, 3}, 2, 0).empty());  // block_size > C/2
}

TEST(numpy_percentile_linear) {
  CHECK_EQ(numpy_percentile({4, 1, 3, 2}, 50, DType::Float32), 2.5);
  CHECK_NEAR(numpy_percentile({1, 2, 3, 4, 5}, 30, DType::Float32), 2.2, 1e-12);
  CHECK_EQ(numpy_percentile({7}, 50, DType::Float32), 7.0);
  CHECK_EQ(numpy_percentile({1, 2}, 100, DType::Float32), 2.0);
  CHECK_EQ(numpy_percentile({1, 2}, 0, DType::Float32), 1.0);
}

TEST(magnitude_ties_are_all_pruned) {
  // |w| = [1,2,2,2,3,4]: median 2 → every 2 is pruned, sparsity 4/6 > 0.5.
  Tensor w = make(DType::Float16, {2, 3}, {1, -2, 2, 2, 3, -4});
  auto r = prune_result(w.view(), magnitude_prune_mask(w.view(), 0.5));
  CHECK(r.mask == (std::vector<uint8_t>{0, 0, 0, 0, 1, 1}));
  CHECK_NEAR(r.sparsity, 4.0 / 6.0, 1e-12);
  CHECK_EQ(r.nonzero.numel(), int64_t{2});
  CHECK(to_float32(r.nonzero.view()) == (std::vector<float>{3, -4}));
  // fp16: the float64 midpoint of two adjacent halves is compared in fp16 (numpy 1.x casting):
  // 2048 and 2050 are adjacent; (2048+2050)/2 = 2049 rounds to 2048 (even) → only 2048 pruned.
  Tensor h = make(DType::Float16, {4}, {2048, 2050, 1, 4000});
  auto kh = magnitude_prune_mask(h.view(), 0.5);
  CHECK(kh == (std::vector<uint8_t>{0, 1, 0, 1}));
  CHECK(magnitude_prune_mask(w.view(), 1.0) == std::vector<uint8_t>(6, 0));
  CHECK(magnitude_prune_mask(w.view(), 0.0) == std::vector<uint8_t>(6, 1));
  CHECK_THROWS(magnitude_prune_mask(w.view(), 1.5));
  Tensor nan = make(DType::Float32, {3}, {1, NAN, 2});
  CHECK_THROWS(magnitude_prune_mask(nan.view(), 0.5));
  CHECK_THROWS(magnitude_prune_mask_ref(nan.view(), 0.5));
}

TEST(existing_zeros_are_not_stored) {
  Tensor w = make(DType::Float32, {4}, {0, 5, 6, 7});
  auto r = prune_result(w.view(), threshold_prune_mask(w.view(), 1e-12));
  CHECK(r.mask == (std::vector<uint8_t>{0, 1, 1, 1}));
  CHECK_NEAR(r.sparsity, 0.25, 1e-12);
  auto packed = pack_bits_lsb(r.mask.data(), r.mask.size(), 1);
  CHECK(packed == (std::vector<uint8_t>{0x0e}));
}

TEST(threshold_compares_in_weight_dtype) {
  // 0.01 as fp16 is 0.010002136...; an fp16 weight equal to that rounds to the same half → pruned.
  Tensor w = make(DType::Float16, {3}, {0.01f, -0.0100021f, 0.0101f});
  CHECK(threshold_prune_mask(w.view(), 0.01) == (std::vector<uint8_t>{0, 0, 1}));
}

TEST(nm_ties_prune_the_earlier_element_and_padding_first) {
  // groups of 4 along dim 1 with equal magnitudes: numpy's argsort (insertion sort for m <= 16)
  // keeps index order, so the first n of the tie are pruned.
  Tensor w = make(DType::Float16, {2, 8}, {1, -1, 1, -1, 3, 3, 3, 3, 2, 2, 1, 1, 0, 5, 0, 5});
  auto keep = nm_prune_mask(w.view(), 2, 4, 1);
  CHECK(keep == (std::vector<uint8_t>{0, 0, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 1}));
  CHECK(keep == nm_prune_mask_ref(w.view(), 2, 4, 1));
  // Padding: C = 5 with m = 2 → last group [w4, pad]; the zero pad has the smallest magnitude.
  Tensor p = make(DType::Float32, {2, 5}, {1, 2, 3, 4, 5, 5, 4, 3, 2, 1});
  auto kp = nm_prune_mask(p.view(), 1, 2, 1);
  CHECK(kp == (std::vector<uint8_t>{0, 1, 0, 1, 1, 1, 0, 1, 0, 1}));
  CHECK(kp == nm_prune_mask_ref(p.view(), 1, 2, 1));
}

TEST(nm_fast_matches_reference_random_with_ties) {
  std::mt19937 rng(11);
  for (int iter = 0; iter < 100; ++iter) {
    const size_t rank = 2 + rng() % 3;
    std::vector<int64_t> shape(rank);
    for (auto& d : shape) d = 1 + rng() % 9;
    const int64_t m = 1 + rng() % 4, n = rng() % (m + 1), dim = rng() % 2;
    shape[static_cast<size_t>(dim)] = std::max<int64_t>(shape[static_cast<size_t>(dim)], 2 * m);
    Tensor w(DType::Float16, shape);
    for (size_t i = 0; i < static_cast<size_t>(w.numel()); ++i) w.set_float(i, static_cast<float>(static_cast<int>(rng() % 7) - 3));
    CHECK(nm_prune_mask(w.view(), n, m, dim) == nm_prune_mask_ref(w.view(), n, m, dim));
  }
  Tensor small(DType::Float32, {4, 4});
  CHECK_THROWS(nm_prune_mask(small.view(), 2, 4, 1));  // m > C/2
}

TEST(magnitude_and_block_fast_match_reference_random) {
  std::mt19937 rng(5);
  for (int iter = 0; iter < 80; ++iter) {
    const size_t rank = 2 + rng() % 3;
    std::vector<int64_t> shape(rank);
    for (auto& d : shape) d = 1 + rng() % 9;
    shape[0] = std::max<int64_t>(shape[0], 4);
    shape[1] = std::max<int64_t>(shape[1], 4);
    const DType dt = rng() % 2 ? DType::Float16 : DType::Float32;
    Tensor w(dt, shape);
    std::normal_distribution<float> nd(0.f, 1.f);
    // Coarse values → many magnitude ties.
    for (size_t i = 0; i < static_cast<size_t>(w.numel()); ++i) w.set_float(i, std::round(nd(rng) * 8.0f) / 8.0f);
    const double target = static_cast<double>(rng() % 101) / 100.0;
    CHECK(magnitude_prune_mask(w.view(), target) == magnitude_prune_mask_ref(w.view(), target));
    const int64_t dim = rng() % 2, bs = 2 + rng() % 2;
    if (block_prune_skip_reason(shape, bs, dim).empty())
      CHECK(block_prune_mask(w.view(), target, bs, dim) == block_prune_mask_ref(w.view(), target, bs, dim));
  }
}

// The fp16 path reads order statistics off a magnitude histogram; the reference sorts. Large
// tensors (several histogram chunks), fine and coarse values (many ties), ±0, subnormals, and
// targets near 0 and 1.
TEST(magnitude_fp16_histogram_matches_sort_reference) {
  std::mt19937 rng(23);
  for (int iter = 0; iter < 24; ++iter) {
    const bool big = iter < 2;  // 4.6 M values: two histogram chunks
    const int64_t rows = big ? 33 : 1 + static_cast<int64_t>(rng() % 64), cols = big ? 140000 : 1 + static_cast<int64_t>(rng() % 3000);
    Tensor w(DType::Float16, {rows, cols});
    std::normal_distribution<float> nd(0.f, iter % 3 == 0 ? 1e-5f : 0.05f);
    const bool coarse = iter % 4 == 1;
    for (size_t i = 0; i < static_cast<size_t>(w.numel()); ++i) {
      float v = nd(rng);
      if (coarse) v = std::round(v * 64.0f) / 64.0f;
      if (rng() % 50 == 0) v = (rng() % 2) ? 0.0f : -0.0f;
      w.set_float(i, v);
    }
    for (double target : {0.0, 1e-6, 0.25, 0.4, 0.5, 0.75, 0.999999, 1.0}) {
      if (big && target != 0.4 && target != 0.999999) continue;
      CHECK(magnitude_prune_mask(w.view(), target) == magnitude_prune_mask_ref(w.view(), target));
    }
  }
  Tensor nan(DType::Float16, {2, 2});
  nan.set_float(3, NAN);
  CHECK_THROWS(magnitude_prune_mask(nan.view(), 0.5));
}

CMO_TEST_MAIN()
