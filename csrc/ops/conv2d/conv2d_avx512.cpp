// conv2d, AVX-512 kernels (see conv2d.h): im2col, col2im, direct single channel (forward,
// forward with relu and a 2x2 pool in registers, 3x3 weight gradient), bias-gradient row sums.
//
// direct_c1 register block: 32 output pixels of one row (two zmm, masked at the row end) x OB
// output channels; per tap one pair of input loads feeds 2*OB FMAs against broadcast weights. Every
// output element sums its taps in (i, j) order from 0 with FMA, whatever block it falls in.
#include <immintrin.h>

#include "core/simd_avx512_inl.h"
#include "ops/conv2d/conv2d.h"
#include "ops/conv2d/conv2d_rows_inl.h"

namespace fv {
namespace {

__mmask16 lane_mask(int64_t r) {
  if (r >= 16) return static_cast<__mmask16>(0xFFFF);
  if (r <= 0) return 0;
  return static_cast<__mmask16>((1u << r) - 1u);
}

// dst[0, n) = 0
void zero_row(float* dst, int64_t n) {
  for (int64_t q = 0; q < n; q += 16) {
    _mm512_mask_storeu_ps(dst + q, lane_mask(n - q), _mm512_setzero_ps());
  }
}

// dst[q] = s[q] for q in [lo, hi), 0 elsewhere in [0, n)
void copy_row(float* dst, const float* s, int64_t n, int64_t lo, int64_t hi) {
  for (int64_t q = 0; q < n; q += 16) {
    const __mmask16 ld = static_cast<__mmask16>(lane_mask(hi - q) & ~lane_mask(lo - q));
    _mm512_mask_storeu_ps(dst + q, lane_mask(n - q), _mm512_maskz_loadu_ps(ld, s + q));
  }
}

// One tap row of col for column stride 1 and OW <= 16: the OH segments (OW values each,
// zero outside [lo, hi)) are packed back to back into full 16-wide vectors with two lane
// permutes, so the row is written with whole-vector stores instead of OH short masked ones.
void im2col_tap_packed(const ConvGeom* g, const float* xc, int64_t i, int64_t off, int64_t lo,
                       int64_t hi, float* row) {
  const int64_t OW = g->OW;
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __mmask16 seg_m = static_cast<__mmask16>(lane_mask(hi) & ~lane_mask(lo));
  __m512 acc = _mm512_setzero_ps();
  int64_t fill = 0;  // valid leading lanes of acc
  float* out = row;
  for (int64_t oh = 0; oh < g->OH; ++oh) {
    const int64_t ih = oh * g->sh - g->pt + i * g->dh;
    __m512 seg = _mm512_setzero_ps();
    if (ih >= 0 && ih < g->H) seg = _mm512_maskz_loadu_ps(seg_m, xc + ih * g->W + off);
    // perm = seg rotated up by fill lanes; merged = acc's lanes [0, fill), then seg's.
    const __m512i take = _mm512_add_epi32(iota, _mm512_set1_epi32(static_cast<int>(16 - fill)));
    const __m512 perm = _mm512_permutexvar_ps(take, seg);
    const __m512 merged = _mm512_mask_blend_ps(static_cast<__mmask16>(lane_mask(fill)), perm, acc);
    // Store only complete vectors (unmasked); a partial one stays in a register.
    if (fill + OW >= 16) {
      _mm512_storeu_ps(out, merged);
      out += 16;
      acc = perm;  // seg's lanes not yet stored, already at the bottom
      fill = fill + OW - 16;
    } else {
      acc = merged;
      fill += OW;
    }
  }
  if (fill > 0) _mm512_mask_storeu_ps(out, lane_mask(fill), acc);
}

// Other rows are a few masked vector ops each. For stride 1, s = input row + off: lanes
// outside [lo, hi) are masked off and never read (masked loads do not fault).
void im2col(const ConvGeom* g, const float* x, float* col, int64_t ld) {
  const int64_t Cg = g->C / g->groups, OW = g->OW;
  for (int64_t c = 0; c < Cg; ++c) {
    for (int64_t i = 0; i < g->kh; ++i) {
      for (int64_t j = 0; j < g->kw; ++j) {
        float* row = col + ((c * g->kh + i) * g->kw + j) * ld;
        const int64_t off = j * g->dw - g->pl;
        int64_t lo, hi;
        valid_range(off, g->sw, g->W, OW, &lo, &hi);
        if (g->sw == 1 && OW <= 16) {
          im2col_tap_packed(g, x + c * g->H * g->W, i, off, lo, hi, row);
          continue;
        }
        for (int64_t oh = 0; oh < g->OH; ++oh) {
          float* dst = row + oh * OW;
          const int64_t ih = oh * g->sh - g->pt + i * g->dh;
          if (ih < 0 || ih >= g->H) {
            zero_row(dst, OW);
            continue;
          }
          const float* src = x + (c * g->H + ih) * g->W;
          if (g->sw == 1) {
            copy_row(dst, src + off, OW, lo, hi);
          } else {
            zero_row(dst, OW);
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow * g->sw + off];
          }
        }
      }
    }
  }
}

// Gather form for column stride 1: each 16-wide piece of an input row is loaded once, gets
// its taps added in register, and is stored once (the scatter form's overlapping
// read-modify-write rows stall on store forwarding). Each element still receives its taps in
// (i, j) order, each at most once, starting from x's value: the scatter's sum, bit for bit.
// mask_add leaves lanes without a tap untouched (adding +0 would turn -0 into +0).
void col2im(const ConvGeom* g, const float* col, int64_t ld, float* x) {
  if (g->sw != 1 || g->kw > 32) return col2im_scatter(g, col, ld, x);
  const int64_t Cg = g->C / g->groups, OW = g->OW, W = g->W;
  __mmask16 mj[32];  // per tap column j: the lanes of this 16-wide piece it reaches
  for (int64_t q = 0; q < W; q += 16) {
    const __mmask16 mw = lane_mask(W - q);
    for (int64_t j = 0; j < g->kw; ++j) {
      const int64_t base = j * g->dw - g->pl;  // iw = ow + base
      mj[j] = static_cast<__mmask16>(mw & lane_mask(base + OW - q) & ~lane_mask(base - q));
    }
    for (int64_t c = 0; c < Cg; ++c) {
      for (int64_t ih = 0; ih < g->H; ++ih) {
        float* xr = x + (c * g->H + ih) * W + q;
        __m512 acc = _mm512_maskz_loadu_ps(mw, xr);
        for (int64_t i = 0; i < g->kh; ++i) {
          const int64_t t = ih + g->pt - i * g->dh;  // = oh * sh
          if (t < 0 || t % g->sh != 0 || t / g->sh >= g->OH) continue;
          const float* rows = col + (c * g->kh + i) * g->kw * ld + (t / g->sh) * OW + q + g->pl;
          for (int64_t j = 0; j < g->kw; ++j) {
            if (mj[j] == 0) continue;
            const __m512 v = _mm512_maskz_loadu_ps(mj[j], rows + j * (ld - g->dw));
            acc = _mm512_mask_add_ps(acc, mj[j], acc, v);
          }
        }
        _mm512_mask_storeu_ps(xr, mw, acc);
      }
    }
  }
}

template <int OB>
void block(const float* xp, int64_t Wp, const float* w, const float* bias, int64_t o0,
           int64_t kh, int64_t kw, int64_t OH, int64_t OW, bool relu, float* y,
           int64_t y_stride) {
  const int64_t taps = kh * kw;
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t oh = 0; oh < OH; ++oh) {
    for (int64_t ow0 = 0; ow0 < OW; ow0 += 32) {
      const __mmask16 m0 = lane_mask(OW - ow0), m1 = lane_mask(OW - ow0 - 16);
      __m512 acc0[OB], acc1[OB];
      for (int b = 0; b < OB; ++b) acc0[b] = acc1[b] = zero;
      for (int64_t i = 0; i < kh; ++i) {
        const float* xr = xp + (oh + i) * Wp + ow0;
        for (int64_t j = 0; j < kw; ++j) {
          const __m512 x0 = _mm512_maskz_loadu_ps(m0, xr + j);
          const __m512 x1 = _mm512_maskz_loadu_ps(m1, xr + j + 16);
          const float* wt = w + o0 * taps + i * kw + j;
          for (int b = 0; b < OB; ++b) {
            const __m512 wv = _mm512_set1_ps(wt[b * taps]);
            acc0[b] = _mm512_fmadd_ps(x0, wv, acc0[b]);
            acc1[b] = _mm512_fmadd_ps(x1, wv, acc1[b]);
          }
        }
      }
      for (int b = 0; b < OB; ++b) {
        __m512 v0 = acc0[b], v1 = acc1[b];
        if (bias != nullptr) {
          const __m512 bv = _mm512_set1_ps(bias[o0 + b]);
          v0 = _mm512_add_ps(v0, bv);
          v1 = _mm512_add_ps(v1, bv);
        }
        if (relu) {  // max(0, v) keeps NaN (second operand wins on unordered), as torch
          v0 = _mm512_max_ps(zero, v0);
          v1 = _mm512_max_ps(zero, v1);
        }
        float* yr = y + (o0 + b) * y_stride + oh * OW + ow0;
        _mm512_mask_storeu_ps(yr, m0, v0);
        _mm512_mask_storeu_ps(yr + 16, m1, v1);
      }
    }
  }
}

