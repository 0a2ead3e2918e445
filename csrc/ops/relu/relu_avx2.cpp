// relu, AVX2 (see relu.h). Tails use masks, so every element takes the same path.
#include <immintrin.h>

#include "ops/relu/relu.h"

namespace fv {
namespace {

__m256i tail_mask(int64_t r) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(r)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// max(0, x) returns x when x is NaN (the second operand wins on unordered), as torch does.
void forward(const float* x, float* y, int64_t n) {
  const __m256 zero = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_max_ps(zero, _mm256_loadu_ps(x + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, _mm256_max_ps(zero, _mm256_maskload_ps(x + i, m)));
  }
}

void backward(const float* grad_y, const float* y, float* grad_x, int64_t n) {
  const __m256 zero = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 pos = _mm256_cmp_ps(_mm256_loadu_ps(y + i), zero, _CMP_GT_OQ);
    _mm256_storeu_ps(grad_x + i, _mm256_and_ps(pos, _mm256_loadu_ps(grad_y + i)));
  }
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    const __m256 pos = _mm256_cmp_ps(_mm256_maskload_ps(y + i, m), zero, _CMP_GT_OQ);
    _mm256_maskstore_ps(grad_x + i, m, _mm256_and_ps(pos, _mm256_maskload_ps(grad_y + i, m)));
  }
}

}  // namespace

extern const ReluKernels relu_kernels_avx2 = {&forward, &backward};

}  // namespace fv
