// AVX2 helpers shared by ISA files (include only from files built with AVX2 flags; internal
// linkage, like everything else in them).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

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

// A 2x2 window's max and position by that rule, in (0, 0), (0, 1), (1, 0), (1, 1) order:
// e0 / o0 the even / odd columns of its upper row, e1 / o1 of its lower; *at = 0 or at1-at3.
inline void max_of_2x2(__m256 e0, __m256 o0, __m256 e1, __m256 o1, __m256i at1, __m256i at2,
                       __m256i at3, __m256* best, __m256i* at) {
  *best = e0;
  *at = _mm256_setzero_si256();
  take_if_greater_or_nan(o0, at1, best, at);
  take_if_greater_or_nan(e1, at2, best, at);
  take_if_greater_or_nan(o1, at3, best, at);
}

// e = even lanes of a:b, o = odd lanes.
inline void deinterleave(__m256 a, __m256 b, __m256* e, __m256* o) {
  // shuffle works within 128-bit halves: [a0 a2 b0 b2 | a4 a6 b4 b6]; the permute restores order.
  *e = _mm256_castpd_ps(_mm256_permute4x64_pd(
      _mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0))), _MM_SHUFFLE(3, 1, 2, 0)));
  *o = _mm256_castpd_ps(_mm256_permute4x64_pd(
      _mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1))), _MM_SHUFFLE(3, 1, 2, 0)));
}

// p[0, n) = the low bytes of the lanes of codes (n <= 8: max_pool2d_2x2's window codes), by
// fixed-size copies (a variable-size one is a library call and byte stores).
inline void store_codes(uint8_t* p, __m256i codes, int64_t n) {
  const __m256i pack = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m256i b = _mm256_shuffle_epi8(codes, pack);
  const uint64_t bytes = static_cast<uint32_t>(_mm256_extract_epi32(b, 0)) |
                         static_cast<uint64_t>(static_cast<uint32_t>(_mm256_extract_epi32(b, 4))) << 32;
  if (n == 8) {
    std::memcpy(p, &bytes, 8);
    return;
  }
  int64_t i = 0;
  if (n >= 4) {
    const uint32_t low = static_cast<uint32_t>(bytes);
    std::memcpy(p, &low, 4);
    i = 4;
  }
  for (; i < n; ++i) p[i] = static_cast<uint8_t>(bytes >> (8 * i));
}

}  // namespace
}  // namespace fv
