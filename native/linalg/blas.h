// BLAS/LAPACK façade. Backends: Accelerate (macOS), OpenBLAS (Linux, when CMake/node-gyp found it),
// or the portable blocked SGEMM in sgemm_blocked.cc (COREML_OPTIMIZE_BLAS=portable forces it) and the portable
// triangular / Cholesky loops in lapack_portable.cc. Callers never include a BLAS header themselves.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace cmo::linalg {

// "accelerate", "openblas" or "portable".
const char* blas_backend_name();
// One line for `doctor`: the backend with what it runs on this CPU (OpenBLAS's core, the portable
// micro-kernel), e.g. "openblas 0.3.21, core Haswell" or "portable SGEMM, avx2+fma micro-kernel".
std::string blas_backend_detail();

// Row-major C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C. lda/ldb/ldc are row strides.
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// The portable backend (sgemm_blocked.cc): packed, cache-blocked, run-time dispatched SIMD
// micro-kernels, split over the package pool (`threads` 0 = pool size, 1 = this thread only).
void sgemm_portable(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                    const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                    int64_t ldc, unsigned threads = 0);

// Whether the executor should call sgemm_portable rather than the system BLAS: always in a portable
// build; in an OpenBLAS build when the portable kernel is AVX-512 and OpenBLAS's core is not (0.3.21
// runs its Haswell AVX2 kernels on AMD Zen 4, ~1.5x slower than the AVX-512 micro-kernel here).
// COREML_OPTIMIZE_GEMM=blas / =portable overrides the choice (read once).
bool executor_prefers_portable_gemm();
// What the executor's GEMM runs on, for `doctor`.
std::string executor_gemm_detail();

// The micro-kernel sgemm_portable uses on this CPU: "avx512", "avx2+fma", "neon" or "scalar".
const char* portable_kernel_name();

// Plain triple loop with float64 accumulation: the test oracle of both backends.
void sgemm_reference(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                     const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                     int64_t ldc);

// Row-major symmetric rank-k update of ONE triangle of C[n×n] (upper: j >= i, lower: j <= i):
// C = alpha·A·Aᵀ + beta·C with A [n×k] (trans = false), or C = alpha·Aᵀ·A + beta·C with A [k×n]
// (trans = true). The other triangle is not touched (callers keep other data there).
void ssyrk(bool upper, bool trans, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, float beta, float* c,
           int64_t ldc);
// B[m×n] := B · op(T)⁻¹ with T [n×n] upper triangular, non-unit diagonal (only T's upper triangle is read).
void strsm_right_upper(bool trans_t, int64_t m, int64_t n, const float* t, int64_t ldt, float* b, int64_t ldb);
// B[m×n] := T · B with T [m×m] upper triangular, non-unit diagonal (only T's upper triangle is read).
void strmm_left_upper(int64_t m, int64_t n, const float* t, int64_t ldt, float* b, int64_t ldb);

// LAPACK Cholesky of a row-major symmetric matrix, in place: lower (A = L·Lᵀ, L in the lower
// triangle) or upper (A = Uᵀ·U, U in the upper triangle). Returns LAPACK's info (0 = ok, > 0 = not
// positive definite). Used by the benchmark's reference pipeline (torch runs these same calls).
int spotrf(bool upper, int64_t n, float* a, int64_t lda);
// (the spotrf factor in the same triangle) → that triangle of A⁻¹ (torch.cholesky_inverse).
int spotri(bool upper, int64_t n, float* a, int64_t lda);
// In-place inverse of a row-major upper-triangular matrix (only the upper triangle is read/written).
int strtri_upper(int64_t n, float* a, int64_t lda);
// True when spotrf / spotri / strtri_upper call a real LAPACK (OpenBLAS), not the portable loops.
bool has_lapack();
// Threads of the BLAS backend's own pool (OpenBLAS); no-op elsewhere. Benchmarks only: the
// library keeps OpenBLAS single-threaded and tiles over its own pool.
void set_blas_threads(int threads);

// Portable versions (the fallback backend and the tests' oracles).
void ssyrk_portable(bool upper, bool trans, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, float beta,
                    float* c, int64_t ldc);
void strsm_right_upper_portable(bool trans_t, int64_t m, int64_t n, const float* t, int64_t ldt, float* b, int64_t ldb);
void strmm_left_upper_portable(int64_t m, int64_t n, const float* t, int64_t ldt, float* b, int64_t ldb);
int spotrf_portable(bool upper, int64_t n, float* a, int64_t lda);
int spotri_portable(bool upper, int64_t n, float* a, int64_t lda);
int strtri_upper_portable(int64_t n, float* a, int64_t lda);

namespace detail {
struct GemmKernel;
}
// op(A) packed once for `kernel` (constant weights: the executor caches it): panels of MR rows
// (zero rows past m), each holding, for every p < k, MR values. packed_a_floats = its length.
size_t packed_a_floats(const detail::GemmKernel& kernel, int64_t m, int64_t k);
void pack_a_full(const detail::GemmKernel& kernel, bool trans_a, int64_t m, int64_t k, const float* a, int64_t lda,
                 float* dst);
// sgemm_portable_with whose A comes pre-packed by pack_a_full (same kernel); with packed_a null it
// packs trans_a / a / lda itself, per block, as sgemm_portable does.
void sgemm_portable_packed_a(const detail::GemmKernel& kernel, unsigned threads, bool trans_b, int64_t m, int64_t n,
                             int64_t k, float alpha, const float* packed_a, bool trans_a, const float* a, int64_t lda,
                             const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
// op(B) [k×n] packed once for `kernel` (constant weights: the executor packs linear weights at build):
// for each depth block p0 (kernel.kc rows, the last shorter) panels of NR columns (zero columns past n),
// each holding, for every p of the block, NR values. packed_b_floats = its length. `threads` splits the
// packing of a big matrix (0 = pool size).
size_t packed_b_floats(const detail::GemmKernel& kernel, int64_t k, int64_t n);
void pack_b_full(const detail::GemmKernel& kernel, bool trans_b, int64_t k, int64_t n, const float* b, int64_t ldb, float* dst,
                 unsigned threads = 0);
// C = alpha·op(A)·B + beta·C with B pre-packed by pack_b_full (same kernel). Same bits as
// sgemm_portable_with on the unpacked B, and the same for any thread count (the split changes which
// thread computes a tile, never how).
void sgemm_portable_packed_b(const detail::GemmKernel& kernel, unsigned threads, bool trans_a, int64_t m, int64_t n,
                             int64_t k, float alpha, const float* a, int64_t lda, const float* packed_b, float beta, float* c,
                             int64_t ldc);
// How the packed-B driver cuts C: row blocks of mc rows (a multiple of MR) × col_splits ranges of the
// n_panels NR-column panels. Small M (fewer row blocks than threads) splits the columns instead.
struct GemmSplit {
  int64_t row_blocks = 1, mc = 0, col_splits = 1, n_panels = 0;
};
GemmSplit gemm_split(unsigned threads, int64_t m, int64_t n, int64_t k, int mr, int nr);
// sgemm_portable with an explicit micro-kernel (tests run every kernel the CPU supports).
void sgemm_portable_with(const detail::GemmKernel& kernel, unsigned threads, bool trans_a, bool trans_b, int64_t m,
                         int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b, int64_t ldb,
                         float beta, float* c, int64_t ldc);

}  // namespace cmo::linalg
