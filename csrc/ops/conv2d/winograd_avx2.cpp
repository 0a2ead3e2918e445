// Winograd tile transforms, AVX2 (8 tiles per vector): see winograd.h / winograd_inl.h.
#include <immintrin.h>

#include "ops/conv2d/winograd_inl.h"

namespace fv {
namespace {

struct VecAvx2 {
  static constexpr bool kPairs = false;
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
  static K mask(int64_t lo, int64_t hi) {
    const int32_t l = static_cast<int32_t>(lo < 0 ? 0 : (lo > 8 ? 8 : lo));
    const int32_t h = static_cast<int32_t>(hi < 0 ? 0 : (hi > 8 ? 8 : hi));
    const __m256i i = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(l), i),  // i >= l
                               _mm256_cmpgt_epi32(_mm256_set1_epi32(h), i));  // i < h
  }
  static F load(const float* p, K m) { return _mm256_maskload_ps(p, m); }
  static void store(float* p, K m, F v) { _mm256_maskstore_ps(p, m, v); }
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
