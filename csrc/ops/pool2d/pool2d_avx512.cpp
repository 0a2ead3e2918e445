// pool2d, AVX-512 (see pool2d.h). 16 output columns per vector; each lane scans its window in
// the same row-major order with the same update rule as the scalar code, so values and
// indices are bitwise identical to it. Tails use __mmask16; border columns use the shared
// per-element code.
#include <immintrin.h>

#include "core/simd_avx512_inl.h"
#include "ops/pool2d/pool2d.h"

namespace fv {
namespace {

// Functions, not namespace-scope constants: no ISA code may run at load time.
__m512i lanes() { return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }

__mmask16 tail16(int64_t r) {  // lanes [0, r) set; r may be <= 0 or >= 16
  if (r <= 0) return 0;
  if (r >= 16) return 0xFFFF;
  return static_cast<__mmask16>((1u << r) - 1);
}

int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// Lanes j < n of p[j * s]; other lanes 0 (and never read).
__m512 load_strided(const float* p, int64_t s, __mmask16 m) {
  if (s == 1) return _mm512_maskz_loadu_ps(m, p);
  const __m512i off = _mm512_mullo_epi32(lanes(), _mm512_set1_epi32(static_cast<int>(s)));
  return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, off, p, 4);
}

// e = even lanes of a:b, o = odd lanes.
void deinterleave(__m512 a, __m512 b, __m512* e, __m512* o) {
  const __m512i even = _mm512_add_epi32(lanes(), lanes());
  *e = _mm512_permutex2var_ps(a, even, b);
  *o = _mm512_permutex2var_ps(a, _mm512_add_epi32(even, _mm512_set1_epi32(1)), b);
}

// e[j] = p[2j], o[j] = p[2j+1] for j < n; lanes j >= n zero.
void load_even_odd(const float* p, int64_t n, __m512* e, __m512* o) {
  deinterleave(_mm512_maskz_loadu_ps(tail16(2 * n), p), _mm512_maskz_loadu_ps(tail16(2 * n - 16), p + 16), e, o);
}

// p[0 .. count) = e0 o0 e1 o1 ... (count <= 32; the second vector only where count > 16)
void store_interleaved(float* p, int64_t count, __m512 e, __m512 o) {
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  _mm512_mask_storeu_ps(p, tail16(count), _mm512_permutex2var_ps(e, lo, o));
  if (count <= 16) return;
  const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
  _mm512_mask_storeu_ps(p + 16, tail16(count - 16), _mm512_permutex2var_ps(e, hi, o));
}

void store_out(float* y, int64_t* idx, int64_t n, __m512 best, __m512i at) {
  const __mmask16 m = tail16(n);
  _mm512_mask_storeu_ps(y, m, best);
  if (idx == nullptr) return;
  _mm512_mask_storeu_epi64(idx, static_cast<__mmask8>(m), _mm512_cvtepi32_epi64(_mm512_castsi512_si256(at)));
  _mm512_mask_storeu_epi64(idx + 8, static_cast<__mmask8>(m >> 8),
                           _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(at, 1)));
}

// The 2x2 windows of lanes j < n starting at p + 2j (rows p and p + W), scanned in the
// scalar's order: *best gets each window's max, *at 0 where its first element won, else at1,
// at2 or at3 for the second, third or fourth (offsets for indices, or codes 1..3).
void max_window_2x2(const float* p, int64_t W, int64_t n, __m512i at1, __m512i at2, __m512i at3,
                    __m512* best, __m512i* at) {
  __m512 e0, o0, e1, o1;
  load_even_odd(p, n, &e0, &o0);
  load_even_odd(p + W, n, &e1, &o1);
  max_of_2x2(e0, o0, e1, o1, at1, at2, at3, best, at);
}

// Kernel 2 stride 2, output row oh (both input rows exist), columns [0, ow_end), 2*ow_end <= W.
void max_row_k2s2(const float* x, float* y, int64_t* idx, const Pool2dGeom& g, int64_t oh,
                  int64_t ow_end) {
  const int W = static_cast<int>(g.W);
  const __m512i one = _mm512_set1_epi32(1), w = _mm512_set1_epi32(W), w1 = _mm512_set1_epi32(W + 1);
  for (int64_t ow = 0; ow < ow_end; ow += 16) {
    const int64_t n = min64(16, ow_end - ow);
    const float* p0 = x + 2 * oh * g.W + 2 * ow;
    __m512 best;
    __m512i off;
    max_window_2x2(p0, g.W, n, one, w, w1, &best, &off);
    const __m512i base = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(2 * oh * g.W + 2 * ow)),
                                          _mm512_add_epi32(lanes(), lanes()));
    store_out(y + oh * g.OW + ow, idx == nullptr ? nullptr : idx + oh * g.OW + ow, n, best,
              _mm512_add_epi32(base, off));
  }
}