void direct_c1(const float* xp, int64_t Hp, int64_t Wp, const float* w, const float* bias,
               int64_t O, int64_t kh, int64_t kw, int64_t OH, int64_t OW, bool relu, float* y,
               int64_t y_stride) {
  int64_t o = 0;
  for (; o + 8 <= O; o += 8) block<8>(xp, Wp, w, bias, o, kh, kw, OH, OW, relu, y, y_stride);
  if (o + 4 <= O) { block<4>(xp, Wp, w, bias, o, kh, kw, OH, OW, relu, y, y_stride); o += 4; }
  if (o + 2 <= O) { block<2>(xp, Wp, w, bias, o, kh, kw, OH, OW, relu, y, y_stride); o += 2; }
  if (o < O) block<1>(xp, Wp, w, bias, o, kh, kw, OH, OW, relu, y, y_stride);
}

// direct_c1_relu_pool2x2's register block: conv rows 2ph and 2ph + 1 (two zmm each, masked
// at the row end) x OB output channels. Input row 2ph + i feeds tap row i of the upper conv
// row and tap row i - 1 of the lower one, so each output still sums its taps in (i, j) order
// from 0 with the same FMAs as block(); then bias, relu, and max_pool2d_2x2's window rule
// (max_of_2x2) on the even / odd columns, which a permute takes out of the two row vectors.
template <int OB>
void pool_block(const float* xp, int64_t Wp, const float* w, const float* bias, int64_t o0,
                int64_t OH, int64_t OW, float* pooled, uint8_t* codes, int64_t out_stride) {
  const int64_t PH = OH / 2, PW = OW / 2;
  const __mmask16 m0 = lane_mask(OW), m1 = lane_mask(OW - 16), pm = lane_mask(PW);
  const __m512 zero = _mm512_setzero_ps();
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const float* wo = w + o0 * 9;
  for (int64_t ph = 0; ph < PH; ++ph) {
    __m512 acc[OB][2][2];  // [channel][conv row][half]
    for (int b = 0; b < OB; ++b) acc[b][0][0] = acc[b][0][1] = acc[b][1][0] = acc[b][1][1] = zero;
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      const float* xr = xp + (2 * ph + i) * Wp;
#pragma GCC unroll 3
      for (int j = 0; j < 3; ++j) {
        const __m512 x0 = _mm512_maskz_loadu_ps(m0, xr + j);
        const __m512 x1 = _mm512_maskz_loadu_ps(m1, xr + j + 16);
#pragma GCC unroll 8
        for (int b = 0; b < OB; ++b) {
          if (i < 3) {
            const __m512 wv = _mm512_set1_ps(wo[b * 9 + i * 3 + j]);
            acc[b][0][0] = _mm512_fmadd_ps(x0, wv, acc[b][0][0]);
            acc[b][0][1] = _mm512_fmadd_ps(x1, wv, acc[b][0][1]);
          }
          if (i > 0) {
            const __m512 wv = _mm512_set1_ps(wo[b * 9 + (i - 1) * 3 + j]);
            acc[b][1][0] = _mm512_fmadd_ps(x0, wv, acc[b][1][0]);
            acc[b][1][1] = _mm512_fmadd_ps(x1, wv, acc[b][1][1]);
          }
        }
      }
    }
#pragma GCC unroll 8
    for (int b = 0; b < OB; ++b) {
      __m512 e[2], o[2];
      for (int r = 0; r < 2; ++r) {
        __m512 v0 = acc[b][r][0], v1 = acc[b][r][1];
        if (bias != nullptr) {
          const __m512 bv = _mm512_set1_ps(bias[o0 + b]);
          v0 = _mm512_add_ps(v0, bv);
          v1 = _mm512_add_ps(v1, bv);
        }
        v0 = _mm512_max_ps(zero, v0);  // relu: max(0, v) keeps NaN, as block()
        v1 = _mm512_max_ps(zero, v1);
        e[r] = _mm512_permutex2var_ps(v0, even, v1);
        o[r] = _mm512_permutex2var_ps(v0, odd, v1);
      }
      __m512 best;
      __m512i at;
      max_of_2x2(e[0], o[0], e[1], o[1], _mm512_set1_epi32(1), _mm512_set1_epi32(2),
                 _mm512_set1_epi32(3), &best, &at);
      const int64_t j = (o0 + b) * out_stride + ph * PW;
      _mm512_mask_storeu_ps(pooled + j, pm, best);
      _mm512_mask_cvtepi32_storeu_epi8(codes + j, pm, at);
    }
  }
}

