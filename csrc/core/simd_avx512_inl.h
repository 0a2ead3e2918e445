// AVX-512 helpers shared by ISA files (include only from files built with AVX-512 flags;
// internal linkage, like everything else in them).
#pragma once

#include <immintrin.h>

namespace fv {
namespace {

// In-place transpose of a 16 x 16 block held in 16 rows: afterwards r[j] holds column j
// (lane i of r[j] = old lane j of r[i]).
inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // Per 128-bit lane l, r[4q + c] now holds rows 4q..4q+3 of column 4l + c.
  for (int q = 0; q < 4; ++q) {
    r[4 * q + 0] = _mm512_shuffle_ps(t[4 * q], t[4 * q + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * q + 1] = _mm512_shuffle_ps(t[4 * q], t[4 * q + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[4 * q + 2] = _mm512_shuffle_ps(t[4 * q + 1], t[4 * q + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[4 * q + 3] = _mm512_shuffle_ps(t[4 * q + 1], t[4 * q + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int c = 0; c < 4; ++c) {
    const __m512 u0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x44);
    const __m512 u1 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xEE);
    const __m512 v0 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x44);
    const __m512 v1 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xEE);
    t[c] = _mm512_shuffle_f32x4(u0, v0, 0x88);
    t[4 + c] = _mm512_shuffle_f32x4(u0, v0, 0xDD);
    t[8 + c] = _mm512_shuffle_f32x4(u1, v1, 0x88);
    t[12 + c] = _mm512_shuffle_f32x4(u1, v1, 0xDD);
  }
  for (int i = 0; i < 16; ++i) r[i] = t[i];
}

// The max of 2x2 windows, lane by lane, scanned in the scalar code's order: e0 (row 0, even
// column), then o0, e1, o1, each taken where it is greater than the best so far or NaN.
// *best gets the max, *at 0 where e0 won, else at1, at2 or at3 (pool offsets or codes 1..3).
// max_pool2d's kernels and the conv kernels that pool in registers (the direct kernel, and
// Winograd's output transform through its Vec) share it, so the rule (and the bits) cannot
// drift apart.
inline void take_if_greater_or_nan(__m512 v, __m512i at_v, __m512* best, __m512i* at) {
  const __mmask16 t =
      _mm512_cmp_ps_mask(v, *best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  *best = _mm512_mask_mov_ps(*best, t, v);
  *at = _mm512_mask_mov_epi32(*at, t, at_v);
}
inline void max_of_2x2(__m512 e0, __m512 o0, __m512 e1, __m512 o1, __m512i at1, __m512i at2,
                       __m512i at3, __m512* best, __m512i* at) {
  *best = e0;
  *at = _mm512_setzero_si512();
  take_if_greater_or_nan(o0, at1, best, at);
  take_if_greater_or_nan(e1, at2, best, at);
  take_if_greater_or_nan(o1, at3, best, at);
}

}  // namespace
}  // namespace fv
