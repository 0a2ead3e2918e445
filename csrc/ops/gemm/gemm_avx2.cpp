// sgemm pieces, AVX2 + FMA (see gemm_kernels.h for layouts and the arithmetic contract).
//
// Register tile 6 x 16: 12 ymm accumulators, two ymm of B per k and one broadcast of A, so 15
// of the 16 ymm registers are live. Edge tiles run the same loop and mask only the C
// loads/stores, so each element takes the same arithmetic path wherever it falls.
#include <immintrin.h>

#include <cstdint>

#include "core/simd_avx2_inl.h"
#include "ops/gemm/gemm_kernels.h"

namespace fv {
namespace {

constexpr int MR = 6;
constexpr int NR = 16;
constexpr int KC = 512;   // as AVX-512 (measured: 512 beat 256 by 2-3% at 1024^3..2048^3)
constexpr int MC = 192;   // A block at most 384 KiB in L2
constexpr int NC = 3072;  // B panel at most 6 MiB in L3
constexpr int kPrefetchA = 16;

inline __m256i mask_upto(int64_t n) {
  const int v = n < 0 ? 0 : (n > 8 ? 8 : static_cast<int>(n));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(v), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Each k row of a packed A micro-panel is 6 floats; it is written as 8 (an unmasked store,
// cheaper than vmaskmov on AMD) in ascending k, so the 2 extra floats land where the next
// write goes. The very last row spills 2 floats past the block: the driver leaves slack.
void pack_a(bool trans, const float* a, int64_t lda, int64_t mc, int64_t kc, float* dst) {
  for (int64_t i0 = 0; i0 < mc; i0 += MR, dst += kc * MR) {
    const int64_t h = mc - i0 < MR ? mc - i0 : MR;
    if (trans) {
      const __m256i m = mask_upto(h);
      for (int64_t k = 0; k < kc; ++k)
        _mm256_storeu_ps(dst + k * MR, _mm256_maskload_ps(a + k * lda + i0, m));
      continue;
    }
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i)
        r[i] = i < h ? _mm256_loadu_ps(a + (i0 + i) * lda + k) : _mm256_setzero_ps();
      transpose8(r);
      for (int kk = 0; kk < 8; ++kk) _mm256_storeu_ps(dst + (k + kk) * MR, r[kk]);
    }
    for (; k < kc; ++k)
      for (int64_t i = 0; i < MR; ++i) dst[k * MR + i] = i < h ? a[(i0 + i) * lda + k] : 0.0f;
  }
}

void pack_b(bool trans, const float* b, int64_t ldb, int64_t kc, int64_t nc, float* dst) {
  for (int64_t j0 = 0; j0 < nc; j0 += NR, dst += kc * NR) {
    const int64_t w = nc - j0 < NR ? nc - j0 : NR;
    if (!trans) {
      const __m256i m0 = mask_upto(w), m1 = mask_upto(w - 8);
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = b + k * ldb + j0;
        if (w == NR) {
          _mm256_store_ps(dst + k * NR, _mm256_loadu_ps(src));
          _mm256_store_ps(dst + k * NR + 8, _mm256_loadu_ps(src + 8));
        } else {
          _mm256_store_ps(dst + k * NR, _mm256_maskload_ps(src, m0));
          _mm256_store_ps(dst + k * NR + 8, _mm256_maskload_ps(src + 8, m1));
        }
      }
      continue;
    }
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8) {
      for (int half = 0; half < 2; ++half) {
        __m256 r[8];
        for (int j = 0; j < 8; ++j) {
          const int64_t jj = half * 8 + j;
          r[j] = jj < w ? _mm256_loadu_ps(b + (j0 + jj) * ldb + k) : _mm256_setzero_ps();
        }
        transpose8(r);
        for (int kk = 0; kk < 8; ++kk) _mm256_store_ps(dst + (k + kk) * NR + half * 8, r[kk]);
      }
    }
    for (; k < kc; ++k)
      for (int64_t j = 0; j < NR; ++j) dst[k * NR + j] = j < w ? b[(j0 + j) * ldb + k] : 0.0f;
  }
}

