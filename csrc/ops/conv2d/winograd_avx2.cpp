// Winograd tile transforms, AVX2 (8 tiles per vector): see winograd.h / winograd_inl.h.
#include <immintrin.h>

#include "core/simd_avx2_inl.h"
#include "ops/conv2d/winograd_inl.h"
#include "ops/conv2d/winograd4_inl.h"

namespace fv {
namespace {

struct VecAvx2 {
  static constexpr bool kPairs = false;
  static constexpr bool kRowLoads = false;  // gathers
  static constexpr int L = 8;
  using F = __m256;
  using K = __m256i;  // all-ones lanes
  static K kor(K a, K b) { return _mm256_or_si256(a, b); }
  static F zero() { return _mm256_setzero_ps(); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F neg(F a) { return _mm256_xor_ps(a, _mm256_set1_ps(-0.0f)); }
  // max(0, x) returns x for NaN: NaN propagates, as torch.relu
  static F max0(F a) { return _mm256_max_ps(_mm256_setzero_ps(), a); }
  static F set1(float v) { return _mm256_set1_ps(v); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  // *best, *at = v, at_v in the lanes where v > *best or v is NaN: max_pool2d's rule, the
  // one core/simd_avx2_inl.h keeps for every AVX2 pool (codes here are floats 0-3)
  static void take_if_greater_or_nan(F v, F at_v, F* best, F* at) {
    __m256i at_i = _mm256_castps_si256(*at);
    fv::take_if_greater_or_nan(v, _mm256_castps_si256(at_v), best, &at_i);
    *at = _mm256_castsi256_ps(at_i);
  }
  static K kand(K a, K b) { return _mm256_and_si256(a, b); }
  static F gather(const float* base, const int32_t* idx, K m) {
    const __m256i vi = _mm256_load_si256(reinterpret_cast<const __m256i*>(idx));
    return _mm256_mask_i32gather_ps(_mm256_setzero_ps(), base, vi, _mm256_castsi256_ps(m), 4);
  }
  // out[i*16 + k] = v[k][i]: two 8x8 transposes (values 0-7, then 8-15;
  // core/simd_avx2_inl.h).
  static void tiles16(const F* v, float* out) {
    for (int h = 0; h < 2; ++h) {
      F r[8];
      for (int k = 0; k < 8; ++k) r[k] = v[8 * h + k];
      transpose8(r);
      for (int i = 0; i < 8; ++i) _mm256_store_ps(out + i * 16 + 8 * h, r[i]);
    }
  }
  static void store_tile(float* d, int64_t ld, const float* s, int rows, int cols) {
    const __m256 lo = _mm256_load_ps(s), hi = _mm256_load_ps(s + 8);
    const __m128 r[4] = {_mm256_castps256_ps128(lo), _mm256_extractf128_ps(lo, 1),
                         _mm256_castps256_ps128(hi), _mm256_extractf128_ps(hi, 1)};
    const __m128i m = _mm_cmpgt_epi32(_mm_set1_epi32(cols), _mm_setr_epi32(0, 1, 2, 3));
    for (int a = 0; a < rows; ++a) _mm_maskstore_ps(d + a * ld, m, r[a]);
  }
  static K mask(int64_t lo, int64_t hi) {
    const int32_t l = static_cast<int32_t>(lo < 0 ? 0 : (lo > 8 ? 8 : lo));
    const int32_t h = static_cast<int32_t>(hi < 0 ? 0 : (hi > 8 ? 8 : hi));
    const __m256i i = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(l), i),  // i >= l
                               _mm256_cmpgt_epi32(_mm256_set1_epi32(h), i));  // i < h
  }
  static F load(const float* p, K m) { return _mm256_maskload_ps(p, m); }
  // vmaskmovps stores cost ~6x a plain store on AMD Zen 3 (~12 cycles each, measured):
  // whole vectors go through store_all.
  static void store(float* p, K m, F v) { _mm256_maskstore_ps(p, m, v); }
  static void store_all(float* p, F v) { _mm256_storeu_ps(p, v); }
  // shuffle gives [a0 a2 b0 b2 | a4 a6 b4 b6]; the 64-bit permute puts a's pairs first.
  static F even(F a, F b) {
    const __m256 s = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(s), _MM_SHUFFLE(3, 1, 2, 0)));
  }
  static F odd(F a, F b) {
    const __m256 s = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(s), _MM_SHUFFLE(3, 1, 2, 0)));
  }
  static void interleave(F v0, F v1, F* lo, F* hi) {
    const __m256 l = _mm256_unpacklo_ps(v0, v1), h = _mm256_unpackhi_ps(v0, v1);
    *lo = _mm256_permute2f128_ps(l, h, 0x20);
    *hi = _mm256_permute2f128_ps(l, h, 0x31);
  }
};

}  // namespace
}  // namespace fv

FV_WINOGRAD_TABLE(VecAvx2, avx2)
FV_WINOGRAD4_TABLE(VecAvx2, avx2)
