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

}  // namespace cmo::linalg
