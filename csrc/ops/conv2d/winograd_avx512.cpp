// Winograd tile transforms, AVX-512 (16 tiles per vector): see winograd.h / winograd_inl.h.
// GCC 12 warns that the "undefined" pass-through operand inside its own AVX-512 shuffle and
// max intrinsics may be used uninitialized (GCC bug 105593, fixed in 13): not our code.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "core/simd_avx512_inl.h"
#include "ops/conv2d/winograd_inl.h"
#include "ops/conv2d/winograd4_inl.h"

namespace fv {
namespace {

struct VecAvx512 {
  static constexpr bool kPairs = true;
  // Window rows are loaded per lane and transposed: on Zen 4 that measured faster than one
  // 16-lane gather per window element (F(4x4): 36 per chunk and channel).
  static constexpr bool kRowLoads = true;
  static constexpr int L = 16;
  using F = __m512;
  using K = __mmask16;
  static K kor(K a, K b) { return static_cast<K>(a | b); }
  static F compress(K m, F v) { return _mm512_maskz_compress_ps(m, v); }
  static F expand(K m, F v) { return _mm512_maskz_expand_ps(m, v); }
  static F zero() { return _mm512_setzero_ps(); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F neg(F a) {
    return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a),
                                                _mm512_set1_epi32(static_cast<int>(0x80000000u))));
  }
  // max(0, x) returns x for NaN: NaN propagates, as torch.relu
  static F max0(F a) { return _mm512_max_ps(_mm512_setzero_ps(), a); }
  static F set1(float v) { return _mm512_set1_ps(v); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  // *best, *at = v, at_v in the lanes where v > *best or v is NaN: max_pool2d's rule, the
  // one core/simd_avx512_inl.h keeps for every AVX-512 pool (codes here are floats 0-3)
  static void take_if_greater_or_nan(F v, F at_v, F* best, F* at) {
    __m512i at_i = _mm512_castps_si512(*at);
    fv::take_if_greater_or_nan(v, _mm512_castps_si512(at_v), best, &at_i);
    *at = _mm512_castsi512_ps(at_i);
  }
  // out[k] lane i = v[i] lane k (core/simd_avx512_inl.h)
  static void transpose16(const F* v, F* out) {
    for (int i = 0; i < 16; ++i) out[i] = v[i];
    fv::transpose16(out);
  }
  static void transpose(const F* v, F* out) { transpose16(v, out); }
  // out[i*16 + k] = v[k][i]
  static void tiles16(const F* v, float* out) {
    F t[16];
    transpose16(v, t);
    for (int i = 0; i < 16; ++i) _mm512_store_ps(out + i * 16, t[i]);
  }
  // Rows 2h and 2h + 1 of each lane's window go into one vector (8 floats each, masked
  // loads: nothing outside the tensor is touched), 16 lanes are transposed, and element
  // (r, c) comes out as vector 8 (r - 2h) + c.
  template <int R>
  static void windows(const float* src, const int32_t* idx, const uint8_t* lane_rows, int64_t ld,
                      F* w) {
    static_assert(R % 2 == 0 && R <= 8, "two window rows of <= 8 per vector");
    for (int h = 0; h < R / 2; ++h) {
      const uint8_t* m0 = lane_rows + (2 * h) * 16;
      const uint8_t* m1 = m0 + 16;
      F rows[16], t[16];
      for (int i = 0; i < 16; ++i) {
        const float* b = src + idx[i] + 2 * h * ld;
        const __m256 r0 = _mm256_maskz_loadu_ps(m0[i], b);
        const __m256 r1 = _mm256_maskz_loadu_ps(m1[i], b + ld);
        rows[i] = _mm512_insertf32x8(_mm512_castps256_ps512(r0), r1, 1);
      }
      transpose16(rows, t);
      for (int c = 0; c < R; ++c) {
        w[(2 * h) * R + c] = t[c];
        w[(2 * h + 1) * R + c] = t[8 + c];
      }
    }
  }
  // The inverse of windows(): rows 2h, 2h + 1 of each lane come out of a transpose of
  // z[16h .. 16h + 16) and are added into dst (masked: nothing outside the tensor is
  // touched), lane by lane. A lane loads all its rows before it stores any: a row's masked
  // 32-byte store spans the next row's start wherever ld < 8 (the reference conv3's 5x5
  // planes) and a load it overlaps waits until the store retires (no forwarding from masked
  // stores): perf had those waits at most of the transform's time there. Rows hold distinct
  // elements, so the order of the adds is the same.
  // Neighbouring tiles of a tile row (windows 4 apart, lanes in a row: up to 3, whose 14
  // columns fit a vector) overlap by 2 columns, so the next lane's loads would wait on this
  // lane's stores the same way (the reference conv2: ~25% of this transform). Such a run of
  // lanes is done together: each row is loaded once as 16 floats, each lane's row added in
  // lane order under its mask (the overlapped columns get the same two adds in the same
  // order), and stored once.
  template <int R, class Plan>
  static void add_windows(const Plan& p, float* dst, int64_t ld, const F* z) {
    static_assert(R % 2 == 0 && R <= 8, "two window rows of <= 8 per vector");
    const int32_t* idx = p.idx;
    const uint8_t* lane_rows = &p.lane_rows[0][0];
    F t[R / 2][16];
    for (int h = 0; h < R / 2; ++h) transpose16(z + 16 * h, t[h]);
    const auto lane_row = [&](int i, int r) {  // lane i's row r (8 floats)
      return r % 2 == 0 ? _mm512_castps512_ps256(t[r / 2][i]) : _mm512_extractf32x8_ps(t[r / 2][i], 1);
    };
    for (int i = 0; i < 16;) {
      int k = 1;  // lanes i .. i + k - 1: adjacent tiles of one tile row
      while (k < 3 && i + k < 16 && idx[i + k] == idx[i + k - 1] + 4) ++k;
      if (k == 1) {
        __m256 sum[R];
        __mmask8 m[R];
        for (int r = 0; r < R; ++r) {
          m[r] = lane_rows[r * 16 + i];
          sum[r] = _mm256_add_ps(_mm256_maskz_loadu_ps(m[r], dst + idx[i] + r * ld), lane_row(i, r));
        }
        for (int r = 0; r < R; ++r) _mm256_mask_storeu_ps(dst + idx[i] + r * ld, m[r], sum[r]);
        ++i;
        continue;
      }
      __m512 sum[R];
      __mmask16 all[R];
      for (int r = 0; r < R; ++r) {
        unsigned u = 0;
        for (int j = 0; j < k; ++j) u |= static_cast<unsigned>(lane_rows[r * 16 + i + j]) << (4 * j);
        all[r] = static_cast<__mmask16>(u);
        sum[r] = _mm512_maskz_loadu_ps(all[r], dst + idx[i] + r * ld);
      }
      for (int j = 0; j < k; ++j) {
        const __m512i shift = _mm512_sub_epi32(
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            _mm512_set1_epi32(4 * j));  // lane 4j + c reads c
        for (int r = 0; r < R; ++r) {
          const __mmask16 mj = static_cast<__mmask16>(lane_rows[r * 16 + i + j] << (4 * j));
          const __m512 add = _mm512_permutexvar_ps(shift, _mm512_castps256_ps512(lane_row(i + j, r)));
          sum[r] = _mm512_mask_add_ps(sum[r], mj, sum[r], add);
        }
      }
      for (int r = 0; r < R; ++r) _mm512_mask_storeu_ps(dst + idx[i] + r * ld, all[r], sum[r]);
      i += k;
    }
  }
  static void store_tile(float* d, int64_t ld, const float* s, int rows, int cols) {
    const __m512 t = _mm512_load_ps(s);
    const __m128 r[4] = {_mm512_castps512_ps128(t), _mm512_extractf32x4_ps(t, 1),
                         _mm512_extractf32x4_ps(t, 2), _mm512_extractf32x4_ps(t, 3)};
    const __mmask8 m = static_cast<__mmask8>((1u << cols) - 1u);
    for (int a = 0; a < rows; ++a) _mm_mask_storeu_ps(d + a * ld, m, r[a]);
  }
  static K mask(int64_t lo, int64_t hi) {
    const uint32_t l = static_cast<uint32_t>(lo < 0 ? 0 : (lo > 16 ? 16 : lo));
    const uint32_t h = static_cast<uint32_t>(hi < 0 ? 0 : (hi > 16 ? 16 : hi));
    return h <= l ? 0 : static_cast<K>(((1u << h) - 1u) & ~((1u << l) - 1u));
  }
  static F load(const float* p, K m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(float* p, K m, F v) { _mm512_mask_storeu_ps(p, m, v); }
  static void store_all(float* p, F v) { _mm512_storeu_ps(p, v); }
  static F even(F a, F b) {
    return _mm512_permutex2var_ps(
        a, _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), b);
  }
  static F odd(F a, F b) {
    return _mm512_permutex2var_ps(
        a, _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), b);
  }
  static void interleave(F v0, F v1, F* lo, F* hi) {
    *lo = _mm512_permutex2var_ps(
        v0, _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), v1);
    *hi = _mm512_permutex2var_ps(
        v0, _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), v1);
  }
};

}  // namespace
}  // namespace fv

FV_WINOGRAD_TABLE(VecAvx512, avx512)
FV_WINOGRAD4_TABLE(VecAvx512, avx512)