// Lanes of m of p[j * s]; other lanes 0 (and never read). m is a contiguous run of lanes.
__m512 load_strided_run(const float* p, int64_t s, __mmask16 m) {
  if (s == 1) return _mm512_maskz_loadu_ps(m, p);
  if (s == 2) {  // two loads + deinterleave; the raw lanes between the first and last wanted
    const unsigned lo = __builtin_ctz(m), hi = 32 - __builtin_clz(m);  // lanes [lo, hi)
    const uint64_t raw = ((uint64_t{1} << (2 * hi - 1)) - 1) & ~((uint64_t{1} << (2 * lo)) - 1);
    __m512 e, o;
    deinterleave(_mm512_maskz_loadu_ps(static_cast<__mmask16>(raw), p),
                 _mm512_maskz_loadu_ps(static_cast<__mmask16>(raw >> 16), p + 16), &e, &o);
    return e;
  }
  const __m512i off = _mm512_mullo_epi32(lanes(), _mm512_set1_epi32(static_cast<int>(s)));
  return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, off, p, 4);
}

// Any geometry, output row oh, every column. Window positions outside the plane are masked
// off per lane, so border columns run the scalar rule too: the index starts at the first
// in-plane position (stepping by dw from a negative start) and only in-plane values compete,
// in the scalar's row-major order.
void max_row_generic(const float* x, float* y, int64_t* idx, const Pool2dGeom& g, int64_t oh) {
  int64_t ih0, ih1;
  max_rows(g, oh, &ih0, &ih1);
  const __m512i lane_off = _mm512_mullo_epi32(lanes(), _mm512_set1_epi32(static_cast<int>(g.sw)));
  const __m512i zero = _mm512_setzero_si512(), w = _mm512_set1_epi32(static_cast<int>(g.W));
  const __m512i dw = _mm512_set1_epi32(static_cast<int>(g.dw));
  constexpr int64_t kHoist = 16;  // column masks do not depend on the row: made once
  __mmask16 valid_kw[kHoist];
  for (int64_t ow = 0; ow < g.OW; ow += 16) {
    const int64_t n = min64(16, g.OW - ow);
    const __mmask16 m = tail16(n);
    const int64_t iwb = ow * g.sw - g.pw;
    const __m512i iw0 = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(iwb)), lane_off);
    __m512i start = iw0;
    for (__mmask16 neg = m & _mm512_cmplt_epi32_mask(start, zero); neg != 0;
         neg = m & _mm512_cmplt_epi32_mask(start, zero))
      start = _mm512_mask_add_epi32(start, neg, start, dw);
    __m512 best = _mm512_set1_ps(-__builtin_inff());
    __m512i at = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(ih0 * g.W)), start);
    for (int64_t kw = 0; kw < g.kw && kw < kHoist; ++kw) {
      const __m512i iw = _mm512_add_epi32(iw0, _mm512_set1_epi32(static_cast<int>(kw * g.dw)));
      valid_kw[kw] = m & _mm512_cmpge_epi32_mask(iw, zero) & _mm512_cmplt_epi32_mask(iw, w);
    }
    for (int64_t ih = ih0; ih < ih1; ih += g.dh) {
      const __m512i row_pos = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(ih * g.W)), iw0);
      for (int64_t kw = 0; kw < g.kw; ++kw) {
        const __m512i kwd = _mm512_set1_epi32(static_cast<int>(kw * g.dw));
        __mmask16 valid;
        if (kw < kHoist) {
          valid = valid_kw[kw];
        } else {
          const __m512i iw = _mm512_add_epi32(iw0, kwd);
          valid = m & _mm512_cmpge_epi32_mask(iw, zero) & _mm512_cmplt_epi32_mask(iw, w);
        }
        if (valid == 0) continue;
        const __m512 v = load_strided_run(x + ih * g.W + iwb + kw * g.dw, g.sw, valid);
        const __mmask16 t = valid & (_mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q));
        best = _mm512_mask_mov_ps(best, t, v);
        at = _mm512_mask_mov_epi32(at, t, _mm512_add_epi32(row_pos, kwd));
      }
    }
    store_out(y + oh * g.OW + ow, idx == nullptr ? nullptr : idx + oh * g.OW + ow, n, best, at);
  }
}

