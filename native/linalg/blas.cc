#include "blas.h"

#include <cstdlib>

#if defined(CMO_USE_ACCELERATE)
#define ACCELERATE_NEW_LAPACK 1
#include <Accelerate/Accelerate.h>
#elif defined(CMO_USE_OPENBLAS)
#include <cblas.h>
extern "C" char* openblas_get_corename(void);
extern "C" char* openblas_get_config(void);
#endif

#if defined(CMO_USE_OPENBLAS)
extern "C" {
// LAPACK (Fortran symbols; OpenBLAS ships them). One-character arguments: no hidden length needed
// by OpenBLAS's own potrf/potri.
void spotrf_(const char* uplo, const int* n, float* a, const int* lda, int* info);
void spotri_(const char* uplo, const int* n, float* a, const int* lda, int* info);
void strtri_(const char* uplo, const char* diag, const int* n, float* a, const int* lda, int* info);
void openblas_set_num_threads(int num_threads);
}
#endif

namespace cmo::linalg {


const char* blas_backend_name() {
#if defined(CMO_USE_ACCELERATE)
  return "accelerate";
#elif defined(CMO_USE_OPENBLAS)
  return "openblas";
#else
  return "portable";
#endif
}

std::string blas_backend_detail() {
#if defined(CMO_USE_ACCELERATE)
  return "Accelerate (vecLib)";
#elif defined(CMO_USE_OPENBLAS)
  return std::string("OpenBLAS (") + openblas_get_config() + "; core " + openblas_get_corename() + ")";
#else
  return std::string("portable SGEMM, ") + portable_kernel_name() + " micro-kernel (no system BLAS at build time)";
#endif
}

std::string executor_gemm_detail() {
  return executor_prefers_portable_gemm() ? std::string("portable SGEMM, ") + portable_kernel_name() + " micro-kernel"
                                          : std::string(blas_backend_name());
}

bool executor_prefers_portable_gemm() {
  static const bool prefer = [] {
    const char* env = std::getenv("COREML_OPTIMIZE_GEMM");
    const std::string choice = env ? env : "";
    if (choice == "portable") return true;
#if defined(CMO_USE_ACCELERATE) || defined(CMO_USE_OPENBLAS)
    if (choice == "blas") return false;
#endif
#if defined(CMO_USE_ACCELERATE)
    return false;
#elif defined(CMO_USE_OPENBLAS)
    const std::string core = openblas_get_corename();
    const bool blas_has_avx512 = core.find("SkylakeX") != std::string::npos || core.find("Cooperlake") != std::string::npos ||
                                 core.find("SapphireRapids") != std::string::npos;
    return std::string(portable_kernel_name()) == "avx512" && !blas_has_avx512;
#else
    return true;
#endif
  }();
  return prefer;
}

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
#if defined(CMO_USE_ACCELERATE) || defined(CMO_USE_OPENBLAS)
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a, static_cast<int>(lda), b,
              static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
#else
  sgemm_portable(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 0);
#endif
}

void ssyrk(bool upper, bool trans, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, float beta, float* c,
           int64_t ldc) {
#if defined(CMO_USE_ACCELERATE) || defined(CMO_USE_OPENBLAS)
  cblas_ssyrk(CblasRowMajor, upper ? CblasUpper : CblasLower, trans ? CblasTrans : CblasNoTrans, static_cast<int>(n),
              static_cast<int>(k), alpha, a, static_cast<int>(lda), beta, c, static_cast<int>(ldc));
#else
  ssyrk_portable(upper, trans, n, k, alpha, a, lda, beta, c, ldc);
#endif
}

void strsm_right_upper(bool trans_t, int64_t m, int64_t n, const float* t, int64_t ldt, float* b, int64_t ldb) {
#if defined(CMO_USE_ACCELERATE) || defined(CMO_USE_OPENBLAS)
  cblas_strsm(CblasRowMajor, CblasRight, CblasUpper, trans_t ? CblasTrans : CblasNoTrans, CblasNonUnit,
              static_cast<int>(m), static_cast<int>(n), 1.0f, t, static_cast<int>(ldt), b, static_cast<int>(ldb));
#else
  strsm_right_upper_portable(trans_t, m, n, t, ldt, b, ldb);
#endif
}

void strmm_left_upper(int64_t m, int64_t n, const float* t, int64_t ldt, float* b, int64_t ldb) {
#if defined(CMO_USE_ACCELERATE) || defined(CMO_USE_OPENBLAS)
  cblas_strmm(CblasRowMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasNonUnit, static_cast<int>(m),
              static_cast<int>(n), 1.0f, t, static_cast<int>(ldt), b, static_cast<int>(ldb));
#else
  strmm_left_upper_portable(m, n, t, ldt, b, ldb);
#endif
}

// Row-major lower = column-major upper, so the Fortran calls get the other triangle's letter.
int spotrf(bool upper, int64_t n, float* a, int64_t lda) {
#if defined(CMO_USE_OPENBLAS)
  const char uplo = upper ? 'L' : 'U';
  const int nn = static_cast<int>(n), ld = static_cast<int>(lda);
  int info = 0;
  spotrf_(&uplo, &nn, a, &ld, &info);
  return info;
#else
  return spotrf_portable(upper, n, a, lda);
#endif
}

int spotri(bool upper, int64_t n, float* a, int64_t lda) {
#if defined(CMO_USE_OPENBLAS)
  const char uplo = upper ? 'L' : 'U';
  const int nn = static_cast<int>(n), ld = static_cast<int>(lda);
  int info = 0;
  spotri_(&uplo, &nn, a, &ld, &info);
  return info;
#else
  return spotri_portable(upper, n, a, lda);
#endif
}

int strtri_upper(int64_t n, float* a, int64_t lda) {
#if defined(CMO_USE_OPENBLAS)
  const char uplo = 'L', diag = 'N';  // row-major upper = column-major lower
  const int nn = static_cast<int>(n), ld = static_cast<int>(lda);
  int info = 0;
  strtri_(&uplo, &diag, &nn, a, &ld, &info);
  return info;
#else
  return strtri_upper_portable(n, a, lda);
#endif
}

bool has_lapack() {
#if defined(CMO_USE_OPENBLAS)
  return true;
#else
  return false;
#endif
}

void set_blas_threads(int threads) {
#if defined(CMO_USE_OPENBLAS)
  openblas_set_num_threads(threads);
#else
  (void)threads;
#endif
}

}  // namespace cmo::linalg