void direct_c1_relu_pool2x2(const float* xp, int64_t Wp, const float* w, const float* bias,
                            int64_t O, int64_t OH, int64_t OW, float* pooled, uint8_t* codes,
                            int64_t out_stride) {
  int64_t o = 0;
  for (; o + 4 <= O; o += 4) pool_block<4>(xp, Wp, w, bias, o, OH, OW, pooled, codes, out_stride);
  if (o + 2 <= O) {
    pool_block<2>(xp, Wp, w, bias, o, OH, OW, pooled, codes, out_stride);
    o += 2;
  }
  if (o < O) pool_block<1>(xp, Wp, w, bias, o, OH, OW, pooled, codes, out_stride);
}

// OB output channels x 9 taps = 9*OB accumulators of 16 pixels; per 16 pixels of a row, OB gy
// loads and 9 input loads feed 9*OB FMAs. Lanes are summed by _mm512_reduce_add_ps at the end.
// OB = 3 (27 accumulators, 31 of the 32 registers) against 2: the reference conv1's weight
// gradient 0.212 -> 0.197 ms (fewer input loads per FMA); every sum's order is the same.
template <int OB>
void wgrad_block(const float* xp, int64_t Wp, const float* gy, int64_t OH, int64_t OW,
                 float* gw) {
  const int64_t P = OH * OW;
  __m512 acc[OB][9];
#pragma GCC unroll 16
  for (int b = 0; b < OB; ++b) {
#pragma GCC unroll 9
    for (int t = 0; t < 9; ++t) acc[b][t] = _mm512_setzero_ps();
  }
  for (int64_t oh = 0; oh < OH; ++oh) {
    for (int64_t ow0 = 0; ow0 < OW; ow0 += 16) {
      const __mmask16 m = lane_mask(OW - ow0);
      __m512 gv[OB];
#pragma GCC unroll 16
      for (int b = 0; b < OB; ++b) gv[b] = _mm512_maskz_loadu_ps(m, gy + b * P + oh * OW + ow0);
      const float* xr = xp + oh * Wp + ow0;
#pragma GCC unroll 9
      for (int t = 0; t < 9; ++t) {
        const __m512 xv = _mm512_maskz_loadu_ps(m, xr + (t / 3) * Wp + t % 3);
#pragma GCC unroll 16
        for (int b = 0; b < OB; ++b) acc[b][t] = _mm512_fmadd_ps(gv[b], xv, acc[b][t]);
      }
    }
  }
#pragma GCC unroll 16
  for (int b = 0; b < OB; ++b) {
#pragma GCC unroll 9
    for (int t = 0; t < 9; ++t) gw[b * 9 + t] += _mm512_reduce_add_ps(acc[b][t]);
  }
}