void max_forward_plane(const float* x, float* y, int64_t* idx, const Pool2dGeom& g) {
  const bool k2s2 = pool_is_k2s2(g);
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    if (k2s2 && 2 * oh + 1 < g.H) {
      const int64_t full = min64(g.W / 2, g.OW);
      max_row_k2s2(x, y, idx, g, oh, full);
      for (int64_t ow = full; ow < g.OW; ++ow) max_cell(x, y, idx, g, oh, ow);  // ceil_mode
    } else {
      max_row_generic(x, y, idx, g, oh);
    }
  }
}

// Direct write when every index lies in its own 2x2 block (OH == H/2, OW == W/2); false as
// soon as one does not (the caller then scatters the plane). Equal to the scatter: each input
// gets at most one term, and 0 + g (the scatter's add, -0 -> +0) is kept by adding zero.
bool max_backward_blocks(const float* gy, const int64_t* idx, float* gx, const Pool2dGeom& g) {
  const int W = static_cast<int>(g.W);
  const __m512 zero = _mm512_setzero_ps();
  const __m512i w = _mm512_set1_epi32(W), w1 = _mm512_set1_epi32(W + 1), one = _mm512_set1_epi32(1);
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    float* r0 = gx + 2 * oh * g.W;
    for (int64_t ow = 0; ow < g.OW; ow += 16) {
      const int64_t n = min64(16, g.OW - ow);
      const __mmask16 m = tail16(n);
      const int64_t j = oh * g.OW + ow;
      const __m512 gv = _mm512_maskz_loadu_ps(m, gy + j);
      // validated indices are < H*W <= INT32_MAX: keep the low halves
      const __m256i i0 = _mm512_cvtepi64_epi32(_mm512_maskz_loadu_epi64(static_cast<__mmask8>(m), idx + j));
      const __m256i i1 = _mm512_cvtepi64_epi32(_mm512_maskz_loadu_epi64(static_cast<__mmask8>(m >> 8), idx + j + 8));
      const __m512i i32 = _mm512_inserti64x4(_mm512_castsi256_si512(i0), i1, 1);
      const __m512i base = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(2 * oh * g.W + 2 * ow)),
                                            _mm512_add_epi32(lanes(), lanes()));
      const __m512i off = _mm512_sub_epi32(i32, base);
      const __mmask16 h00 = _mm512_cmpeq_epi32_mask(off, _mm512_setzero_si512());
      const __mmask16 h01 = _mm512_cmpeq_epi32_mask(off, one);
      const __mmask16 h10 = _mm512_cmpeq_epi32_mask(off, w);
      const __mmask16 h11 = _mm512_cmpeq_epi32_mask(off, w1);
      if (((h00 | h01 | h10 | h11) & m) != m) return false;
      store_interleaved(r0 + 2 * ow, 2 * n, _mm512_add_ps(_mm512_maskz_mov_ps(h00, gv), zero),
                        _mm512_add_ps(_mm512_maskz_mov_ps(h01, gv), zero));
      store_interleaved(r0 + g.W + 2 * ow, 2 * n, _mm512_add_ps(_mm512_maskz_mov_ps(h10, gv), zero),
                        _mm512_add_ps(_mm512_maskz_mov_ps(h11, gv), zero));
    }
    if (g.W & 1) r0[g.W - 1] = r0[2 * g.W - 1] = 0.0f;
  }
  if (g.H & 1)
    for (int64_t i = 0; i < g.W; ++i) gx[(g.H - 1) * g.W + i] = 0.0f;
  return true;
}

