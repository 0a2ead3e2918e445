// sgemm driver. PLACEHOLDER: a plain triple loop (correct, slow) so that other ops can build
// on the interface in gemm.h; the packed, blocked ISA kernels replace it.
#include "ops/gemm/gemm.h"

namespace fv {

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
           const GemmEpilogue& ep) {
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      float acc = 0.0f;
      for (int64_t k = 0; k < K; ++k) {
        const float a = trans_a ? A[k * lda + m] : A[m * lda + k];
        const float b = trans_b ? B[n * ldb + k] : B[k * ldb + n];
        acc += a * b;
      }
      float c = beta != 0.0f ? C[m * ldc + n] + acc : acc;
      if (ep.bias_kind == GemmEpilogue::Bias::per_row) c += ep.bias[m];
      if (ep.bias_kind == GemmEpilogue::Bias::per_col) c += ep.bias[n];
      if (ep.relu && c < 0.0f) c = 0.0f;
      C[m * ldc + n] = c;
    }
  }
}

}  // namespace fv