void wgrad_c1_3x3(const float* xp, int64_t Wp, const float* gy, int64_t O, int64_t OH,
                  int64_t OW, float* gw) {
  const int64_t P = OH * OW;
  int64_t o = 0;
  for (; o + 3 <= O; o += 3) wgrad_block<3>(xp, Wp, gy + o * P, OH, OW, gw + o * 9);
  for (; o + 2 <= O; o += 2) wgrad_block<2>(xp, Wp, gy + o * P, OH, OW, gw + o * 9);
  if (o < O) wgrad_block<1>(xp, Wp, gy + o * P, OH, OW, gw + o * 9);
}

// RB rows x 32 outputs of gx in 2*RB zmm accumulators (independent FMA chains: one row's
// chain is 9*O FMAs long, latency-bound alone). Per (o, gy row) the 48 gy columns from
// x0 + pl - 2 are loaded once (masked: columns outside gy read as 0, nothing outside it is
// touched), shifted in registers for the 3 taps of a row, and feed 6 FMAs per output row
// that reads them. Each element sums its terms in (o, i from 2 down to 0, j) order.
template <int RB>
void dgrad_rows(const float* gy, const float* w, int64_t O, int64_t OH, int64_t OW, int64_t W,
                int64_t pt, int64_t pl, int64_t h, int64_t x0, float* gx) {
  const int64_t P = OH * OW, cb = x0 + pl - 2;
  __mmask16 lm[3];  // gy columns cb + 16q + l inside [0, OW)
  for (int q = 0; q < 3; ++q) {
    const int64_t c = cb + 16 * q;
    lm[q] = static_cast<__mmask16>(lane_mask(OW - c) & ~lane_mask(-c));
  }
  __m512 a0[RB], a1[RB];
#pragma GCC unroll 4
  for (int k = 0; k < RB; ++k) a0[k] = a1[k] = _mm512_setzero_ps();
  for (int64_t o = 0; o < O; ++o) {
    __m512 wv[9];
#pragma GCC unroll 9
    for (int t = 0; t < 9; ++t) wv[t] = _mm512_set1_ps(w[o * 9 + t]);
    // gy row r = h + pt - 2 + d reaches output rows h + k through tap row i = k + 2 - d
#pragma GCC unroll 6
    for (int d = 0; d < RB + 2; ++d) {
      const int64_t r = h + pt - 2 + d;
      if (r < 0 || r >= OH) continue;
      const float* g = gy + o * P + r * OW + cb;
      const __m512i l0 = _mm512_castps_si512(_mm512_maskz_loadu_ps(lm[0], g));
      const __m512i l1 = _mm512_castps_si512(_mm512_maskz_loadu_ps(lm[1], g + 16));
      const __m512i l2 = _mm512_castps_si512(_mm512_maskz_loadu_ps(lm[2], g + 32));
      // tap j reads column x + pl - j: shift 2 - j from cb
      const __m512 s0[3] = {_mm512_castsi512_ps(_mm512_alignr_epi32(l1, l0, 2)),
                            _mm512_castsi512_ps(_mm512_alignr_epi32(l1, l0, 1)),
                            _mm512_castsi512_ps(l0)};
      const __m512 s1[3] = {_mm512_castsi512_ps(_mm512_alignr_epi32(l2, l1, 2)),
                            _mm512_castsi512_ps(_mm512_alignr_epi32(l2, l1, 1)),
                            _mm512_castsi512_ps(l1)};
#pragma GCC unroll 4
      for (int k = 0; k < RB; ++k) {
        const int i = k + 2 - d;
        if (i < 0 || i > 2) continue;
#pragma GCC unroll 3
        for (int j = 0; j < 3; ++j) {
          a0[k] = _mm512_fmadd_ps(s0[j], wv[i * 3 + j], a0[k]);
          a1[k] = _mm512_fmadd_ps(s1[j], wv[i * 3 + j], a1[k]);
        }
      }
    }
  }
  const __mmask16 out0 = lane_mask(W - x0), out1 = lane_mask(W - x0 - 16);
#pragma GCC unroll 4
  for (int k = 0; k < RB; ++k) {
    _mm512_mask_storeu_ps(gx + (h + k) * W + x0, out0, a0[k]);
    _mm512_mask_storeu_ps(gx + (h + k) * W + x0 + 16, out1, a1[k]);
  }
}