void avg_forward_plane(const float* x, float* y, const Pool2dGeom& g, bool count_include_pad) {
  int64_t lo, hi;
  pool_interior_cols(g, &lo, &hi);
  const bool k2s2 = pool_is_k2s2(g);
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    int64_t ih0 = 0, ih1 = 0, iw0, iw1;
    float div = 1.0f;
    // the rows and the divisor of an interior column: the window of column lo
    const bool rows = lo < hi && avg_window(g, oh, lo, count_include_pad, &ih0, &ih1, &iw0, &iw1, &div);
    const int64_t vlo = rows ? lo : g.OW, vhi = rows ? hi : g.OW;
    for (int64_t ow = 0; ow < vlo; ++ow) avg_cell(x, y, g, oh, ow, count_include_pad);
    const __m512 d = _mm512_set1_ps(div);
    for (int64_t ow = vlo; ow < vhi; ow += 16) {
      const int64_t n = min64(16, vhi - ow);
      __m512 sum = _mm512_setzero_ps();
      if (k2s2 && ih1 - ih0 == 2) {
        __m512 e0, o0, e1, o1;
        load_even_odd(x + ih0 * g.W + 2 * ow, n, &e0, &o0);
        load_even_odd(x + ih1 * g.W - g.W + 2 * ow, n, &e1, &o1);
        sum = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(sum, e0), o0), e1), o1);
      } else {
        const __mmask16 m = tail16(n);
        for (int64_t ih = ih0; ih < ih1; ++ih)
          for (int64_t kw = 0; kw < g.kw; ++kw)
            sum = _mm512_add_ps(sum, load_strided(x + ih * g.W + ow * g.sw - g.pw + kw, g.sw, m));
      }
      _mm512_mask_storeu_ps(y + oh * g.OW + ow, tail16(n), _mm512_div_ps(sum, d));
    }
    for (int64_t ow = vhi; ow < g.OW; ++ow) avg_cell(x, y, g, oh, ow, count_include_pad);
  }
}

void avg_backward_plane(const float* gy, float* gx, const Pool2dGeom& g, bool count_include_pad) {
  if (!(pool_is_k2s2(g) && g.OH == g.H / 2 && g.OW == g.W / 2)) {
    avg_backward_scatter(gy, gx, g, count_include_pad);
    return;
  }
  // Full 2x2 windows only: divisor 4 in both modes, each input gets one term 0 + gy / 4.
  const __m512 four = _mm512_set1_ps(4.0f), zero = _mm512_setzero_ps();
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    float* r0 = gx + 2 * oh * g.W;
    for (int64_t ow = 0; ow < g.OW; ow += 16) {
      const int64_t n = min64(16, g.OW - ow);
      const __m512 v = _mm512_add_ps(_mm512_div_ps(_mm512_maskz_loadu_ps(tail16(n), gy + oh * g.OW + ow), four), zero);
      store_interleaved(r0 + 2 * ow, 2 * n, v, v);
      store_interleaved(r0 + g.W + 2 * ow, 2 * n, v, v);
    }
    if (g.W & 1) r0[g.W - 1] = r0[2 * g.W - 1] = 0.0f;
  }
  if (g.H & 1)
    for (int64_t i = 0; i < g.W; ++i) gx[(g.H - 1) * g.W + i] = 0.0f;
}

// Small planes (k2s2 with OH == H/2, OW == W/2 and OH*OW <= kFlatMax, e.g. 11x11 -> 5x5):
// a row holds too few outputs for a vector, so 16 planes are taken together; their 16*OH*OW
// outputs are consecutive in y / indices and fill whole vectors. The top rows of their
// windows, read in output order, form a stream of (left, right) pairs made of segments of
// 2*OW contiguous floats (one per output row); each 16-float chunk of that stream is built
// by K masked loads, one per segment it touches (K <= 3 for 11x11), from a table made once
// per call: cheaper than gathers on Zen 4 by ~2x. The bottom rows are the same loads + W.
constexpr int64_t kFlatMax = 64;
constexpr int64_t kFlatChunks = 2 * kFlatMax;   // 16 planes * OH*OW pairs / 16 floats
constexpr int64_t kFlatLoads = kFlatChunks * 9; // segments of >= 2 floats: <= 9 per chunk

bool flat_k2s2(const Pool2dGeom& g) {
  return pool_is_k2s2(g) && g.OH == g.H / 2 && g.OW == g.W / 2 && g.OH * g.OW <= kFlatMax;
}

