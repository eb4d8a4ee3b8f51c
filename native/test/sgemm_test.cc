// The portable blocked SGEMM (every micro-kernel this CPU runs, serial and threaded) and the build's
// sgemm backend against the float64 triple loop, over all transposes, odd sizes (edge tiles in both
// directions, k not a multiple of the block depth), alpha/beta and strided leading dimensions.
//
// Tolerance: a float32 dot product of length k summed in any order (blocked, FMA or not) is within
// γ_k·Σ|a_ip·b_pj| of the exact value, γ_k = k·u/(1 − k·u), u = 2^-24 (Higham, Accuracy and Stability
// of Numerical Algorithms, §3.1); scaling by alpha and adding beta·C add a few more roundings. We
// allow (k + 4)·u·(|alpha|·Σ|a·b| + |beta·c|) per element. A wrong index or a dropped block errs by
// O(|a·b|), far above it; the reference's own float64 error is ~2^-53 relative, negligible.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "check.h"
#include "linalg/blas.h"
#include "linalg/sgemm_kernels.h"
#include "util/thread_pool.h"

namespace {

using cmo::linalg::detail::GemmKernel;

struct Case {
  bool ta, tb;
  int64_t m, n, k;
  float alpha, beta;
};

// Runs `gemm` on random operands stored with padded leading dimensions; returns the failures.
template <class Gemm>
int check_case(const Case& cs, Gemm&& gemm, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  const int64_t arows = cs.ta ? cs.k : cs.m, acols = cs.ta ? cs.m : cs.k;
  const int64_t brows = cs.tb ? cs.n : cs.k, bcols = cs.tb ? cs.k : cs.n;
  const int64_t lda = acols + 3, ldb = bcols + 5, ldc = cs.n + 2;
  std::vector<float> a(static_cast<size_t>(arows * lda)), b(static_cast<size_t>(brows * ldb)), c(static_cast<size_t>(cs.m * ldc));
  for (auto& v : a) v = dist(rng);
  for (auto& v : b) v = dist(rng);
  for (auto& v : c) v = dist(rng);
  if (cs.beta == 0.0f)  // beta 0 must not read C: NaNs there may not reach the result
    for (auto& v : c) v = std::nanf("");
  std::vector<float> want = c, got = c;
  cmo::linalg::sgemm_reference(cs.ta, cs.tb, cs.m, cs.n, cs.k, cs.alpha, a.data(), lda, b.data(), ldb, cs.beta, want.data(), ldc);
  gemm(cs, a.data(), lda, b.data(), ldb, got.data(), ldc);
  const double u = std::ldexp(1.0, -24);
  int bad = 0;
  for (int64_t i = 0; i < cs.m; ++i)
    for (int64_t j = 0; j < ldc; ++j) {
      const size_t at = static_cast<size_t>(i * ldc + j);
      if (j >= cs.n) {  // padding columns are never written
        if (!(std::isnan(got[at]) ? std::isnan(c[at]) : got[at] == c[at])) ++bad;
        continue;
      }
      double mag = 0;
      for (int64_t p = 0; p < cs.k; ++p)
        mag += std::fabs(static_cast<double>(cs.ta ? a[p * lda + i] : a[i * lda + p]) * (cs.tb ? b[j * ldb + p] : b[p * ldb + j]));
      const double cprev = cs.beta == 0.0f ? 0.0 : std::fabs(static_cast<double>(cs.beta) * c[at]);
      const double tol = static_cast<double>(cs.k + 4) * u * (std::fabs(cs.alpha) * mag + cprev) + 1e-30;
      if (!(std::fabs(static_cast<double>(got[at]) - want[at]) <= tol)) {
        if (bad < 3)
          std::fprintf(stderr, "  [%lld,%lld] got %.9g want %.9g tol %.3g\n", static_cast<long long>(i), static_cast<long long>(j),
                       got[at], want[at], tol);
        ++bad;
      }
    }
  return bad;
}

std::vector<Case> cases() {
  std::vector<Case> out;
  const int64_t sizes[][3] = {{1, 1, 1},   {1, 37, 5},  {13, 1, 9},  {7, 19, 300}, {25, 33, 17},
                              {50, 70, 513}, {145, 97, 64}, {12, 32, 192}, {6, 16, 256}, {200, 129, 3},
                              {30, 700, 400}};  // B packed in 256-column pieces (3 per task, the last partial)
  const float ab[][2] = {{1.0f, 0.0f}, {0.5f, 1.0f}, {-2.0f, 0.25f}};
  int s = 0;
  for (const auto& sz : sizes)
    for (int t = 0; t < 4; ++t) {
      const auto& f = ab[s++ % 3];
      out.push_back({(t & 1) != 0, (t & 2) != 0, sz[0], sz[1], sz[2], f[0], f[1]});
    }
  return out;
}

}  // namespace