void dgrad_c1_3x3(const float* gy, const float* w, int64_t O, int64_t OH, int64_t OW, int64_t H,
                  int64_t W, int64_t pt, int64_t pl, float* gx) {
  for (int64_t x0 = 0; x0 < W; x0 += 32) {
    int64_t h = 0;
    for (; h + 4 <= H; h += 4) dgrad_rows<4>(gy, w, O, OH, OW, W, pt, pl, h, x0, gx);
    for (; h < H; ++h) dgrad_rows<1>(gy, w, O, OH, OW, W, pt, pl, h, x0, gx);
  }
}

// Four accumulators (64 floats) per row hide the add latency; masked tail; fixed reduction.
void row_sums(const float* gy, int64_t rows, int64_t P, float* gb) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* g = gy + r * P;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t p = 0;
    for (; p + 64 <= P; p += 64) {
      a0 = _mm512_add_ps(a0, _mm512_loadu_ps(g + p));
      a1 = _mm512_add_ps(a1, _mm512_loadu_ps(g + p + 16));
      a2 = _mm512_add_ps(a2, _mm512_loadu_ps(g + p + 32));
      a3 = _mm512_add_ps(a3, _mm512_loadu_ps(g + p + 48));
    }
    for (; p < P; p += 16) a0 = _mm512_add_ps(a0, _mm512_maskz_loadu_ps(lane_mask(P - p), g + p));
    gb[r] += _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  }
}