struct FlatTable {
  int64_t k;                      // loads per chunk (unused ones have an empty mask)
  int32_t off[kFlatLoads];        // from the group's first input, minus the first lane
  __mmask16 mask[kFlatLoads];
  int32_t pin[16 * kFlatMax];     // in-plane index of each output's top-left input
};

void flat_table(const Pool2dGeom& g, FlatTable* t) {
  const int64_t L = 2 * g.OW, chunks = 2 * g.OH * g.OW;
  t->k = 0;
  for (int64_t q = 0; q < chunks; ++q) {
    const int64_t segs = (16 * q + 15) / L - (16 * q) / L + 1;
    if (segs > t->k) t->k = segs;
  }
  for (int64_t q = 0; q < chunks; ++q) {
    int64_t e = q * t->k;
    for (int64_t s = (16 * q) / L; s <= (16 * q + 15) / L; ++s, ++e) {
      const int64_t lo = (s * L > 16 * q ? s * L : 16 * q) - 16 * q;
      const int64_t hi = ((s + 1) * L < 16 * q + 16 ? (s + 1) * L : 16 * q + 16) - 16 * q;
      t->mask[e] = static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1));
      // segment s = output row (s / OH, s % OH) of the group; lane l reads pair-stream 16q + l
      const int64_t row = (s / g.OH) * g.H * g.W + 2 * (s % g.OH) * g.W;
      t->off[e] = static_cast<int32_t>(row - (s * L - 16 * q));
    }
    for (; e < (q + 1) * t->k; ++e) t->mask[e] = 0, t->off[e] = 0;
  }
  for (int64_t p = 0, j = 0; p < 16; ++p)
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow, ++j) t->pin[j] = static_cast<int32_t>(2 * oh * g.W + 2 * ow);
}

__m512 flat_chunk(const float* x, const FlatTable& t, int64_t q) {
  __m512 a = _mm512_setzero_ps();
  for (int64_t e = q * t.k; e < (q + 1) * t.k; ++e) a = _mm512_mask_loadu_ps(a, t.mask[e], x + t.off[e]);
  return a;
}

// 16 planes; the same four comparisons in the same order as max_row_k2s2.
void max_flat16(const float* x, float* y, int64_t* idx, const Pool2dGeom& g, const FlatTable& t) {
  const int W = static_cast<int>(g.W);
  const __m512i one = _mm512_set1_epi32(1), w = _mm512_set1_epi32(W), w1 = _mm512_set1_epi32(W + 1);
  const int64_t vecs = g.OH * g.OW;  // 16 * OH * OW outputs
  for (int64_t v = 0; v < vecs; ++v) {
    __m512 e0, o0, e1, o1;
    deinterleave(flat_chunk(x, t, 2 * v), flat_chunk(x, t, 2 * v + 1), &e0, &o0);
    deinterleave(flat_chunk(x + W, t, 2 * v), flat_chunk(x + W, t, 2 * v + 1), &e1, &o1);
    __m512 best;
    __m512i at;
    max_of_2x2(e0, o0, e1, o1, one, w, w1, &best, &at);
    store_out(y + 16 * v, idx == nullptr ? nullptr : idx + 16 * v, 16, best,
              _mm512_add_epi32(_mm512_loadu_si512(t.pin + 16 * v), at));
  }
}

void max_forward(const float* x, float* y, int64_t* idx, int64_t planes, const Pool2dGeom& g) {
  const int64_t in_n = g.H * g.W, out_n = g.OH * g.OW;
  int64_t c = 0;
  if (planes >= 16 && flat_k2s2(g)) {
    FlatTable t;
    flat_table(g, &t);
    for (; c + 16 <= planes; c += 16)
      max_flat16(x + c * in_n, y + c * out_n, idx == nullptr ? nullptr : idx + c * out_n, g, t);
  }
  for (; c < planes; ++c)
    max_forward_plane(x + c * in_n, y + c * out_n, idx == nullptr ? nullptr : idx + c * out_n, g);
}

