// pool2d, AVX2 (see pool2d.h). 8 output columns per vector; each lane scans its window in the
// same row-major order with the same update rule as the scalar code, so values and indices
// are bitwise identical to it. Tails load with masks; they store through a small buffer,
// since vmaskmovps stores are microcoded and slow on AMD cores. Border columns use the shared
// per-element code.
#include <immintrin.h>

#include "core/simd_avx2_inl.h"
#include "ops/pool2d/pool2d.h"

namespace fv {
namespace {

// A function, not a namespace-scope constant: no ISA code may run at load time.
__m256i lanes() { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }

__m256i tail_mask(int64_t r) {  // lanes [0, r) set; r may be <= 0 or >= 8
  const int c = r < 0 ? 0 : (r > 8 ? 8 : static_cast<int>(r));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), lanes());
}

int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// Lanes j < n of p[j * s]; other lanes 0 (and never read).
__m256 load_strided(const float* p, int64_t s, __m256i m) {
  if (s == 1) return _mm256_maskload_ps(p, m);
  const __m256i off = _mm256_mullo_epi32(lanes(), _mm256_set1_epi32(static_cast<int>(s)));
  return _mm256_mask_i32gather_ps(_mm256_setzero_ps(), p, off, _mm256_castsi256_ps(m), 4);
}

// Even and odd columns of p[0 .. 2n): e[j] = p[2j], o[j] = p[2j+1], lanes j >= n zero.
void load_even_odd(const float* p, int64_t n, __m256* e, __m256* o) {
  if (n >= 8) {
    deinterleave(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8), e, o);
  } else {
    deinterleave(_mm256_maskload_ps(p, tail_mask(2 * n)), _mm256_maskload_ps(p + 8, tail_mask(2 * n - 8)), e, o);
  }
}

// p[0 .. 2n) = e0 o0 e1 o1 ...; where room > 2n, up to room floats from p may be written
// (the caller overwrites those past 2n later): whole vectors, not store_first's buffer copy.
void store_interleaved(float* p, int64_t n, __m256 e, __m256 o, int64_t room = 0) {
  const __m256 lo = _mm256_unpacklo_ps(e, o), hi = _mm256_unpackhi_ps(e, o);
  const __m256 a = _mm256_permute2f128_ps(lo, hi, 0x20), b = _mm256_permute2f128_ps(lo, hi, 0x31);
  store_first(p, a, room >= 8 ? 8 : min64(2 * n, 8));
  if (n > 4) store_first(p + 8, b, room >= 16 ? 8 : 2 * n - 8);
}

void store_out(float* y, int64_t* idx, int64_t n, __m256 best, __m256i at) {
  store_first(y, best, n);
  if (idx == nullptr) return;
  const __m256i a0 = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(at));
  const __m256i a1 = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(at, 1));
  if (n >= 8) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx), a0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + 4), a1);
    return;
  }
  alignas(32) int64_t buf[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(buf), a0);
  _mm256_store_si256(reinterpret_cast<__m256i*>(buf + 4), a1);
  for (int64_t i = 0; i < n; ++i) idx[i] = buf[i];
}

// The 2x2 windows of lanes j < n starting at p + 2j (rows p and p + W), scanned in the
// scalar's order: *best gets each window's max, *at 0 where its first element won, else at1,
// at2 or at3 for the second, third or fourth (offsets for indices, or codes 1..3).
void max_window_2x2(const float* p, int64_t W, int64_t n, __m256i at1, __m256i at2, __m256i at3,
                    __m256* best, __m256i* at) {
  __m256 e0, o0, e1, o1;
  load_even_odd(p, n, &e0, &o0);
  load_even_odd(p + W, n, &e1, &o1);
  max_of_2x2(e0, o0, e1, o1, at1, at2, at3, best, at);
}

// Kernel 2 stride 2, output row oh (both input rows exist), columns [0, OW2) with 2*OW2 <= W.
void max_row_k2s2(const float* x, float* y, int64_t* idx, const Pool2dGeom& g, int64_t oh,
                  int64_t ow_end) {
  const int W = static_cast<int>(g.W);
  const __m256i one = _mm256_set1_epi32(1), w = _mm256_set1_epi32(W), w1 = _mm256_set1_epi32(W + 1);
  for (int64_t ow = 0; ow < ow_end; ow += 8) {
    const int64_t n = min64(8, ow_end - ow);
    const float* p0 = x + 2 * oh * g.W + 2 * ow;
    __m256 best;
    __m256i off;
    max_window_2x2(p0, g.W, n, one, w, w1, &best, &off);
    const __m256i base = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(2 * oh * g.W + 2 * ow)),
                                          _mm256_add_epi32(lanes(), lanes()));
    store_out(y + oh * g.OW + ow, idx == nullptr ? nullptr : idx + oh * g.OW + ow, n, best,
              _mm256_add_epi32(base, off));
  }
}

