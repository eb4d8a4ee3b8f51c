// BLAS/LAPACK façade. Backends: Accelerate (macOS), OpenBLAS (Linux, when CMake/node-gyp found it),
// or the portable kernels in blas_portable.cc. Callers never include a BLAS header themselves.
#pragma once
#include <cstddef>
#include <cstdint>

namespace cmo::linalg {

// "accelerate", "openblas" or "portable".
const char* blas_backend_name();

// Row-major C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C. lda/ldb/ldc are row strides.
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// Portable reference of sgemm (also the oracle for tests of the BLAS path).
void sgemm_portable(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
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

}  // namespace cmo::linalg