// Narrow k2s2-shaped planes (OW < 8, e.g. 11x11 -> 5x5) whose indices lie in their own
// blocks: zeros + plain stores, group by group (a vectorised direct write of whole 16-float
// chunks through per-chunk permute tables measured ~1.2x slower on Zen 4: too few outputs
// per vector of grad_x). Wide ones: the direct write of the 2x2 blocks (no scatter, no
// zeroing pass), plane by plane, falling back to the scatter for a plane with an index
// outside its block. Otherwise zeros + scatter-add.
void max_backward(const float* gy, const int64_t* idx, float* gx, int64_t planes, const Pool2dGeom& g,
                  bool own_blocks) {
  const int64_t in_n = g.H * g.W, out_n = g.OH * g.OW;
  if (own_blocks && g.OW < 8) {
    max_backward_store(gy, idx, gx, planes, g);
    return;
  }
  if (!(g.OW >= 8 && g.OH == g.H / 2 && g.OW == g.W / 2)) {
    max_backward_scatter(gy, idx, gx, planes, g);
    return;
  }
  for (int64_t c = 0; c < planes; ++c, gy += out_n, idx += out_n, gx += in_n)
    if (!max_backward_blocks(gy, idx, gx, g)) max_backward_scatter(gy, idx, gx, 1, g);
}

// 16 small planes (full 2x2 windows: divisor 4 in both modes); the row path's sum order.
void avg_flat16(const float* x, float* y, const Pool2dGeom& g, const FlatTable& t) {
  const int64_t W = g.W, vecs = g.OH * g.OW;
  const __m512 four = _mm512_set1_ps(4.0f);
  for (int64_t v = 0; v < vecs; ++v) {
    __m512 e0, o0, e1, o1;
    deinterleave(flat_chunk(x, t, 2 * v), flat_chunk(x, t, 2 * v + 1), &e0, &o0);
    deinterleave(flat_chunk(x + W, t, 2 * v), flat_chunk(x + W, t, 2 * v + 1), &e1, &o1);
    const __m512 sum = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(_mm512_setzero_ps(), e0), o0), e1), o1);
    _mm512_storeu_ps(y + 16 * v, _mm512_div_ps(sum, four));
  }
}

void avg_forward(const float* x, float* y, int64_t planes, const Pool2dGeom& g, bool count_include_pad) {
  const int64_t in_n = g.H * g.W, out_n = g.OH * g.OW;
  int64_t c = 0;
  if (planes >= 16 && flat_k2s2(g)) {
    FlatTable t;
    flat_table(g, &t);
    for (; c + 16 <= planes; c += 16) avg_flat16(x + c * in_n, y + c * out_n, g, t);
  }
  for (; c < planes; ++c) avg_forward_plane(x + c * in_n, y + c * out_n, g, count_include_pad);
}

void avg_backward(const float* gy, float* gx, int64_t planes, const Pool2dGeom& g, bool count_include_pad) {
  const int64_t in_n = g.H * g.W, out_n = g.OH * g.OW;
  for (int64_t c = 0; c < planes; ++c) avg_backward_plane(gy + c * out_n, gx + c * in_n, g, count_include_pad);
}

int check_indices(const int64_t* idx, int64_t planes, const Pool2dGeom& g) {
  int32_t pin[8 * kPinMax];
  int64_t period = 1;
  // wide planes take the block path, which checks as it goes: a range check is enough
  const bool blocks = g.OW < 8 && max_bwd_pins(g, pin, &period);
  // whole periods of planes (pin's length), then the rest with masks; no pins: one stream
  const int64_t span = blocks ? period * g.OH * g.OW : planes * g.OH * g.OW;
  const int64_t n = planes * g.OH * g.OW;
  // Unsigned maxima, no masks in the loop: hi = the largest index (negative ones become
  // huge); far = the largest min(off, off - W) of off = index - block's top-left, which is
  // <= 1 exactly when off is one of 0, 1, W, W + 1.
  const __m512i w = _mm512_set1_epi64(g.W);
  __m512i hi = _mm512_setzero_si512(), far = _mm512_setzero_si512();
  for (int64_t base = 0; base < n; base += span) {
    const int64_t len = min64(span, n - base);
    for (int64_t v = 0; v < len; v += 8) {
      __m512i x, p = _mm512_setzero_si512();
      if (len - v >= 8) {
        x = _mm512_loadu_si512(idx + base + v);
        if (blocks) p = _mm512_cvtepi32_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(pin + v)));
      } else {  // masked-off lanes: index 0, pin 0
        const __mmask8 m = static_cast<__mmask8>((1u << (len - v)) - 1);
        x = _mm512_maskz_loadu_epi64(m, idx + base + v);
        if (blocks) p = _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(m, pin + v));
      }
      hi = _mm512_max_epu64(hi, x);
      if (!blocks) continue;
      const __m512i off = _mm512_sub_epi64(x, p);
      far = _mm512_max_epu64(far, _mm512_min_epu64(off, _mm512_sub_epi64(off, w)));
    }
  }
  if (_mm512_cmp_epu64_mask(hi, _mm512_set1_epi64(g.H * g.W), _MM_CMPINT_NLT) != 0) return kOutOfRange;
  return blocks && _mm512_cmp_epu64_mask(far, _mm512_set1_epi64(1), _MM_CMPINT_NLE) == 0 ? kOwnBlocks : kInRange;
}

