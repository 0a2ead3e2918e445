// softmax cross-entropy / log_softmax, AVX2 (see softmax_ce.h).
// Mirrors the AVX-512 file lane for lane: a row is walked in 16-float chunks held as two ymm
// halves (lo = lanes 0-7, hi = lanes 8-15), sums accumulate per lane and reduce lo + hi, then
// 8 -> 4 -> 2 -> 1 in the AVX-512 order; the expf is the same sequence of FMAs. So AVX2 and
// AVX-512 results are bitwise identical. Tails use maskload/maskstore.
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "ops/softmax_ce/softmax_ce.h"

namespace fv {
namespace {

// Lanes [0, r) set; r <= 0 gives none, r >= 8 all.
__m256i tail8(int64_t r) {
  const int k = r < 0 ? 0 : (r > 8 ? 8 : static_cast<int>(r));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// expf for 8 lanes: the algorithm and constants of exp16 in softmax_ce_avx512.cpp.
__m256 exp8(__m256 x) {
  x = _mm256_max_ps(_mm256_set1_ps(-104.0f), _mm256_min_ps(_mm256_set1_ps(89.0f), x));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
  p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

// Sum of 16 lanes held as lo/hi, in the AVX-512 file's order.
float hsum16(__m256 lo, __m256 hi) {
  const __m256 a = _mm256_add_ps(lo, hi);
  __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  b = _mm_add_ps(b, _mm_movehl_ps(b, b));
  b = _mm_add_ss(b, _mm_shuffle_ps(b, b, 1));
  return _mm_cvtss_f32(b);
}

float hmax8(__m256 a) {
  __m128 b = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  b = _mm_max_ps(b, _mm_movehl_ps(b, b));
  b = _mm_max_ss(b, _mm_shuffle_ps(b, b, 1));
  return _mm_cvtss_f32(b);
}

float row_max(const float* x, int64_t c) {
  const __m256 ninf = _mm256_set1_ps(-INFINITY);
  __m256 vm = ninf;
  int64_t j = 0;
  for (; j + 8 <= c; j += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + j));
  if (j < c) {
    const __m256i k = tail8(c - j);
    vm = _mm256_max_ps(vm, _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + j, k), _mm256_castsi256_ps(k)));
  }
  return hmax8(vm);
}

// Target for classes [j, j + 8): t_other, and t_label in the label's lane.
__m256 target8(int64_t y, int64_t j, const SoftmaxCeParams& p) {
  const int64_t k = y - j;
  const int kk = (k >= 0 && k < 8) ? static_cast<int>(k) : -1;
  const __m256 hot = _mm256_castsi256_ps(
      _mm256_cmpeq_epi32(_mm256_set1_epi32(kk), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
  return _mm256_blendv_ps(_mm256_set1_ps(p.t_other), _mm256_set1_ps(p.t_label), hot);
}

__m256 grad8(__m256 e, __m256 inv, __m256 t, __m256 scale) {
  return _mm256_mul_ps(_mm256_sub_ps(_mm256_mul_ps(e, inv), t), scale);
}

float row_loss(float s, float dy, float sumd, const SoftmaxCeParams& p) {
  double l = static_cast<double>(logf(s)) - static_cast<double>(p.keep) * dy;
  if (p.smooth != 0.0f) l -= static_cast<double>(p.smooth) * sumd;
  return static_cast<float>(l);
}

void cross_entropy(const float* x, const int64_t* labels, float* loss, float* grad, int64_t n,
                   const SoftmaxCeParams& p) {
  const int64_t c = p.c;
  const __m256 scale = _mm256_set1_ps(p.grad_scale);
  for (int64_t i = 0; i < n; ++i) {
    const float* xr = x + i * c;
    float* gr = grad + i * c;
    const int64_t y = labels[i];
    const float m = row_max(xr, c);
    const __m256 vm = _mm256_set1_ps(m);
    if (c <= 16) {
      // One 16-float chunk (the C = 10 fast path): exp values stay in registers.
      const __m256i klo = tail8(c), khi = tail8(c - 8);
      const __m256 mlo = _mm256_castsi256_ps(klo), mhi = _mm256_castsi256_ps(khi);
      const __m256 dlo = _mm256_and_ps(mlo, _mm256_sub_ps(_mm256_maskload_ps(xr, klo), vm));
      const __m256 dhi = _mm256_and_ps(mhi, _mm256_sub_ps(_mm256_maskload_ps(xr + 8, khi), vm));
      const __m256 elo = _mm256_and_ps(mlo, exp8(dlo));
      const __m256 ehi = _mm256_and_ps(mhi, exp8(dhi));
      const float s = hsum16(elo, ehi);
      const __m256 inv = _mm256_set1_ps(1.0f / s);
      _mm256_maskstore_ps(gr, klo, grad8(elo, inv, target8(y, 0, p), scale));
      _mm256_maskstore_ps(gr + 8, khi, grad8(ehi, inv, target8(y, 8, p), scale));
      loss[i] = row_loss(s, xr[y] - m, p.smooth != 0.0f ? hsum16(dlo, dhi) : 0.0f, p);
      continue;
    }
    // 16-float chunks (lo, hi); masked lanes hold d = 0 and e = 0, as in the AVX-512 file.
    __m256 acc_lo = _mm256_setzero_ps(), acc_hi = acc_lo, accd_lo = acc_lo, accd_hi = acc_lo;
    int64_t j = 0;
    for (; j < c; j += 16) {
      const __m256i klo = tail8(c - j), khi = tail8(c - j - 8);
      const __m256 mlo = _mm256_castsi256_ps(klo), mhi = _mm256_castsi256_ps(khi);
      const __m256 dlo = _mm256_and_ps(mlo, _mm256_sub_ps(_mm256_maskload_ps(xr + j, klo), vm));
      const __m256 dhi = _mm256_and_ps(mhi, _mm256_sub_ps(_mm256_maskload_ps(xr + j + 8, khi), vm));
      const __m256 elo = _mm256_and_ps(mlo, exp8(dlo));
      const __m256 ehi = _mm256_and_ps(mhi, exp8(dhi));
      _mm256_maskstore_ps(gr + j, klo, elo);  // exp(x - max) parks in the grad row
      _mm256_maskstore_ps(gr + j + 8, khi, ehi);
      acc_lo = _mm256_add_ps(acc_lo, elo);
      acc_hi = _mm256_add_ps(acc_hi, ehi);
      accd_lo = _mm256_add_ps(accd_lo, dlo);
      accd_hi = _mm256_add_ps(accd_hi, dhi);
    }
    const float s = hsum16(acc_lo, acc_hi);
    const __m256 inv = _mm256_set1_ps(1.0f / s);
    for (j = 0; j + 8 <= c; j += 8)
      _mm256_storeu_ps(gr + j, grad8(_mm256_loadu_ps(gr + j), inv, target8(y, j, p), scale));
    if (j < c) {
      const __m256i k = tail8(c - j);
      _mm256_maskstore_ps(gr + j, k, grad8(_mm256_maskload_ps(gr + j, k), inv, target8(y, j, p), scale));
    }
    loss[i] = row_loss(s, xr[y] - m, p.smooth != 0.0f ? hsum16(accd_lo, accd_hi) : 0.0f, p);
  }
}

void log_softmax(const float* x, float* y, int64_t n, int64_t c) {
  for (int64_t i = 0; i < n; ++i) {
    const float* xr = x + i * c;
    float* yr = y + i * c;
    const __m256 vm = _mm256_set1_ps(row_max(xr, c));
    __m256 acc_lo = _mm256_setzero_ps(), acc_hi = acc_lo;
    for (int64_t j = 0; j < c; j += 16) {
      const __m256i klo = tail8(c - j), khi = tail8(c - j - 8);
      const __m256 elo = exp8(_mm256_sub_ps(_mm256_maskload_ps(xr + j, klo), vm));
      const __m256 ehi = exp8(_mm256_sub_ps(_mm256_maskload_ps(xr + j + 8, khi), vm));
      acc_lo = _mm256_add_ps(acc_lo, _mm256_and_ps(_mm256_castsi256_ps(klo), elo));
      acc_hi = _mm256_add_ps(acc_hi, _mm256_and_ps(_mm256_castsi256_ps(khi), ehi));
    }
    const __m256 ls = _mm256_set1_ps(logf(hsum16(acc_lo, acc_hi)));
    int64_t j = 0;
    for (; j + 8 <= c; j += 8)
      _mm256_storeu_ps(yr + j, _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + j), vm), ls));
    if (j < c) {
      const __m256i k = tail8(c - j);
      _mm256_maskstore_ps(yr + j, k, _mm256_sub_ps(_mm256_sub_ps(_mm256_maskload_ps(xr + j, k), vm), ls));
    }
  }
}

