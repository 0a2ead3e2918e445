// relu, AVX512 (see relu.h). Tails use masks, so every element takes the same path.
#include <immintrin.h>

#include "ops/relu/relu.h"

namespace fv {
namespace {

// max(0, x) returns x when x is NaN (the second operand wins on unordered), as torch does.
void forward(const float* x, float* y, int64_t n) {
  const __m512 zero = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_max_ps(zero, _mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(y + i, m, _mm512_max_ps(zero, _mm512_maskz_loadu_ps(m, x + i)));
  }
}

void backward(const float* grad_y, const float* y, float* grad_x, int64_t n) {
  const __m512 zero = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __mmask16 pos = _mm512_cmp_ps_mask(_mm512_loadu_ps(y + i), zero, _CMP_GT_OQ);
    _mm512_storeu_ps(grad_x + i, _mm512_maskz_mov_ps(pos, _mm512_loadu_ps(grad_y + i)));
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    const __mmask16 pos = _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(m, y + i), zero, _CMP_GT_OQ);
    _mm512_mask_storeu_ps(grad_x + i, m, _mm512_maskz_mov_ps(pos, _mm512_maskz_loadu_ps(m, grad_y + i)));
  }
}

}  // namespace

extern const ReluKernels relu_kernels_avx512 = {&forward, &backward};

}  // namespace fv