// Any geometry, output row oh, interior columns [lo, hi).
void max_row_generic(const float* x, float* y, int64_t* idx, const Pool2dGeom& g, int64_t oh,
                     int64_t lo, int64_t hi) {
  int64_t ih0, ih1;
  max_rows(g, oh, &ih0, &ih1);
  const __m256i lane_off = _mm256_mullo_epi32(lanes(), _mm256_set1_epi32(static_cast<int>(g.sw)));
  for (int64_t ow = lo; ow < hi; ow += 8) {
    const int64_t n = min64(8, hi - ow);
    const __m256i m = tail_mask(n);
    const int64_t iwb = ow * g.sw - g.pw;
    __m256 best = _mm256_set1_ps(-__builtin_inff());
    __m256i at = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(ih0 * g.W + iwb)), lane_off);
    for (int64_t ih = ih0; ih < ih1; ih += g.dh) {
      for (int64_t kw = 0; kw < g.kw; ++kw) {
        const int64_t pos = ih * g.W + iwb + kw * g.dw;
        const __m256 v = load_strided(x + pos, g.sw, m);
        take_if_greater_or_nan(v, _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(pos)), lane_off), &best, &at);
      }
    }
    store_out(y + oh * g.OW + ow, idx == nullptr ? nullptr : idx + oh * g.OW + ow, n, best, at);
  }
}

// Small planes (k2s2 with OH == H/2, OW == W/2 and OH*OW <= kFlatMax, e.g. 11x11 -> 5x5):
// a row holds too few outputs for a vector, so 8 planes are taken together; their 8*OH*OW
// outputs are consecutive in y / indices and fill whole vectors. Each lane fetches its
// window through tables of offsets: src (from the group's first input) and pin (in-plane).
constexpr int64_t kFlatMax = 64;

bool flat_k2s2(const Pool2dGeom& g) {
  return pool_is_k2s2(g) && g.OH == g.H / 2 && g.OW == g.W / 2 && g.OH * g.OW <= kFlatMax;
}

void flat_tables(const Pool2dGeom& g, int32_t* src, int32_t* pin) {
  for (int64_t p = 0, j = 0; p < 8; ++p)
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow, ++j) {
        pin[j] = static_cast<int32_t>(2 * oh * g.W + 2 * ow);
        src[j] = static_cast<int32_t>(p * g.H * g.W) + pin[j];
      }
}

// 8 planes; the same four comparisons in the same order as max_row_k2s2.
void max_flat8(const float* x, float* y, int64_t* idx, const Pool2dGeom& g, const int32_t* src,
               const int32_t* pin) {
  const int W = static_cast<int>(g.W);
  const __m256i one = _mm256_set1_epi32(1), w = _mm256_set1_epi32(W), w1 = _mm256_set1_epi32(W + 1);
  const double* top = reinterpret_cast<const double*>(x);  // gathered 4 bytes apart: scale 4
  const double* bot = reinterpret_cast<const double*>(x + W);
  const int64_t vecs = g.OH * g.OW;  // 8 * OH * OW outputs
  for (int64_t v = 0; v < vecs; ++v) {
    // each window row is an adjacent pair: gather it as one 64-bit element (half the loads)
    const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 8 * v));
    const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 8 * v + 4));
    __m256 e0, o0, e1, o1;
    deinterleave(_mm256_castpd_ps(_mm256_i32gather_pd(top, lo, 4)),
                 _mm256_castpd_ps(_mm256_i32gather_pd(top, hi, 4)), &e0, &o0);
    deinterleave(_mm256_castpd_ps(_mm256_i32gather_pd(bot, lo, 4)),
                 _mm256_castpd_ps(_mm256_i32gather_pd(bot, hi, 4)), &e1, &o1);
    __m256 best = e0;
    __m256i at = _mm256_setzero_si256();
    take_if_greater_or_nan(o0, one, &best, &at);
    take_if_greater_or_nan(e1, w, &best, &at);
    take_if_greater_or_nan(o1, w1, &best, &at);
    store_out(y + 8 * v, idx == nullptr ? nullptr : idx + 8 * v, 8, best,
              _mm256_add_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(pin + 8 * v)), at));
  }
}