// max_forward_2x2: 16 outputs of a row per vector, max_row_k2s2's windows with codes 1..3 in
// place of the offsets, stored as bytes.
void max_forward_2x2(const float* x, float* y, uint8_t* code, int64_t planes, const Pool2dGeom& g) {
  const int64_t in_n = g.H * g.W, out_n = g.OH * g.OW;
  const __m512i c1 = _mm512_set1_epi32(1), c2 = _mm512_set1_epi32(2), c3 = _mm512_set1_epi32(3);
  for (int64_t c = 0; c < planes; ++c) {
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const float* row = x + c * in_n + 2 * oh * g.W;
      for (int64_t ow = 0; ow < g.OW; ow += 16) {
        const int64_t n = min64(16, g.OW - ow), j = c * out_n + oh * g.OW + ow;
        __m512 best;
        __m512i at;
        max_window_2x2(row + 2 * ow, g.W, n, c1, c2, c3, &best, &at);
        const __mmask16 m = tail16(n);
        _mm512_mask_storeu_ps(y + j, m, best);
        _mm512_mask_cvtepi32_storeu_epi8(code + j, m, at);
      }
    }
  }
}

// max_backward_2x2: 16 outputs of a row per vector; each code picks which of the four
// (even / odd column, upper / lower row) vectors its gradient goes to, and the two rows are
// interleaved back and stored whole. Rows of W <= 16 (the reference conv2's 11) take one
// store per row that also writes an odd W's last column (its lane interleaves a zero, a lane
// past the pooled row), and an odd H's last row is one masked store of zeros: per 11x11
// plane that replaced ten scalar stores and a memset call.
void max_backward_2x2(const float* gy, const uint8_t* code, const float* relu_y, float* gx,
                      int64_t planes, const Pool2dGeom& g) {
  const int64_t in_n = g.H * g.W, out_n = g.OH * g.OW;
  const __m512 zero = _mm512_setzero_ps();
  const bool narrow = g.W <= 16;
  for (int64_t c = 0; c < planes; ++c) {
    float* plane = gx + c * in_n;
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      float* row = plane + 2 * oh * g.W;
      for (int64_t ow = 0; ow < g.OW; ow += 16) {
        const int64_t n = min64(16, g.OW - ow), j = c * out_n + oh * g.OW + ow;
        const __mmask16 m = tail16(n);
        __m512 v = _mm512_maskz_loadu_ps(m, gy + j);
        if (relu_y != nullptr) {
          v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(m, relu_y + j), zero, _CMP_GT_OQ), v);
        }
        v = _mm512_add_ps(v, zero);  // -0 -> +0, as the scatter's 0 + g
        const __m512i k = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, code + j));
        const auto pick = [&](int w) {
          return _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(k, _mm512_set1_epi32(w)), v);
        };
        // narrow: the whole row, W floats; lanes >= n of v are 0, so lane 2n (an odd W's
        // last column) is too
        const int64_t count = narrow ? g.W : 2 * n;
        store_interleaved(row + 2 * ow, count, pick(0), pick(1));
        store_interleaved(row + g.W + 2 * ow, count, pick(2), pick(3));
      }
    }
    if (!narrow) {
      max2x2_backward_edges(plane, g);
    } else if (g.H > 2 * g.OH) {
      _mm512_mask_storeu_ps(plane + 2 * g.OH * g.W, tail16(g.W), zero);
    }
  }
}

}  // namespace

extern const Pool2dKernels pool2d_kernels_avx512 = {&max_forward, &max_backward, &avg_forward,
                                                    &avg_backward, &check_indices,
                                                    &max_forward_2x2, &max_backward_2x2};

}  // namespace fv
