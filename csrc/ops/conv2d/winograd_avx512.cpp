// Winograd tile transforms, AVX-512 (16 tiles per vector): see winograd.h / winograd_inl.h.
#include <immintrin.h>

#include "ops/conv2d/winograd_inl.h"

namespace fv {
namespace {

struct VecAvx512 {
  static constexpr bool kPairs = true;
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
  static K mask(int64_t lo, int64_t hi) {
    const uint32_t l = static_cast<uint32_t>(lo < 0 ? 0 : (lo > 16 ? 16 : lo));
    const uint32_t h = static_cast<uint32_t>(hi < 0 ? 0 : (hi > 16 ? 16 : hi));
    return h <= l ? 0 : static_cast<K>(((1u << h) - 1u) & ~((1u << l) - 1u));
  }
  static F load(const float* p, K m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(float* p, K m, F v) { _mm512_mask_storeu_ps(p, m, v); }
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