void max_forward_plane(const float* x, float* y, int64_t* idx, const Pool2dGeom& g) {
  int64_t lo, hi;
  pool_interior_cols(g, &lo, &hi);
  const bool k2s2 = pool_is_k2s2(g);
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    for (int64_t ow = 0; ow < lo; ++ow) max_cell(x, y, idx, g, oh, ow);
    if (k2s2 && 2 * oh + 1 < g.H) {
      max_row_k2s2(x, y, idx, g, oh, hi);  // lo == 0 without padding
    } else {
      max_row_generic(x, y, idx, g, oh, lo, hi);
    }
    for (int64_t ow = hi; ow < g.OW; ++ow) max_cell(x, y, idx, g, oh, ow);
  }
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
    const __m256 d = _mm256_set1_ps(div);
    for (int64_t ow = vlo; ow < vhi; ow += 8) {
      const int64_t n = min64(8, vhi - ow);
      __m256 sum = _mm256_setzero_ps();
      if (k2s2 && ih1 - ih0 == 2) {
        __m256 e0, o0, e1, o1;
        load_even_odd(x + ih0 * g.W + 2 * ow, n, &e0, &o0);
        load_even_odd(x + ih1 * g.W - g.W + 2 * ow, n, &e1, &o1);
        sum = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(sum, e0), o0), e1), o1);
      } else {
        const __m256i m = tail_mask(n);
        for (int64_t ih = ih0; ih < ih1; ++ih)
          for (int64_t kw = 0; kw < g.kw; ++kw)
            sum = _mm256_add_ps(sum, load_strided(x + ih * g.W + ow * g.sw - g.pw + kw, g.sw, m));
      }
      store_first(y + oh * g.OW + ow, _mm256_div_ps(sum, d), n);
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
  const __m256 four = _mm256_set1_ps(4.0f), zero = _mm256_setzero_ps();
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    float* r0 = gx + 2 * oh * g.W;
    for (int64_t ow = 0; ow < g.OW; ow += 8) {
      const int64_t n = min64(8, g.OW - ow);
      const __m256 v = _mm256_add_ps(_mm256_div_ps(_mm256_maskload_ps(gy + oh * g.OW + ow, tail_mask(n)), four), zero);
      store_interleaved(r0 + 2 * ow, n, v, v);
      store_interleaved(r0 + g.W + 2 * ow, n, v, v);
    }
    if (g.W & 1) r0[g.W - 1] = r0[2 * g.W - 1] = 0.0f;
  }
  if (g.H & 1)
    for (int64_t i = 0; i < g.W; ++i) gx[(g.H - 1) * g.W + i] = 0.0f;
}

void max_forward(const float* x, float* y, int64_t* idx, int64_t planes, const Pool2dGeom& g) {
  const int64_t in_n = g.H * g.W, out_n = g.OH * g.OW;
  int64_t c = 0;
  if (planes >= 8 && flat_k2s2(g)) {
    int32_t src[8 * kFlatMax], pin[8 * kFlatMax];
    flat_tables(g, src, pin);
    for (; c + 8 <= planes; c += 8)
      max_flat8(x + c * in_n, y + c * out_n, idx == nullptr ? nullptr : idx + c * out_n, g, src, pin);
  }
  for (; c < planes; ++c)
    max_forward_plane(x + c * in_n, y + c * out_n, idx == nullptr ? nullptr : idx + c * out_n, g);
}

// k2s2-shaped planes whose indices lie in their own blocks: zeros + plain stores, group by
// group (at AVX2 width a direct write of the 2x2 blocks, the AVX-512 file's path, measured
// slower than the scatter on Zen 4: 26x26 ~0.7x). Otherwise zeros + scatter-add.
void max_backward(const float* gy, const int64_t* idx, float* gx, int64_t planes, const Pool2dGeom& g,
                  bool own_blocks) {
  if (own_blocks)
    max_backward_store(gy, idx, gx, planes, g);
  else
    max_backward_scatter(gy, idx, gx, planes, g);
}

