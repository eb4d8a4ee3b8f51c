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

}  // namespace cmo::linalg
