// Winograd tile transforms, AVX2 (8 tiles per vector): see winograd.h / winograd_inl.h.
#include <immintrin.h>

#include "core/simd_avx2_inl.h"
#include "ops/conv2d/winograd_inl.h"
#include "ops/conv2d/winograd4_inl.h"

namespace fv {
namespace {

// kColumnMasks.m[bits]: lane c all-ones where bit c of bits is set (bits < 64: the columns of
// a window row, GatherPlan's lane_rows), for masked loads of window rows.
struct ColumnMasks {
  alignas(32) int32_t m[64][8];
};
constexpr ColumnMasks make_column_masks() {
  ColumnMasks t{};
  for (int bits = 0; bits < 64; ++bits) {
    for (int c = 0; c < 8; ++c) t.m[bits][c] = (bits >> c & 1) != 0 ? -1 : 0;
  }
  return t;
}
constexpr ColumnMasks kColumnMasks = make_column_masks();

inline __m256i column_mask(unsigned bits) {
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(kColumnMasks.m[bits]));
}
inline __m128i column_mask4(unsigned bits) {  // bits < 16
  return _mm_load_si128(reinterpret_cast<const __m128i*>(kColumnMasks.m[bits]));
}

struct VecAvx2 {
  static constexpr bool kPairs = false;
  // F(4x4)'s windows are loaded row by row and transposed, not gathered: vgatherdps costs
  // ~11 cycles on AMD Zen 3 (measured), 36 of them per chunk and channel of the input transform.
  static constexpr bool kRowLoads = true;
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
  // w[r*R + c] lane i = src[idx[i] + r*ld + c] where bit c of lane_rows[r*8 + i], else 0.
  // R = 6: each lane's row r is one masked load of 8 floats, and an 8 x 8 transpose puts
  // column c in vector c (6 and 7 unused). R = 4: rows 2h and 2h + 1 share a vector (4 + 4
  // floats), so a transpose gives row 2h's columns in vectors 0-3 and row 2h + 1's in 4-7.
  // Masked loads touch nothing outside the tensor.
  template <int R>
  static void windows(const float* src, const int32_t* idx, const uint8_t* lane_rows, int64_t ld,
                      F* w) {
    static_assert(R == 4 || R == 6, "F(4x4)'s 6x6 input and 4x4 dy windows");
    if constexpr (R == 6) {
      for (int r = 0; r < 6; ++r) {
        F t[8];
        for (int i = 0; i < 8; ++i) {
          t[i] = _mm256_maskload_ps(src + idx[i] + r * ld, column_mask(lane_rows[r * 8 + i]));
        }
        transpose8(t);
        for (int c = 0; c < 6; ++c) w[r * 6 + c] = t[c];
      }
    } else {
      for (int h = 0; h < 2; ++h) {
        const uint8_t* m0 = lane_rows + (2 * h) * 8;
        const uint8_t* m1 = m0 + 8;
        F t[8];
        for (int i = 0; i < 8; ++i) {
          const float* b = src + idx[i] + 2 * h * ld;
          t[i] = _mm256_set_m128(_mm_maskload_ps(b + ld, column_mask4(m1[i])),
                                 _mm_maskload_ps(b, column_mask4(m0[i])));
        }
        transpose8(t);
        for (int c = 0; c < 4; ++c) {
          w[(2 * h) * 4 + c] = t[c];
          w[(2 * h + 1) * 4 + c] = t[4 + c];
        }
      }
    }
  }
  // The inverse of windows<6>: each lane's rows come out of 8 x 8 transposes of z and are
  // added into dst lane by lane, in lane order (overlapping windows add up in tile order, as
  // on every ISA). Where a row's 8 floats lie in the lane's plane (p.whole_rows: this
  // thread's image, so nothing else writes them now), the row is loaded whole, the window's
  // columns replaced by their sums (a blend: the others are stored back unchanged) and
  // stored whole; elsewhere masked loads and stores (~12 cycles a vmaskmovps store on Zen 3).
  // Rows shorter than a vector (ld < 8: the reference conv3's 5x5 planes) overlap their
  // neighbours' 8 floats: a row loaded right after the row above was stored cannot be
  // forwarded from that store and waits for it (perf put ~40% of the transform's samples on
  // those loads). There a lane's rows are all loaded before any is stored: the stores write
  // the other rows' floats back unchanged, in row order, so each row's own sums land last.
  // Measured (2 threads, AMD Zen 3, in-process A/B of the data gradient): conv3 0.92-0.94x;
  // on conv2 (13x13) loading first measured 1.06x slower, so wider rows keep the row order.
  template <int R, class Plan>
  static void add_windows(const Plan& p, float* dst, int64_t ld, const F* z) {
    static_assert(R == 6, "F(4x4)'s 6x6 windows");
    F rows[R][8];  // rows[r][i]: lane i's row r (columns 6 and 7 unused)
    for (int r = 0; r < R; ++r) {
      for (int c = 0; c < 8; ++c) rows[r][c] = z[r * 8 + c];
      transpose8(rows[r]);
    }
    const bool load_first = ld < 8;
    for (int i = 0; i < p.cnt; ++i) {
      F old[R];
      for (int r = 0; r < R && load_first; ++r) old[r] = load_row(p, i, r, dst, ld);
      for (int r = 0; r < R; ++r) {
        const unsigned bits = p.lane_rows[r][i];
        if (bits == 0) continue;
        if (!load_first) old[r] = load_row(p, i, r, dst, ld);
        float* d = dst + p.idx[i] + r * ld;
        const __m256i m = column_mask(bits);
        const F sum = _mm256_add_ps(old[r], rows[r][i]);
        if (p.whole_rows[i] >> r & 1u) {
          _mm256_storeu_ps(d, _mm256_blendv_ps(old[r], sum, _mm256_castsi256_ps(m)));
        } else {
          _mm256_maskstore_ps(d, m, sum);
        }
      }
    }
  }
  // Lane i's row r of dst as add_windows reads it (whole, or masked to the window's columns;
  // zero where the row lies outside the plane).
  template <class Plan>
  static F load_row(const Plan& p, int i, int r, const float* dst, int64_t ld) {
    const unsigned bits = p.lane_rows[r][i];
    if (bits == 0) return _mm256_setzero_ps();
    const float* d = dst + p.idx[i] + r * ld;
    return p.whole_rows[i] >> r & 1u ? _mm256_loadu_ps(d)
                                      : _mm256_maskload_ps(d, column_mask(bits));
  }
  // out[k] lane i = v[i] lane k (core/simd_avx2_inl.h)
  static void transpose(const F* v, F* out) {
    for (int i = 0; i < 8; ++i) out[i] = v[i];
    transpose8(out);
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