void avg_forward(const float* x, float* y, int64_t planes, const Pool2dGeom& g, bool count_include_pad) {
  const int64_t in_n = g.H * g.W, out_n = g.OH * g.OW;
  for (int64_t c = 0; c < planes; ++c) avg_forward_plane(x + c * in_n, y + c * out_n, g, count_include_pad);
}

void avg_backward(const float* gy, float* gx, int64_t planes, const Pool2dGeom& g, bool count_include_pad) {
  const int64_t in_n = g.H * g.W, out_n = g.OH * g.OW;
  for (int64_t c = 0; c < planes; ++c) avg_backward_plane(gy + c * out_n, gx + c * in_n, g, count_include_pad);
}

int check_indices(const int64_t* idx, int64_t planes, const Pool2dGeom& g) {
  int32_t pin[8 * kPinMax];
  int64_t period = 1;
  const bool blocks = max_bwd_pins(g, pin, &period);
  // whole periods of planes (pin's length), then the rest; no pins: one stream
  const int64_t span = blocks ? period * g.OH * g.OW : planes * g.OH * g.OW;
  const int64_t n = planes * g.OH * g.OW;
  const __m256i zero = _mm256_setzero_si256(), top = _mm256_set1_epi64x(g.H * g.W - 1);
  const __m256i one = _mm256_set1_epi64x(1), w = _mm256_set1_epi64x(g.W), w1 = _mm256_set1_epi64x(g.W + 1);
  __m256i bad = zero, ok = _mm256_set1_epi64x(-1);
  int res = blocks ? kOwnBlocks : kInRange;
  for (int64_t base = 0; base < n; base += span) {
    const int64_t len = min64(span, n - base);
    int64_t v = 0;
    for (; v + 4 <= len; v += 4) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx + base + v));
      bad = _mm256_or_si256(bad, _mm256_or_si256(_mm256_cmpgt_epi64(zero, x), _mm256_cmpgt_epi64(x, top)));
      if (!blocks) continue;
      // off = index - block's top-left in {0, 1, W, W + 1}
      const __m256i off = _mm256_sub_epi64(x, _mm256_cvtepi32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pin + v))));
      ok = _mm256_and_si256(ok, _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi64(off, zero), _mm256_cmpeq_epi64(off, one)),
                                                _mm256_or_si256(_mm256_cmpeq_epi64(off, w), _mm256_cmpeq_epi64(off, w1))));
    }
    const int r = check_indices_cells(idx + base, v, len, g, blocks ? pin : nullptr);
    if (r == kOutOfRange) return r;
    res = r < res ? r : res;
  }
  if (!_mm256_testz_si256(bad, bad)) return kOutOfRange;
  if (blocks && !_mm256_testc_si256(ok, _mm256_set1_epi64x(-1))) return kInRange;
  return res;
}

// The window codes code[at, at + n) (n <= 8) as bytes of one integer (lane i: byte i). A copy
// of a variable number of bytes is a call and byte stores that the 8-byte reload after it
// cannot take from the store buffer (perf: ~23% of max_backward_2x2 on AMD Zen 3): a row's
// last n < 8 codes are read as the 8 bytes ending at them (shifted down) where those lie in
// the array (`at` >= 8 - n bytes from its start). (Stores: store_codes, core/simd_avx2_inl.h.)
uint64_t load_codes(const uint8_t* code, int64_t at, int64_t n) {
  uint64_t bytes = 0;
  if (n == 8) {
    std::memcpy(&bytes, code + at, 8);
  } else if (at + n >= 8) {
    std::memcpy(&bytes, code + at + n - 8, 8);
    bytes >>= 8 * (8 - n);
  } else {
    std::memcpy(&bytes, code + at, static_cast<size_t>(n));
  }
  return bytes;
}

// max_forward_2x2: 8 outputs of a row per vector, max_row_k2s2's windows with codes 1..3 in
// place of the offsets, stored as bytes.
void max_forward_2x2(const float* x, float* y, uint8_t* code, int64_t planes, const Pool2dGeom& g) {
  const int64_t in_n = g.H * g.W, out_n = g.OH * g.OW;
  const __m256i c1 = _mm256_set1_epi32(1), c2 = _mm256_set1_epi32(2), c3 = _mm256_set1_epi32(3);
  for (int64_t c = 0; c < planes; ++c) {
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      const float* row = x + c * in_n + 2 * oh * g.W;
      for (int64_t ow = 0; ow < g.OW; ow += 8) {
        const int64_t n = min64(8, g.OW - ow), j = c * out_n + oh * g.OW + ow;
        __m256 best;
        __m256i at;
        max_window_2x2(row + 2 * ow, g.W, n, c1, c2, c3, &best, &at);
        store_first(y + j, best, n);
        store_codes(code + j, at, n);
      }
    }
  }
}

