// sgemm for the executor's kernels, split across the shared thread pool.
//
// Why not let the BLAS thread itself: OpenBLAS worker threads busy-wait for a while after every call,
// so the elementwise kernels that follow on our own pool were starved (3-4x slower end to end on a
// 2-core machine). The executor therefore runs BLAS single-threaded (set once, see gemm.cc) and
// parallelizes over row/column blocks or over batch entries itself.
#pragma once
#include <cstdint>

namespace cmo::exec {

// Row-major C[m×n] = alpha·op(A)·op(B) + beta·C, like linalg::sgemm; `threads` 0 = pool size.
void gemm(unsigned threads, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// `count` independent products C_i = op(A_i)·op(B_i) (beta = 0) with per-entry pointers.
void gemm_batch(unsigned threads, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, int64_t count,
                const float* const* a, int64_t lda, const float* const* b, int64_t ldb, float* const* c, int64_t ldc);

// Makes the BLAS backend single-threaded (OpenBLAS only; Accelerate and the portable kernels need
// nothing). Called once when the first executor graph is built.
void use_single_threaded_blas();

}  // namespace cmo::exec
