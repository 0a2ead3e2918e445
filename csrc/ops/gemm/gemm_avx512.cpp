// sgemm pieces, AVX-512 (see gemm_kernels.h for layouts and the arithmetic contract).
//
// Register tile 14 x 32: 28 zmm accumulators (two 16-float vectors per row), two zmm of B per
// k, and A broadcast straight from memory into the FMA ({1to16}), so 30 of 32 zmm are live.
// Zen4 issues one 512-bit FMA per cycle (two 256-bit halves), i.e. per k: 28 FMA cycles
// against 2 vector loads and 14 broadcast loads, so loads never limit. Edge tiles use the
// same loop with masked C loads/stores, so each element takes the same arithmetic path.
#include <immintrin.h>

#include <cstdint>

#include "core/simd_avx512_inl.h"
#include "ops/gemm/gemm_kernels.h"

namespace fv {
namespace {

constexpr int MR = 14;
constexpr int NR = 32;
// Blocking, measured on Zen4 (1 thread, 1024^3..4096^3): KC = 512 beat 256 by 3-25% (half
// the passes over C, whose tile loads are latency-bound), 768 was no better.
constexpr int KC = 512;   // A micro-panel 28 KiB (L1), B micro-panel 64 KiB (L2)
constexpr int MC = 168;   // A block at most 168 x 512 x 4 = 336 KiB, in the 1 MiB L2
constexpr int NC = 3072;  // B panel at most 512 x 3072 x 4 = 6 MiB, in the shared 32 MiB L3
constexpr int kPrefetchA = 8;  // k steps ahead for the packed A stream (8 x 56 B)

inline __mmask16 mask_upto(int64_t n) {
  if (n >= 16) return static_cast<__mmask16>(0xFFFF);
  if (n <= 0) return 0;
  return static_cast<__mmask16>((1u << n) - 1u);
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
    // 16 k at a time through a 16 x 16 transpose; the last < 16 through the same transpose
    // with masked loads (a scalar copy of those measured ~5% of the reference conv2's
    // backward, whose weight-gradient GEMMs have depths of 27 and 18 tiles).
    for (int64_t k = 0; k < kc; k += 16) {
      const int64_t kn = kc - k < 16 ? kc - k : 16;
      const __mmask16 km = mask_upto(kn);
      __m512 r[16];
      for (int i = 0; i < 16; ++i)
        r[i] = i < h ? _mm512_maskz_loadu_ps(km, a + (i0 + i) * lda + k) : _mm512_setzero_ps();
      transpose16(r);
      for (int kk = 0; kk < kn; ++kk) _mm512_mask_storeu_ps(dst + (k + kk) * MR, keep, r[kk]);
    }
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
    for (int64_t k = 0; k < kc; k += 16) {  // as pack_a: the last < 16 k masked
      const int64_t kn = kc - k < 16 ? kc - k : 16;
      const __mmask16 km = mask_upto(kn);
      for (int half = 0; half < 2; ++half) {
        __m512 r[16];
        for (int j = 0; j < 16; ++j) {
          const int64_t jj = half * 16 + j;
          r[j] = jj < w ? _mm512_maskz_loadu_ps(km, b + (j0 + jj) * ldb + k)
                        : _mm512_setzero_ps();
        }
        transpose16(r);
        for (int kk = 0; kk < kn; ++kk) _mm512_store_ps(dst + (k + kk) * NR + half * 16, r[kk]);
      }
    }
  }
}

// R x 16V accumulators (t.mr <= R <= MR, t.nr <= 16V): short or narrow edge tiles run fewer
// FMAs; every row keeps the same chain, so the bits do not depend on R or V.
template <int R, int V, bool kPackedA, bool kPackedB>
void tile_kernel(int64_t kc, const GemmOperands& op, float* c, int64_t ldc, const GemmTile& t) {
  const __mmask16 m[2] = {mask_upto(t.nr), mask_upto(t.nr - 16)};
  __m512 acc[R][V];
#pragma GCC unroll 14
  for (int i = 0; i < R; ++i) {
    for (int v = 0; v < V; ++v) {
      acc[i][v] = t.load_c && i < t.mr ? _mm512_maskz_loadu_ps(m[v], c + i * ldc + 16 * v)
                                       : _mm512_setzero_ps();
    }
  }
  const float* b = op.b;
  const int64_t b_ks = kPackedB ? NR : op.b_ks;
  __m512 bv[V];
  if (kPackedA) {
    const float* a = op.a;
    // Warm the C rows of the tile below (normally the next call) while this one computes;
    // a prefetch past the matrix is harmless (it never faults).
    const float* cn = c + MR * ldc;
    for (int i = 0; i < MR; ++i) {
      _mm_prefetch(reinterpret_cast<const char*>(cn + i * ldc), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(cn + i * ldc + 31), _MM_HINT_T0);
    }
    for (int64_t k = 0; k < kc; ++k) {
      _mm_prefetch(reinterpret_cast<const char*>(a + kPrefetchA * MR), _MM_HINT_T0);
      for (int v = 0; v < V; ++v)
        bv[v] = kPackedB ? _mm512_load_ps(b + 16 * v) : _mm512_maskz_loadu_ps(m[v], b + 16 * v);
#pragma GCC unroll 14
      for (int i = 0; i < R; ++i) {
        const __m512 av = _mm512_set1_ps(a[i]);
        for (int v = 0; v < V; ++v) acc[i][v] = _mm512_fmadd_ps(av, bv[v], acc[i][v]);
      }
      a += MR;
      b += b_ks;
    }
  } else {
    // Direct A: rows past the tile re-read row 0 (valid memory); their sums are dropped.
    const float* ar[R];
    for (int i = 0; i < R; ++i) ar[i] = op.a + (i < t.mr ? i : 0) * op.a_rs;
    const int64_t a_ks = op.a_ks;
    for (int64_t k = 0, ka = 0; k < kc; ++k, ka += a_ks) {
      for (int v = 0; v < V; ++v)
        bv[v] = kPackedB ? _mm512_load_ps(b + 16 * v) : _mm512_maskz_loadu_ps(m[v], b + 16 * v);
#pragma GCC unroll 14
      for (int i = 0; i < R; ++i) {
        const __m512 av = _mm512_set1_ps(ar[i][ka]);
        for (int v = 0; v < V; ++v) acc[i][v] = _mm512_fmadd_ps(av, bv[v], acc[i][v]);
      }
      b += b_ks;
    }
  }
  if (t.last) {
    const __m512 zero = _mm512_setzero_ps();
    __m512 bc[V];
    for (int v = 0; v < V; ++v)
      bc[v] = t.bias_col != nullptr ? _mm512_maskz_loadu_ps(m[v], t.bias_col + 16 * v) : zero;
#pragma GCC unroll 14
    for (int i = 0; i < R; ++i) {
      if (i >= t.mr) break;
      for (int v = 0; v < V; ++v) {
        if (t.bias_row != nullptr) acc[i][v] = _mm512_add_ps(acc[i][v], _mm512_set1_ps(t.bias_row[i]));
        if (t.bias_col != nullptr) acc[i][v] = _mm512_add_ps(acc[i][v], bc[v]);
        // max(0, x) returns x for NaN: NaN propagates, as torch.relu
        if (t.relu) acc[i][v] = _mm512_max_ps(zero, acc[i][v]);
      }
    }
  }
#pragma GCC unroll 14
  for (int i = 0; i < R; ++i) {
    if (i >= t.mr) break;
    for (int v = 0; v < V; ++v) _mm512_mask_storeu_ps(c + i * ldc + 16 * v, m[v], acc[i][v]);
  }
}

template <int R, int V>
void kernel_rv(int64_t kc, const GemmOperands& op, float* c, int64_t ldc, const GemmTile& t) {
  if (op.a_packed) tile_kernel<R, V, true, true>(kc, op, c, ldc, t);  // driver: both packed,
  else if (op.b_packed) tile_kernel<R, V, false, true>(kc, op, c, ldc, t);  // or B only, or none
  else tile_kernel<R, V, false, false>(kc, op, c, ldc, t);
}

template <int R>
void kernel_r(int64_t kc, const GemmOperands& op, float* c, int64_t ldc, const GemmTile& t) {
  if (t.nr <= 16) kernel_rv<R, 1>(kc, op, c, ldc, t);
  else kernel_rv<R, 2>(kc, op, c, ldc, t);
}

void kernel(int64_t kc, const GemmOperands& op, float* c, int64_t ldc, const GemmTile& t) {
  if (t.mr <= 1) kernel_r<1>(kc, op, c, ldc, t);
  else if (t.mr <= 2) kernel_r<2>(kc, op, c, ldc, t);
  else if (t.mr <= 4) kernel_r<4>(kc, op, c, ldc, t);
  else if (t.mr <= 8) kernel_r<8>(kc, op, c, ldc, t);
  else kernel_r<MR>(kc, op, c, ldc, t);
}

}  // namespace

extern const GemmKernels gemm_kernels_avx512 = {MR, NR, KC, MC, NC, &pack_a, &pack_b, &kernel};

}  // namespace fv
