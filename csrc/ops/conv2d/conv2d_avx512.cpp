// conv2d, AVX-512 direct single-input-channel kernel (see conv2d.h).
//
// Register block: 32 output pixels of one row (two zmm, masked at the row end) x OB output
// channels; per tap one pair of input loads feeds 2*OB FMAs against broadcast weights. Every
// output element sums its taps in (i, j) order from 0 with FMA, whatever block it falls in.
#include <immintrin.h>

#include "ops/conv2d/conv2d.h"

namespace fv {
namespace {

__mmask16 lane_mask(int64_t r) {
  if (r >= 16) return static_cast<__mmask16>(0xFFFF);
  if (r <= 0) return 0;
  return static_cast<__mmask16>((1u << r) - 1u);
}

template <int OB>
void block(const float* xp, int64_t Wp, const float* w, const float* bias, int64_t o0,
           int64_t kh, int64_t kw, int64_t OH, int64_t OW, bool relu, float* y,
           int64_t y_stride) {
  const int64_t taps = kh * kw;
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t oh = 0; oh < OH; ++oh) {
    for (int64_t ow0 = 0; ow0 < OW; ow0 += 32) {
      const __mmask16 m0 = lane_mask(OW - ow0), m1 = lane_mask(OW - ow0 - 16);
      __m512 acc0[OB], acc1[OB];
      for (int b = 0; b < OB; ++b) acc0[b] = acc1[b] = zero;
      for (int64_t i = 0; i < kh; ++i) {
        const float* xr = xp + (oh + i) * Wp + ow0;
        for (int64_t j = 0; j < kw; ++j) {
          const __m512 x0 = _mm512_maskz_loadu_ps(m0, xr + j);
          const __m512 x1 = _mm512_maskz_loadu_ps(m1, xr + j + 16);
          const float* wt = w + o0 * taps + i * kw + j;
          for (int b = 0; b < OB; ++b) {
            const __m512 wv = _mm512_set1_ps(wt[b * taps]);
            acc0[b] = _mm512_fmadd_ps(x0, wv, acc0[b]);
            acc1[b] = _mm512_fmadd_ps(x1, wv, acc1[b]);
          }
        }
      }
      for (int b = 0; b < OB; ++b) {
        __m512 v0 = acc0[b], v1 = acc1[b];
        if (bias != nullptr) {
          const __m512 bv = _mm512_set1_ps(bias[o0 + b]);
          v0 = _mm512_add_ps(v0, bv);
          v1 = _mm512_add_ps(v1, bv);
        }
        if (relu) {  // max(0, v) keeps NaN (second operand wins on unordered), as torch
          v0 = _mm512_max_ps(zero, v0);
          v1 = _mm512_max_ps(zero, v1);
        }
        float* yr = y + (o0 + b) * y_stride + oh * OW + ow0;
        _mm512_mask_storeu_ps(yr, m0, v0);
        _mm512_mask_storeu_ps(yr + 16, m1, v1);
      }
    }
  }
}

void direct_c1(const float* xp, int64_t Hp, int64_t Wp, const float* w, const float* bias,
               int64_t O, int64_t kh, int64_t kw, int64_t OH, int64_t OW, bool relu, float* y,
               int64_t y_stride) {
  int64_t o = 0;
  for (; o + 8 <= O; o += 8) block<8>(xp, Wp, w, bias, o, kh, kw, OH, OW, relu, y, y_stride);
  if (o + 4 <= O) { block<4>(xp, Wp, w, bias, o, kh, kw, OH, OW, relu, y, y_stride); o += 4; }
  if (o + 2 <= O) { block<2>(xp, Wp, w, bias, o, kh, kw, OH, OW, relu, y, y_stride); o += 2; }
  if (o < O) block<1>(xp, Wp, w, bias, o, kh, kw, OH, OW, relu, y, y_stride);
}

}  // namespace

extern const ConvKernels conv2d_kernels_avx512 = {&direct_c1};

}  // namespace fv