void log_softmax_backward(const float* gy, const float* y, float* gx, int64_t n, int64_t c) {
  for (int64_t i = 0; i < n; ++i) {
    const float* gr = gy + i * c;
    const float* yr = y + i * c;
    float* xr = gx + i * c;
    __m256 acc_lo = _mm256_setzero_ps(), acc_hi = acc_lo;
    for (int64_t j = 0; j < c; j += 16) {
      acc_lo = _mm256_add_ps(acc_lo, _mm256_maskload_ps(gr + j, tail8(c - j)));
      acc_hi = _mm256_add_ps(acc_hi, _mm256_maskload_ps(gr + j + 8, tail8(c - j - 8)));
    }
    const __m256 s = _mm256_set1_ps(hsum16(acc_lo, acc_hi));
    int64_t j = 0;
    for (; j + 8 <= c; j += 8) {
      const __m256 e = exp8(_mm256_loadu_ps(yr + j));
      _mm256_storeu_ps(xr + j, _mm256_sub_ps(_mm256_loadu_ps(gr + j), _mm256_mul_ps(e, s)));
    }
    if (j < c) {
      const __m256i k = tail8(c - j);
      const __m256 e = exp8(_mm256_maskload_ps(yr + j, k));
      _mm256_maskstore_ps(xr + j, k, _mm256_sub_ps(_mm256_maskload_ps(gr + j, k), _mm256_mul_ps(e, s)));
    }
  }
}

}  // namespace

extern const SoftmaxCeKernels softmax_ce_kernels_avx2 = {&cross_entropy, &log_softmax,
                                                         &log_softmax_backward};

}  // namespace fv