// 16 columns b at a time: the column maps stay in registers, each row a is one masked gather
// (masked-off lanes are not read, so padding and the columns past nb cost no memory access).
void gather_panel(const float* src, const int32_t* ra, const int32_t* rh, const int32_t* rw,
                  int64_t na, const int32_t* cb, const int32_t* ch, const int32_t* cw, int64_t nb,
                  int64_t nr, int32_t H, int32_t W, float* dst) {
  const __m512i Hv = _mm512_set1_epi32(H), Wv = _mm512_set1_epi32(W);
  for (int64_t b0 = 0; b0 < nr; b0 += 16) {
    const __mmask16 lanes = lane_mask(nb - b0), keep = lane_mask(nr - b0);
    const __m512i cbv = _mm512_maskz_loadu_epi32(lanes, cb + b0);
    float* d = dst + b0;
    if (rh == nullptr) {
      for (int64_t a = 0; a < na; ++a, d += nr) {
        const __m512i idx = _mm512_add_epi32(cbv, _mm512_set1_epi32(ra[a]));
        const __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), lanes, idx, src, 4);
        _mm512_mask_storeu_ps(d, keep, v);
      }
      continue;
    }
    const __m512i chv = _mm512_maskz_loadu_epi32(lanes, ch + b0);
    const __m512i cwv = _mm512_maskz_loadu_epi32(lanes, cw + b0);
    for (int64_t a = 0; a < na; ++a, d += nr) {
      const __m512i h = _mm512_add_epi32(chv, _mm512_set1_epi32(rh[a]));
      const __m512i w = _mm512_add_epi32(cwv, _mm512_set1_epi32(rw[a]));
      const __mmask16 m = static_cast<__mmask16>(lanes & _mm512_cmplt_epu32_mask(h, Hv) &
                                                 _mm512_cmplt_epu32_mask(w, Wv));
      const __m512i idx = _mm512_add_epi32(cbv, _mm512_set1_epi32(ra[a]));
      const __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, src, 4);
      _mm512_mask_storeu_ps(d, keep, v);
    }
  }
}

// Each run is cut at the 16-lane vector boundaries into pieces once per call (PanelPieces,
// conv2d_rows_inl.h); per row, each vector is assembled in a register from zero-masked loads
// of its pieces (lanes outside every run stay 0) and written with one store.
void copy_panel(const float* src, const int32_t* ra, int64_t na, const int32_t* lo,
                const int32_t* hi, const int32_t* rel, int64_t nruns, int64_t nr, float* dst) {
  PanelPieces<16> pc;
  if (!pc.cut(lo, hi, rel, nruns, nr)) {  // pathological run count
    copy_panel_runs(src, ra, na, lo, hi, rel, nruns, nr, dst);
    return;
  }
  __mmask16 ld[PanelPieces<16>::kMaxPieces];
  for (int p = 0; p < pc.first[pc.nv]; ++p) {
    ld[p] = static_cast<__mmask16>(lane_mask(pc.lane_hi[p]) & ~lane_mask(pc.lane_lo[p]));
  }
  const int64_t nv = pc.nv;
  const __mmask16 last_keep = lane_mask(nr - (nv - 1) * 16);
  for (int64_t a = 0; a < na; ++a) {
    const float* s = src + ra[a];
    float* d = dst + a * nr;
    for (int64_t v = 0; v < nv; ++v) {
      __m512 acc = _mm512_setzero_ps();
      // Zero-masked loads OR'ed together: independent loads (a merge-masked load chain would
      // wait on each load's latency in turn).
      for (int p = pc.first[v]; p < pc.first[v + 1]; ++p) {
        acc = _mm512_or_ps(acc, _mm512_maskz_loadu_ps(ld[p], s + pc.off[p]));
      }
      if (v + 1 < nv || last_keep == 0xFFFF) {
        _mm512_storeu_ps(d + v * 16, acc);
      } else {
        _mm512_mask_storeu_ps(d + v * 16, last_keep, acc);
      }
    }
  }
}

}  // namespace

extern const ConvKernels conv2d_kernels_avx512 = {&im2col, &col2im, &direct_c1, &wgrad_c1_3x3,
                                                  &dgrad_c1_3x3, &row_sums, &gather_panel,
    &copy_panel, &direct_c1_relu_pool2x2};

}  // namespace fv