// One block of n <= 8 outputs of a row of max_backward_2x2 (kWhole: n == 8, plain loads and
// an 8-byte code load, no tail logic): j its first output, row the gx row pair's upper row
// and room the floats from it to the plane's end (store_interleaved).
template <bool kWhole>
inline void max_backward_2x2_block(const float* gy, const uint8_t* code, const float* relu_y,
                                   int64_t j, int64_t n, float* row, int64_t W, int64_t room) {
  const __m256 zero = _mm256_setzero_ps();
  const __m256i m = kWhole ? _mm256_set1_epi32(-1) : tail_mask(n);
  // 1 KB ahead: in training gy and relu_y come from memory and perf put ~45% of this
  // kernel's samples on their loads (AMD Zen 3); prefetches never fault past the end.
  _mm_prefetch(reinterpret_cast<const char*>(gy + j + 256), _MM_HINT_T0);
  if (relu_y != nullptr) {
    _mm_prefetch(reinterpret_cast<const char*>(relu_y + j + 256), _MM_HINT_T0);
  }
  __m256 v = kWhole ? _mm256_loadu_ps(gy + j) : _mm256_maskload_ps(gy + j, m);
  if (relu_y != nullptr) {
    const __m256 r = kWhole ? _mm256_loadu_ps(relu_y + j) : _mm256_maskload_ps(relu_y + j, m);
    v = _mm256_and_ps(v, _mm256_cmp_ps(r, zero, _CMP_GT_OQ));
  }
  v = _mm256_add_ps(v, zero);  // -0 -> +0, as the scatter's 0 + g
  uint64_t bytes;
  if (kWhole) {
    std::memcpy(&bytes, code + j, 8);
  } else {
    bytes = load_codes(code, j, n);
  }
  const __m256i k = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(bytes)));
  const auto pick = [&](int w) {
    return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(k, _mm256_set1_epi32(w))));
  };
  store_interleaved(row, n, pick(0), pick(1), room);
  store_interleaved(row + W, n, pick(2), pick(3), room - W);
}

// max_backward_2x2: 8 outputs of a row per vector; each code picks which of the four (even /
// odd column, upper / lower row) vectors its gradient goes to, and the two rows are
// interleaved back. A row's blocks run right to left, so its last block's stores may run on
// as whole vectors (inside the plane) into what is written after them: the lower row's first
// columns, the next block row's, or an odd W's last column and an odd H's last row (the
// edges, zeroed last). On AMD Zen 3 the partial stores' buffer copies were a good part of
// this kernel (the reference pool1: gx rows of 26 floats).
void max_backward_2x2(const float* gy, const uint8_t* code, const float* relu_y, float* gx,
                      int64_t planes, const Pool2dGeom& g) {
  const int64_t in_n = g.H * g.W, out_n = g.OH * g.OW;
  for (int64_t c = 0; c < planes; ++c) {
    float* plane = gx + c * in_n;
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      for (int64_t ow = (g.OW - 1) / 8 * 8; ow >= 0; ow -= 8) {
        const int64_t n = min64(8, g.OW - ow), j = c * out_n + oh * g.OW + ow;
        const int64_t upper = 2 * oh * g.W + 2 * ow;  // offset in the plane
        if (n == 8) {
          max_backward_2x2_block<true>(gy, code, relu_y, j, 8, plane + upper, g.W, in_n - upper);
        } else {
          max_backward_2x2_block<false>(gy, code, relu_y, j, n, plane + upper, g.W, in_n - upper);
        }
      }
    }
    max2x2_backward_edges(plane, g);
  }
}

}  // namespace

extern const Pool2dKernels pool2d_kernels_avx2 = {&max_forward, &max_backward, &avg_forward,
                                                  &avg_backward, &check_indices,
                                                  &max_forward_2x2, &max_backward_2x2};

}  // namespace fv