TEST(every_runnable_kernel_matches_the_reference) {
  auto kernels = cmo::linalg::detail::runnable_kernels();
  CHECK(!kernels.empty());
  CHECK(std::string(kernels.back()->name) == "scalar");
  CHECK(std::string(kernels.front()->name) == cmo::linalg::portable_kernel_name());
  uint32_t seed = 1;
  for (const GemmKernel* kern : kernels)
    for (unsigned threads : {1u, 3u})
      for (const Case& cs : cases()) {
        int bad = check_case(cs, [&](const Case& q, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc) {
          cmo::linalg::sgemm_portable_with(*kern, threads, q.ta, q.tb, q.m, q.n, q.k, q.alpha, a, lda, b, ldb, q.beta, c, ldc);
        }, seed++);
        if (bad)
          std::fprintf(stderr, "kernel %s threads %u ta %d tb %d m %lld n %lld k %lld alpha %g beta %g: %d bad\n", kern->name, threads,
                       cs.ta, cs.tb, static_cast<long long>(cs.m), static_cast<long long>(cs.n), static_cast<long long>(cs.k), cs.alpha,
                       cs.beta, bad);
        CHECK_EQ(bad, 0);
      }
}

TEST(prepacked_a_matches_the_reference) {
  // A packed once by pack_a_full (the executor's cached conv weights), then used by the blocked
  // driver: every kernel, both transposes of A and B, serial and threaded (row blocks start on
  // panel boundaries of the prepacked A).
  uint32_t seed = 500;
  for (const GemmKernel* kern : cmo::linalg::detail::runnable_kernels())
    for (unsigned threads : {1u, 3u})
      for (const Case& cs : cases()) {
        int bad = check_case(cs, [&](const Case& q, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc) {
          std::vector<float> packed(cmo::linalg::packed_a_floats(*kern, q.m, q.k), std::nanf(""));
          cmo::linalg::pack_a_full(*kern, q.ta, q.m, q.k, a, lda, packed.data());
          // a / lda are passed as null / 0: the driver must not read the unpacked A.
          cmo::linalg::sgemm_portable_packed_a(*kern, threads, q.tb, q.m, q.n, q.k, q.alpha, packed.data(), q.ta, nullptr, 0, b,
                                               ldb, q.beta, c, ldc);
        }, seed++);
        if (bad)
          std::fprintf(stderr, "prepacked: kernel %s threads %u ta %d tb %d m %lld n %lld k %lld: %d bad\n", kern->name, threads, cs.ta,
                       cs.tb, static_cast<long long>(cs.m), static_cast<long long>(cs.n), static_cast<long long>(cs.k), bad);
        CHECK_EQ(bad, 0);
      }
}

TEST(prepacked_b_matches_the_reference_and_the_unpacked_driver_bit_for_bit) {
  // B packed once by pack_b_full (the executor's linear weights), both transposes of A and B, every
  // kernel; the result must equal the per-call-packing driver's bits (same blocks, same kernel calls)
  // and be the same for 1, 2 and 3 threads (the split only moves tiles between threads).
  uint32_t seed = 700;
  for (const GemmKernel* kern : cmo::linalg::detail::runnable_kernels())
    for (const Case& cs : cases()) {
      std::vector<float> first;
      for (unsigned threads : {1u, 2u, 3u}) {
        std::vector<float> plain;
        int bad = check_case(cs, [&](const Case& q, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc) {
          const int64_t rows_c = q.m;
          std::vector<float> packed(cmo::linalg::packed_b_floats(*kern, q.k, q.n), std::nanf(""));
          cmo::linalg::pack_b_full(*kern, q.tb, q.k, q.n, b, ldb, packed.data(), threads);
          plain.assign(c, c + rows_c * ldc);
          cmo::linalg::sgemm_portable_with(*kern, 1, q.ta, q.tb, q.m, q.n, q.k, q.alpha, a, lda, b, ldb, q.beta, plain.data(), ldc);
          cmo::linalg::sgemm_portable_packed_b(*kern, threads, q.ta, q.m, q.n, q.k, q.alpha, a, lda, packed.data(), q.beta, c, ldc);
          int differ = 0;
          for (int64_t i = 0; i < rows_c * ldc; ++i)
            if (std::memcmp(&plain[static_cast<size_t>(i)], c + i, sizeof(float)) != 0) ++differ;
          CHECK_EQ(differ, 0);
          if (first.empty()) first.assign(c, c + rows_c * ldc);
          else CHECK(std::memcmp(first.data(), c, first.size() * sizeof(float)) == 0);
        }, seed);  // same seed per thread count: same operands
        if (bad)
          std::fprintf(stderr, "packed B: kernel %s threads %u ta %d tb %d m %lld n %lld k %lld: %d bad\n", kern->name, threads, cs.ta,
                       cs.tb, static_cast<long long>(cs.m), static_cast<long long>(cs.n), static_cast<long long>(cs.k), bad);
        CHECK_EQ(bad, 0);
      }
      ++seed;
    }
}