// R x 8V accumulators (t.mr <= R <= MR, t.nr <= 8V): short or narrow edge tiles run fewer
// FMAs; every row keeps the same chain, so the bits do not depend on R or V.
template <int R, int V, bool kPackedA, bool kPackedB>
void tile_kernel(int64_t kc, const GemmOperands& op, float* c, int64_t ldc, const GemmTile& t) {
  const bool full_cols = t.nr == 8 * V;  // plain loads/stores: vmaskmov is slow on AMD
  const __m256i m[2] = {mask_upto(t.nr), mask_upto(t.nr - 8)};
  __m256 acc[R][V];
#pragma GCC unroll 6
  for (int i = 0; i < R; ++i) {
    for (int v = 0; v < V; ++v) {
      acc[i][v] = _mm256_setzero_ps();
      if (t.load_c && i < t.mr) {
        acc[i][v] = full_cols ? _mm256_loadu_ps(c + i * ldc + 8 * v)
                              : _mm256_maskload_ps(c + i * ldc + 8 * v, m[v]);
      }
    }
  }
  const float* b = op.b;
  const float* ar[R];  // direct A: rows past the tile re-read row 0; their sums are dropped
  for (int i = 0; i < R; ++i) ar[i] = op.a + (kPackedA ? i : (i < t.mr ? i : 0) * op.a_rs);
  const int64_t a_ks = kPackedA ? MR : op.a_ks;
  if (kPackedA) {  // warm the C rows of the tile below (normally the next call); never faults
    for (int i = 0; i < MR; ++i) {
      _mm_prefetch(reinterpret_cast<const char*>(c + (MR + i) * ldc), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(c + (MR + i) * ldc + 15), _MM_HINT_T0);
    }
  }
  __m256 bv[V];
  for (int64_t k = 0, ka = 0; k < kc; ++k, ka += a_ks) {
    if (kPackedA) _mm_prefetch(reinterpret_cast<const char*>(op.a + ka + kPrefetchA * MR), _MM_HINT_T0);
    for (int v = 0; v < V; ++v)
      bv[v] = kPackedB ? _mm256_load_ps(b + 8 * v) : _mm256_maskload_ps(b + 8 * v, m[v]);
#pragma GCC unroll 6
    for (int i = 0; i < R; ++i) {
      const __m256 av = _mm256_broadcast_ss(kPackedA ? op.a + ka + i : ar[i] + ka);
      for (int v = 0; v < V; ++v) acc[i][v] = _mm256_fmadd_ps(av, bv[v], acc[i][v]);
    }
    b += kPackedB ? NR : op.b_ks;
  }
  if (t.last) {
    const __m256 zero = _mm256_setzero_ps();
    __m256 bc[V];
    for (int v = 0; v < V; ++v)
      bc[v] = t.bias_col != nullptr ? _mm256_maskload_ps(t.bias_col + 8 * v, m[v]) : zero;
#pragma GCC unroll 6
    for (int i = 0; i < R; ++i) {
      if (i >= t.mr) break;
      for (int v = 0; v < V; ++v) {
        if (t.bias_row != nullptr) acc[i][v] = _mm256_add_ps(acc[i][v], _mm256_set1_ps(t.bias_row[i]));
        if (t.bias_col != nullptr) acc[i][v] = _mm256_add_ps(acc[i][v], bc[v]);
        // max(0, x) returns x for NaN: NaN propagates, as torch.relu
        if (t.relu) acc[i][v] = _mm256_max_ps(zero, acc[i][v]);
      }
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < R; ++i) {
    if (i >= t.mr) break;
    for (int v = 0; v < V; ++v) {
      if (full_cols) _mm256_storeu_ps(c + i * ldc + 8 * v, acc[i][v]);
      else _mm256_maskstore_ps(c + i * ldc + 8 * v, m[v], acc[i][v]);
    }
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
  if (t.nr <= 8) kernel_rv<R, 1>(kc, op, c, ldc, t);
  else kernel_rv<R, 2>(kc, op, c, ldc, t);
}

void kernel(int64_t kc, const GemmOperands& op, float* c, int64_t ldc, const GemmTile& t) {
  if (t.mr <= 1) kernel_r<1>(kc, op, c, ldc, t);
  else if (t.mr <= 2) kernel_r<2>(kc, op, c, ldc, t);
  else if (t.mr <= 4) kernel_r<4>(kc, op, c, ldc, t);
  else kernel_r<MR>(kc, op, c, ldc, t);
}

}  // namespace

extern const GemmKernels gemm_kernels_avx2 = {MR, NR, KC, MC, NC, &pack_a, &pack_b, &kernel};

}  // namespace fv
