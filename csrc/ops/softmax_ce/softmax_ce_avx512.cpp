// softmax cross-entropy / log_softmax, AVX-512 (see softmax_ce.h).
// A row is walked in 16-float chunks, the last one masked (so C = 10, the MNIST shape, is one
// masked zmm per row and the exp values never leave the register). Sums accumulate per lane and
// reduce 16 -> 8 -> 4 -> 2 -> 1, the same tree as the AVX2 file, so both give identical bits.
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "ops/softmax_ce/softmax_ce.h"

namespace fv {
namespace {

__mmask16 tail(int64_t r) { return static_cast<__mmask16>((1u << r) - 1u); }

// expf for 16 lanes, ~1-2 ulp (Cephes): n = round(x / ln 2), r = x - n ln 2 in two parts
// (hi part exact in fp32), exp(r) by a degree-7 polynomial, times 2^n applied as 2^n1 * 2^n2
// so that underflow to subnormals/0 and overflow to inf come out right without special cases.
// The clamp keeps n in [-150, 128]; NaN passes through (min/max return the second operand).
__m512 exp16(__m512 x) {
  x = _mm512_max_ps(_mm512_set1_ps(-104.0f), _mm512_min_ps(_mm512_set1_ps(89.0f), x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r);
  p = _mm512_add_ps(p, _mm512_set1_ps(1.0f));
  const __m512i ni = _mm512_cvtps_epi32(n);
  const __m512i n1 = _mm512_srai_epi32(ni, 1);
  const __m512i n2 = _mm512_sub_epi32(ni, n1);
  const __m512i bias = _mm512_set1_epi32(127);
  const __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, bias), 23));
  const __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, bias), 23));
  return _mm512_mul_ps(_mm512_mul_ps(p, s1), s2);
}

float hsum8(__m256 a) {
  __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  b = _mm_add_ps(b, _mm_movehl_ps(b, b));
  b = _mm_add_ss(b, _mm_shuffle_ps(b, b, 1));
  return _mm_cvtss_f32(b);
}

float hsum16(__m512 v) {
  return hsum8(_mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)));
}

float hmax16(__m512 v) {
  __m256 a = _mm256_max_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 b = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  b = _mm_max_ps(b, _mm_movehl_ps(b, b));
  b = _mm_max_ss(b, _mm_shuffle_ps(b, b, 1));
  return _mm_cvtss_f32(b);
}

float row_max(const float* x, int64_t c) {
  __m512 vm = _mm512_set1_ps(-INFINITY);
  int64_t j = 0;
  for (; j + 16 <= c; j += 16) vm = _mm512_max_ps(vm, _mm512_loadu_ps(x + j));
  if (j < c) vm = _mm512_mask_max_ps(vm, tail(c - j), vm, _mm512_maskz_loadu_ps(tail(c - j), x + j));
  return hmax16(vm);
}

// The target for the 16 classes starting at j: t_other, and t_label in the label's lane.
__m512 target16(int64_t y, int64_t j, const SoftmaxCeParams& p) {
  const int64_t k = y - j;
  const __mmask16 hot = (k >= 0 && k < 16) ? static_cast<__mmask16>(1u << k) : 0;
  return _mm512_mask_blend_ps(hot, _mm512_set1_ps(p.t_other), _mm512_set1_ps(p.t_label));
}

float row_loss(float s, float dy, float sumd, const SoftmaxCeParams& p) {
  // Same expression as the scalar file: log s - (1 - ls)(x_y - max) - (ls / C) sum(x - max).
  double l = static_cast<double>(logf(s)) - static_cast<double>(p.keep) * dy;
  if (p.smooth != 0.0f) l -= static_cast<double>(p.smooth) * sumd;
  return static_cast<float>(l);
}