TEST(small_m_products_split_their_columns_across_threads) {
  // 77 tokens (one row block): with 2 threads the columns are cut in two even panel ranges; one thread
  // or a tiny product stays one task; a tall product splits rows only.
  const auto s77 = cmo::linalg::gemm_split(2, 77, 768, 256, 12, 32);
  CHECK_EQ(s77.row_blocks, 1);
  CHECK_EQ(s77.col_splits, 2);
  CHECK_EQ(s77.n_panels, 24);
  CHECK_EQ(cmo::linalg::gemm_split(1, 77, 768, 256, 12, 32).col_splits, 1);
  CHECK_EQ(cmo::linalg::gemm_split(2, 4, 8, 8, 12, 32).col_splits, 1);
  const auto tall = cmo::linalg::gemm_split(2, 1024, 320, 320, 12, 32);
  CHECK(tall.row_blocks >= 2);
  CHECK_EQ(tall.col_splits, 1);
  CHECK(tall.mc % 12 == 0 && tall.mc * tall.row_blocks >= 1024);
  // Never more column ranges than panels.
  CHECK_EQ(cmo::linalg::gemm_split(8, 64, 40, 4096, 12, 32).col_splits, 2);
}

TEST(simd_a_packing_copies_the_same_bits_as_the_scalar_loop) {
  // Every kernel's MR, panels of 1..MR rows (8×8 / 4×8 transposes plus scalar leftovers), depths with
  // and without a tail of < 8 columns, a padded leading dimension; NaN payloads must pass unchanged.
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  int differ = 0, cases_run = 0;
  for (const GemmKernel* kern : cmo::linalg::detail::runnable_kernels())
    for (int64_t m : {1, 3, 4, 7, 8, 12, 13, 25})
      for (int64_t k : {1, 7, 8, 9, 16, 37, 200}) {
        const int64_t lda = k + 3;
        std::vector<float> a(static_cast<size_t>(m * lda));
        for (auto& v : a) v = dist(rng);
        a[0] = std::nanf("0x123");
        const size_t len = cmo::linalg::packed_a_floats(*kern, m, k);
        std::vector<float> fast(len, 7.0f), slow(len, 7.0f);
        cmo::linalg::pack_a_full(*kern, false, m, k, a.data(), lda, fast.data());
        cmo::linalg::detail::use_scalar_pack_a(true);
        cmo::linalg::pack_a_full(*kern, false, m, k, a.data(), lda, slow.data());
        cmo::linalg::detail::use_scalar_pack_a(false);
        if (std::memcmp(fast.data(), slow.data(), len * sizeof(float)) != 0) ++differ;
        // Spot-check the layout itself: panel r0, depth p, row i.
        for (int64_t i = 0; i < m; ++i)
          for (int64_t p = 0; p < k; ++p) {
            const float want = a[static_cast<size_t>(i * lda + p)], got = fast[static_cast<size_t>((i / kern->mr * kern->mr) * k + p * kern->mr + i % kern->mr)];
            if (std::memcmp(&want, &got, sizeof(float)) != 0) ++differ;
          }
        ++cases_run;
      }
  CHECK(cases_run > 0);
  CHECK_EQ(differ, 0);
}

TEST(build_backend_sgemm_matches_the_reference) {
  uint32_t seed = 1000;
  for (const Case& cs : cases()) {
    int bad = check_case(cs, [](const Case& q, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc) {
      cmo::linalg::sgemm(q.ta, q.tb, q.m, q.n, q.k, q.alpha, a, lda, b, ldb, q.beta, c, ldc);
    }, seed++);
    CHECK_EQ(bad, 0);
  }
}

TEST(zero_k_or_alpha_only_scales_c) {
  std::vector<float> c{1, 2, 3, 4};
  float a = 1, b = 1;
  cmo::linalg::sgemm_portable(false, false, 2, 2, 0, 1.0f, &a, 1, &b, 2, 0.5f, c.data(), 2);
  CHECK(c == (std::vector<float>{0.5f, 1, 1.5f, 2}));
  cmo::linalg::sgemm_portable(false, false, 2, 2, 1, 0.0f, &a, 1, &b, 2, 0.0f, c.data(), 2);
  CHECK(c == (std::vector<float>{0, 0, 0, 0}));
}

CMO_TEST_MAIN()
