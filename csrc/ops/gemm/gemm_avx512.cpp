// sgemm pieces, AVX-512 (see gemm_kernels.h for layouts and the arithmetic contract).
//
// Register tile 14 x 32: 28 zmm accumulators (two 16-float vectors per row), two zmm of B per
// k, and A broadcast straight from memory into the FMA ({1to16}), so 30 of 32 zmm are live.
// Zen4 issues one 512-bit FMA per cycle (two 256-bit halves), i.e. per k: 28 FMA cycles
// against 2 vector loads and 14 broadcast loads, so loads never limit. Edge tiles use the
// same loop with masked C loads/stores, so each element takes the same arithmetic path.
#include <immintrin.h>

#include <cstdint>

#include "ops/gemm/gemm_kernels.h"

namespace fv {
namespace {

constexpr int MR = 14;
constexpr int NR = 32;
constexpr int KC = 256;   // B micro-panel 32 KiB, A micro-panel 14 KiB per k block
constexpr int MC = 168;   // A block 168 x 256 x 4 = 168 KiB, stays in the 1 MiB L2
constexpr int NC = 3072;  // B panel 256 x 3072 x 4 = 3 MiB, in the shared L3
constexpr int kPrefetchA = 8;  // k steps ahead for the packed A stream (8 x 56 B)

inline __mmask16 mask_upto(int64_t n) {
  if (n >= 16) return static_cast<__mmask16>(0xFFFF);
  if (n <= 0) return 0;
  return static_cast<__mmask16>((1u << n) - 1u);
}

// In-place transpose of a 16 x 16 block held in 16 rows: afterwards r[j] holds column j.
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

void pack_a(bool trans, const float* a, int64_t lda, int64_t mc, int64_t kc, float* dst) {
  const __mmask16 keep = mask_upto(MR);
  for (int64_t i0 = 0; i0 < mc; i0 += MR, dst += kc * MR) {
    const int64_t h = mc - i0 < MR ? mc - i0 : MR;
    if (trans) {  // rows of op(A) are contiguous per k: a masked copy per k
      const __mmask16 m = mask_upto(h);
      for (int64_t k = 0; k < kc; ++k)
        _mm512_mask_storeu_ps(dst + k * MR, keep, _mm512_maskz_loadu_ps(m, a + k * lda + i0));
      continue;
    }
    int64_t k = 0;
    for (; k + 16 <= kc; k += 16) {  // 16 k at a time through a 16 x 16 transpose
      __m512 r[16];
      for (int i = 0; i < 16; ++i)
        r[i] = i < h ? _mm512_loadu_ps(a + (i0 + i) * lda + k) : _mm512_setzero_ps();
      transpose16(r);
      for (int kk = 0; kk < 16; ++kk) _mm512_mask_storeu_ps(dst + (k + kk) * MR, keep, r[kk]);
    }
    for (; k < kc; ++k)
      for (int64_t i = 0; i < MR; ++i) dst[k * MR + i] = i < h ? a[(i0 + i) * lda + k] : 0.0f;
  }
}

void pack_b(bool trans, const float* b, int64_t ldb, int64_t kc, int64_t nc, float* dst) {
  for (int64_t j0 = 0; j0 < nc; j0 += NR, dst += kc * NR) {
    const int64_t w = nc - j0 < NR ? nc - j0 : NR;
    if (!trans) {
      const __mmask16 m0 = mask_upto(w), m1 = mask_upto(w - 16);
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = b + k * ldb + j0;
        _mm512_store_ps(dst + k * NR, _mm512_maskz_loadu_ps(m0, src));
        _mm512_store_ps(dst + k * NR + 16, _mm512_maskz_loadu_ps(m1, src + 16));
      }
      continue;
    }
    int64_t k = 0;
    for (; k + 16 <= kc; k += 16) {
      for (int half = 0; half < 2; ++half) {
        __m512 r[16];
        for (int j = 0; j < 16; ++j) {
          const int64_t jj = half * 16 + j;
          r[j] = jj < w ? _mm512_loadu_ps(b + (j0 + jj) * ldb + k) : _mm512_setzero_ps();
        }
        transpose16(r);
        for (int kk = 0; kk < 16; ++kk) _mm512_store_ps(dst + (k + kk) * NR + half * 16, r[kk]);
      }
    }
    for (; k < kc; ++k)
      for (int64_t j = 0; j < NR; ++j) dst[k * NR + j] = j < w ? b[(j0 + j) * ldb + k] : 0.0f;
  }
}

template <bool kPackedA, bool kPackedB>
void tile_kernel(int64_t kc, const GemmOperands& op, float* c, int64_t ldc, const GemmTile& t) {
  const __mmask16 m0 = mask_upto(t.nr), m1 = mask_upto(t.nr - 16);
  __m512 acc[MR][2];
#pragma GCC unroll 14
  for (int i = 0; i < MR; ++i) {
    if (t.load_c && i < t.mr) {
      acc[i][0] = _mm512_maskz_loadu_ps(m0, c + i * ldc);
      acc[i][1] = _mm512_maskz_loadu_ps(m1, c + i * ldc + 16);
    } else {
      acc[i][0] = _mm512_setzero_ps();
      acc[i][1] = _mm512_setzero_ps();
    }
  }
  const float* b = op.b;
  if (kPackedA) {
    const float* a = op.a;
    for (int64_t k = 0; k < kc; ++k) {
      _mm_prefetch(reinterpret_cast<const char*>(a + kPrefetchA * MR), _MM_HINT_T0);
      const __m512 b0 = kPackedB ? _mm512_load_ps(b) : _mm512_maskz_loadu_ps(m0, b);
      const __m512 b1 = kPackedB ? _mm512_load_ps(b + 16) : _mm512_maskz_loadu_ps(m1, b + 16);
#pragma GCC unroll 14
      for (int i = 0; i < MR; ++i) {
        const __m512 av = _mm512_set1_ps(a[i]);
        acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
        acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
      }
      a += MR;
      b += kPackedB ? NR : op.b_ks;
    }
  } else {
    // Direct A: rows past the tile re-read row 0 (valid memory); their sums are dropped.
    const float* ar[MR];
    for (int i = 0; i < MR; ++i) ar[i] = op.a + (i < t.mr ? i : 0) * op.a_rs;
    const int64_t a_ks = op.a_ks;
    for (int64_t k = 0, ka = 0; k < kc; ++k, ka += a_ks) {
      const __m512 b0 = kPackedB ? _mm512_load_ps(b) : _mm512_maskz_loadu_ps(m0, b);
      const __m512 b1 = kPackedB ? _mm512_load_ps(b + 16) : _mm512_maskz_loadu_ps(m1, b + 16);
#pragma GCC unroll 14
      for (int i = 0; i < MR; ++i) {
        const __m512 av = _mm512_set1_ps(ar[i][ka]);
        acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
        acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
      }
      b += kPackedB ? NR : op.b_ks;
    }
  }
  if (t.last) {
    const bool relu = t.relu;
    const __m512 zero = _mm512_setzero_ps();
    __m512 bc0 = zero, bc1 = zero;
    if (t.bias_col != nullptr) {
      bc0 = _mm512_maskz_loadu_ps(m0, t.bias_col);
      bc1 = _mm512_maskz_loadu_ps(m1, t.bias_col + 16);
    }
#pragma GCC unroll 14
    for (int i = 0; i < MR; ++i) {
      if (i >= t.mr) break;
      if (t.bias_row != nullptr) {
        const __m512 br = _mm512_set1_ps(t.bias_row[i]);
        acc[i][0] = _mm512_add_ps(acc[i][0], br);
        acc[i][1] = _mm512_add_ps(acc[i][1], br);
      }
      if (t.bias_col != nullptr) {
        acc[i][0] = _mm512_add_ps(acc[i][0], bc0);
        acc[i][1] = _mm512_add_ps(acc[i][1], bc1);
      }
      if (relu) {  // max(0, x) returns x for NaN: NaN propagates, as torch.relu
        acc[i][0] = _mm512_max_ps(zero, acc[i][0]);
        acc[i][1] = _mm512_max_ps(zero, acc[i][1]);
      }
    }
  }
#pragma GCC unroll 14
  for (int i = 0; i < MR; ++i) {
    if (i >= t.mr) break;
    _mm512_mask_storeu_ps(c + i * ldc, m0, acc[i][0]);
    _mm512_mask_storeu_ps(c + i * ldc + 16, m1, acc[i][1]);
  }
}

void kernel(int64_t kc, const GemmOperands& op, float* c, int64_t ldc, const GemmTile& t) {
  if (op.a_packed) {
    if (op.b_packed) tile_kernel<true, true>(kc, op, c, ldc, t);
    else tile_kernel<true, false>(kc, op, c, ldc, t);
  } else {
    if (op.b_packed) tile_kernel<false, true>(kc, op, c, ldc, t);
    else tile_kernel<false, false>(kc, op, c, ldc, t);
  }
}

}  // namespace

extern const GemmKernels gemm_kernels_avx512 = {MR, NR, KC, MC, NC, &pack_a, &pack_b, &kernel};

}  // namespace fv