void cross_entropy(const float* x, const int64_t* labels, float* loss, float* grad, int64_t n,
                   const SoftmaxCeParams& p) {
  const int64_t c = p.c;
  const __m512 scale = _mm512_set1_ps(p.grad_scale);
  for (int64_t i = 0; i < n; ++i) {
    const float* xr = x + i * c;
    float* gr = grad + i * c;
    const int64_t y = labels[i];
    const float m = row_max(xr, c);
    const __m512 vm = _mm512_set1_ps(m);
    if (c <= 16) {
      // One masked chunk: exp values stay in a register (the C = 10 fast path).
      const __mmask16 k = tail(c);
      const __m512 d = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, xr), vm);
      const __m512 e = _mm512_maskz_mov_ps(k, exp16(d));
      const float s = hsum16(e);
      const __m512 inv = _mm512_set1_ps(1.0f / s);
      const __m512 g = _mm512_mul_ps(_mm512_sub_ps(_mm512_mul_ps(e, inv), target16(y, 0, p)), scale);
      _mm512_mask_storeu_ps(gr, k, g);
      loss[i] = row_loss(s, xr[y] - m, p.smooth != 0.0f ? hsum16(d) : 0.0f, p);
      continue;
    }
    // Wider rows: exp(x - max) parks in the grad row until the sum is known.
    __m512 acc = _mm512_setzero_ps(), accd = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j + 16 <= c; j += 16) {
      const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(xr + j), vm);
      const __m512 e = exp16(d);
      _mm512_storeu_ps(gr + j, e);
      acc = _mm512_add_ps(acc, e);
      accd = _mm512_add_ps(accd, d);
    }
    if (j < c) {
      const __mmask16 k = tail(c - j);
      const __m512 d = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, xr + j), vm);
      const __m512 e = _mm512_maskz_mov_ps(k, exp16(d));
      _mm512_mask_storeu_ps(gr + j, k, e);
      acc = _mm512_add_ps(acc, e);
      accd = _mm512_add_ps(accd, d);
    }
    const float s = hsum16(acc);
    const __m512 inv = _mm512_set1_ps(1.0f / s);
    for (j = 0; j + 16 <= c; j += 16) {
      const __m512 e = _mm512_loadu_ps(gr + j);
      _mm512_storeu_ps(gr + j, _mm512_mul_ps(_mm512_sub_ps(_mm512_mul_ps(e, inv), target16(y, j, p)), scale));
    }
    if (j < c) {
      const __mmask16 k = tail(c - j);
      const __m512 e = _mm512_maskz_loadu_ps(k, gr + j);
      _mm512_mask_storeu_ps(gr + j, k, _mm512_mul_ps(_mm512_sub_ps(_mm512_mul_ps(e, inv), target16(y, j, p)), scale));
    }
    loss[i] = row_loss(s, xr[y] - m, p.smooth != 0.0f ? hsum16(accd) : 0.0f, p);
  }
}

void log_softmax(const float* x, float* y, int64_t n, int64_t c) {
  for (int64_t i = 0; i < n; ++i) {
    const float* xr = x + i * c;
    float* yr = y + i * c;
    const __m512 vm = _mm512_set1_ps(row_max(xr, c));
    __m512 acc = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j + 16 <= c; j += 16) acc = _mm512_add_ps(acc, exp16(_mm512_sub_ps(_mm512_loadu_ps(xr + j), vm)));
    if (j < c) {
      const __mmask16 k = tail(c - j);
      acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(k, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, xr + j), vm))));
    }
    const __m512 ls = _mm512_set1_ps(logf(hsum16(acc)));
    for (j = 0; j + 16 <= c; j += 16)
      _mm512_storeu_ps(yr + j, _mm512_sub_ps(_mm512_sub_ps(_mm512_loadu_ps(xr + j), vm), ls));
    if (j < c) {
      const __mmask16 k = tail(c - j);
      _mm512_mask_storeu_ps(yr + j, k, _mm512_sub_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, xr + j), vm), ls));
    }
  }
}

void log_softmax_backward(const float* gy, const float* y, float* gx, int64_t n, int64_t c) {
  for (int64_t i = 0; i < n; ++i) {
    const float* gr = gy + i * c;
    const float* yr = y + i * c;
    float* xr = gx + i * c;
    __m512 acc = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j + 16 <= c; j += 16) acc = _mm512_add_ps(acc, _mm512_loadu_ps(gr + j));
    if (j < c) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(tail(c - j), gr + j));
    const __m512 s = _mm512_set1_ps(hsum16(acc));
    for (j = 0; j + 16 <= c; j += 16) {
      const __m512 e = exp16(_mm512_loadu_ps(yr + j));
      _mm512_storeu_ps(xr + j, _mm512_sub_ps(_mm512_loadu_ps(gr + j), _mm512_mul_ps(e, s)));
    }
    if (j < c) {
      const __mmask16 k = tail(c - j);
      const __m512 e = exp16(_mm512_maskz_loadu_ps(k, yr + j));
      _mm512_mask_storeu_ps(xr + j, k, _mm512_sub_ps(_mm512_maskz_loadu_ps(k, gr + j), _mm512_mul_ps(e, s)));
    }
  }
}

}  // namespace

extern const SoftmaxCeKernels softmax_ce_kernels_avx512 = {&cross_entropy, &log_softmax,
                                                           &log_softmax_backward};

}  // namespace fv
