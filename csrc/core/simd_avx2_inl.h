// AVX2 helpers shared by ISA files (include only from files built with AVX2 flags; internal
// linkage, like everything else in them).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace fv {
namespace {

// p[0, n) = v[0, n) (nothing where n <= 0): a plain store where n >= 8, else the lanes go
// through a buffer. vmaskmovps stores are microcoded on AMD Zen cores (~12 cycles each on
// Zen 3, measured: ~6x a plain store), so AVX2 code stores partial vectors this way.
inline void store_first(float* p, __m256 v, int64_t n) {
  if (n >= 8) {
    _mm256_storeu_ps(p, v);
    return;
  }
  alignas(32) float buf[8];
  _mm256_store_ps(buf, v);
  for (int64_t i = 0; i < n; ++i) p[i] = buf[i];
}

// In-place transpose of an 8 x 8 block: afterwards r[j] holds column j.
inline void transpose8(__m256 r[8]) {
  __m256 t[8], s[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h) {
    s[4 * h + 0] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], _MM_SHUFFLE(1, 0, 1, 0));
    s[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], _MM_SHUFFLE(3, 2, 3, 2));
    s[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], _MM_SHUFFLE(1, 0, 1, 0));
    s[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int c = 0; c < 4; ++c) {
    r[c] = _mm256_permute2f128_ps(s[c], s[4 + c], 0x20);
    r[4 + c] = _mm256_permute2f128_ps(s[c], s[4 + c], 0x31);
  }
}

// *best, *at = v, at_v in the lanes where v > *best or v is NaN: max_pool2d's window rule
// (the scalar code's `v > best || v != v`), shared by the AVX2 pool kernels and Winograd's
// pooling output transform so the bits cannot drift apart.
inline void take_if_greater_or_nan(__m256 v, __m256i at_v, __m256* best, __m256i* at) {
  const __m256 t = _mm256_or_ps(_mm256_cmp_ps(v, *best, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  *best = _mm256_blendv_ps(*best, v, t);
  *at = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(*at), _mm256_castsi256_ps(at_v), t));
}

}  // namespace
}  // namespace fv
