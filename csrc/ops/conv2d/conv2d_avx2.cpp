// conv2d, AVX2 kernels (see conv2d.h): im2col, col2im, direct single channel (forward, with
// relu + 2x2 max pool fused, 3x3 data and weight gradients), bias-gradient row sums, GEMM
// panel gathers and copies. Partial vectors are stored through a buffer (store_first), never
// with vmaskmovps: on AMD Zen cores that store is microcoded (~12 cycles on Zen 3).
//
// direct_c1 register block: 16 output pixels of one row (two ymm, masked at the row end) x OB
// output channels (6 keeps 12 accumulators + 2 inputs + 1 weight within 16 registers); per tap one
// pair of input loads feeds 2*OB FMAs against broadcast weights. Every output element sums its
// taps in (i, j) order from 0 with FMA, whatever block it falls in.
#include <immintrin.h>

#include <cstdlib>
#include <cstring>
#include <new>

#include "core/simd_avx2_inl.h"
#include "ops/conv2d/conv2d.h"
#include "ops/conv2d/conv2d_rows_inl.h"

namespace fv {
namespace {

__m256i lane_mask(int64_t r) {
  const int n = r >= 8 ? 8 : (r <= 0 ? 0 : static_cast<int>(r));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// im2col/col2im rows are plain loops that the compiler vectorises: on AMD cores the AVX2
// masked store (vmaskmovps) is microcoded and made them slower than scalar code.
// dst[0, n) = 0
void zero_row(float* dst, int64_t n) {
  for (int64_t q = 0; q < n; ++q) dst[q] = 0.0f;
}

// dst[q] = s[q] for q in [lo, hi), 0 elsewhere in [0, n)
void copy_row(float* dst, const float* s, int64_t n, int64_t lo, int64_t hi) {
  for (int64_t q = 0; q < lo; ++q) dst[q] = 0.0f;
  for (int64_t q = lo; q < hi; ++q) dst[q] = s[q];
  for (int64_t q = hi; q < n; ++q) dst[q] = 0.0f;
}

// d[q] += s[q] for q in [lo, hi)
void add_row(float* d, const float* s, int64_t lo, int64_t hi) {
  for (int64_t q = lo; q < hi; ++q) d[q] += s[q];
}

// For stride 1, copy_row gets s = input row + off and reads s[q] for q in [lo, hi) only.
void im2col(const ConvGeom* g, const float* x, float* col, int64_t ld) {
  const int64_t Cg = g->C / g->groups, OW = g->OW;
  for (int64_t c = 0; c < Cg; ++c) {
    for (int64_t i = 0; i < g->kh; ++i) {
      for (int64_t j = 0; j < g->kw; ++j) {
        float* row = col + ((c * g->kh + i) * g->kw + j) * ld;
        const int64_t off = j * g->dw - g->pl;
        int64_t lo, hi;
        valid_range(off, g->sw, g->W, OW, &lo, &hi);
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

void col2im(const ConvGeom* g, const float* col, int64_t ld, float* x) {
  const int64_t Cg = g->C / g->groups, OW = g->OW;
  for (int64_t c = 0; c < Cg; ++c) {
    for (int64_t i = 0; i < g->kh; ++i) {
      for (int64_t j = 0; j < g->kw; ++j) {
        const float* row = col + ((c * g->kh + i) * g->kw + j) * ld;
        const int64_t off = j * g->dw - g->pl;
        int64_t lo, hi;
        valid_range(off, g->sw, g->W, OW, &lo, &hi);
        for (int64_t oh = 0; oh < g->OH; ++oh) {
          const int64_t ih = oh * g->sh - g->pt + i * g->dh;
          if (ih < 0 || ih >= g->H) continue;
          const float* src = row + oh * OW;
          float* dst = x + (c * g->H + ih) * g->W;
          if (g->sw == 1) {
            add_row(dst + off, src, lo, hi);
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow * g->sw + off] += src[ow];
          }
        }
      }
    }
  }
}

template <int OB>
void block(const float* xp, int64_t Wp, const float* w, const float* bias, int64_t o0,
           int64_t kh, int64_t kw, int64_t OH, int64_t OW, bool relu, float* y,
           int64_t y_stride) {
  const int64_t taps = kh * kw;
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t oh = 0; oh < OH; ++oh) {
    for (int64_t ow0 = 0; ow0 < OW; ow0 += 16) {
      const __m256i m0 = lane_mask(OW - ow0), m1 = lane_mask(OW - ow0 - 8);
      __m256 acc0[OB], acc1[OB];
      for (int b = 0; b < OB; ++b) acc0[b] = acc1[b] = zero;
      for (int64_t i = 0; i < kh; ++i) {
        const float* xr = xp + (oh + i) * Wp + ow0;
        for (int64_t j = 0; j < kw; ++j) {
          const __m256 x0 = _mm256_maskload_ps(xr + j, m0);
          const __m256 x1 = _mm256_maskload_ps(xr + j + 8, m1);
          const float* wt = w + o0 * taps + i * kw + j;
          for (int b = 0; b < OB; ++b) {
            const __m256 wv = _mm256_broadcast_ss(wt + b * taps);
            acc0[b] = _mm256_fmadd_ps(x0, wv, acc0[b]);
            acc1[b] = _mm256_fmadd_ps(x1, wv, acc1[b]);
          }
        }
      }
      for (int b = 0; b < OB; ++b) {
        __m256 v0 = acc0[b], v1 = acc1[b];
        if (bias != nullptr) {
          const __m256 bv = _mm256_set1_ps(bias[o0 + b]);
          v0 = _mm256_add_ps(v0, bv);
          v1 = _mm256_add_ps(v1, bv);
        }
        if (relu) {  // max(0, v) keeps NaN (second operand wins on unordered), as torch
          v0 = _mm256_max_ps(zero, v0);
          v1 = _mm256_max_ps(zero, v1);
        }
        float* yr = y + (o0 + b) * y_stride + oh * OW + ow0;
        store_first(yr, v0, OW - ow0);
        store_first(yr + 8, v1, OW - ow0 - 8);
      }
    }
  }
}

void direct_c1(const float* xp, int64_t Hp, int64_t Wp, const float* w, const float* bias,
               int64_t O, int64_t kh, int64_t kw, int64_t OH, int64_t OW, bool relu, float* y,
               int64_t y_stride) {
  int64_t o = 0;
  for (; o + 6 <= O; o += 6) block<6>(xp, Wp, w, bias, o, kh, kw, OH, OW, relu, y, y_stride);
  if (o + 4 <= O) { block<4>(xp, Wp, w, bias, o, kh, kw, OH, OW, relu, y, y_stride); o += 4; }
  if (o + 2 <= O) { block<2>(xp, Wp, w, bias, o, kh, kw, OH, OW, relu, y, y_stride); o += 2; }
  if (o < O) block<1>(xp, Wp, w, bias, o, kh, kw, OH, OW, relu, y, y_stride);
}

// direct_c1_relu_pool2x2's input plane with its even and odd columns apart, rows of
// kSplitW: even[r][k] = xp[r][2k], odd[r][k] = xp[r][2k + 1], 0 past the row. A vector of
// even (odd) conv outputs from column c0 then reads its taps j = 0, 1, 2 as plain loads of
// even[c0 / 2], odd[c0 / 2], even[c0 / 2 + 1] (odd[c0 / 2], even[c0 / 2 + 1], odd[c0 / 2 + 1]):
// the window's columns come out already apart, with no deinterleave of the conv's rows.
constexpr int64_t kSplitW = 24;  // >= the most read: kPoolFusedMaxOW / 4 + 9 floats
static_assert(kSplitW >= kPoolFusedMaxOW / 4 + 9, "split rows too short");

struct SplitPlane {
  const float* even;
  const float* odd;
};

// A thread's split planes, kept across calls: a plain malloc'd buffer, not a std::vector,
// whose member functions this AVX2 file would export as weak symbols the linker could pick
// for baseline code (tests/test_build.py).
struct SplitBuffer {
  float* p = nullptr;
  int64_t cap = 0;
  ~SplitBuffer() { std::free(p); }
  float* get(int64_t n) {
    if (n > cap) {
      std::free(p);
      p = static_cast<float*>(std::malloc(static_cast<size_t>(n) * sizeof(float)));
      if (p == nullptr) {
        cap = 0;
        throw std::bad_alloc();
      }
      cap = n;
    }
    return p;
  }
};

SplitPlane split_columns(const float* xp, int64_t rows, int64_t Wp) {
  thread_local SplitBuffer buf;
  const int64_t n = 2 * rows * kSplitW;
  float* even = buf.get(n);
  std::memset(even, 0, static_cast<size_t>(n) * sizeof(float));
  float* odd = even + rows * kSplitW;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < Wp; ++c) {
      (c % 2 == 0 ? even : odd)[r * kSplitW + c / 2] = xp[r * Wp + c];
    }
  }
  return SplitPlane{even, odd};
}

// direct_c1_relu_pool2x2's register block: conv rows 2ph and 2ph + 1, 8 even and 8 odd
// columns from c0 (the pooled columns c0 / 2 .. + 8) x OB output channels (OB = 2: 8
// accumulators + 4 inputs + a weight of the 16 registers). Input row 2ph + i feeds tap row i
// of the upper conv row and tap row i - 1 of the lower one, so each output sums its taps in
// (i, j) order from 0 with the same FMAs as block(); then bias, relu, and max_pool2d_2x2's
// window rule on the even / odd columns. The conv's rows are never stored: on AMD Zen 3
// direct_c1 then max_forward_2x2 stored and reloaded 26x26 planes (the reference conv1: ~2.5%
// of the training step in the separate pool alone).
template <int OB>
void pool_block(SplitPlane x, const float* w, const float* bias, int64_t o0, int64_t OH,
                int64_t OW, float* pooled, uint8_t* codes, int64_t out_stride) {
  const int64_t PH = OH / 2, PW = OW / 2;
  const __m256 zero = _mm256_setzero_ps();
  const __m256i c1 = _mm256_set1_epi32(1), c2 = _mm256_set1_epi32(2), c3 = _mm256_set1_epi32(3);
  const float* wo = w + o0 * 9;
  // Blocks of 8 pooled columns right to left: a row's last block is stored as 8 whole lanes
  // where those stay inside the plane (a partial store goes through a buffer, store_first,
  // and was a good part of this kernel on AMD Zen 3), and the lanes past the row land on the
  // next rows' first columns, which the blocks after it (or, with one block, the rows after
  // it) overwrite.
  for (int64_t c0 = (2 * PW - 1) / 16 * 16; c0 >= 0; c0 -= 16) {
    const int64_t np = PW - c0 / 2 < 8 ? PW - c0 / 2 : 8;
    for (int64_t ph = 0; ph < PH; ++ph) {
      __m256 acc[OB][2][2];  // [channel][conv row][even, odd columns]
      for (int b = 0; b < OB; ++b) acc[b][0][0] = acc[b][0][1] = acc[b][1][0] = acc[b][1][1] = zero;
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) {
        const int64_t at = (2 * ph + i) * kSplitW + c0 / 2;
        // tap j of the even outputs: in[j]; of the odd ones: in[j + 1]
        const __m256 in[4] = {_mm256_loadu_ps(x.even + at), _mm256_loadu_ps(x.odd + at),
                              _mm256_loadu_ps(x.even + at + 1), _mm256_loadu_ps(x.odd + at + 1)};
#pragma GCC unroll 3
        for (int j = 0; j < 3; ++j) {
#pragma GCC unroll 4
          for (int b = 0; b < OB; ++b) {
            if (i < 3) {
              const __m256 wv = _mm256_broadcast_ss(wo + b * 9 + i * 3 + j);
              acc[b][0][0] = _mm256_fmadd_ps(in[j], wv, acc[b][0][0]);
              acc[b][0][1] = _mm256_fmadd_ps(in[j + 1], wv, acc[b][0][1]);
            }
            if (i > 0) {
              const __m256 wv = _mm256_broadcast_ss(wo + b * 9 + (i - 1) * 3 + j);
              acc[b][1][0] = _mm256_fmadd_ps(in[j], wv, acc[b][1][0]);
              acc[b][1][1] = _mm256_fmadd_ps(in[j + 1], wv, acc[b][1][1]);
            }
          }
        }
      }
#pragma GCC unroll 4
      for (int b = 0; b < OB; ++b) {
        __m256 v[2][2];  // [conv row][even, odd]
        for (int r = 0; r < 2; ++r) {
          for (int h = 0; h < 2; ++h) {
            v[r][h] = acc[b][r][h];
            if (bias != nullptr) v[r][h] = _mm256_add_ps(v[r][h], _mm256_set1_ps(bias[o0 + b]));
            v[r][h] = _mm256_max_ps(zero, v[r][h]);  // relu: max(0, v) keeps NaN, as block()
          }
        }
        __m256 best;
        __m256i at;
        max_of_2x2(v[0][0], v[0][1], v[1][0], v[1][1], c1, c2, c3, &best, &at);
        const int64_t j = (o0 + b) * out_stride + ph * PW + c0 / 2;
        const int64_t n = ph * PW + c0 / 2 + 8 <= PH * PW ? 8 : np;
        store_first(pooled + j, best, n);
        store_codes(codes + j, at, n);
      }
    }
  }
}

void direct_c1_relu_pool2x2(const float* xp, int64_t Wp, const float* w, const float* bias,
                            int64_t O, int64_t OH, int64_t OW, float* pooled, uint8_t* codes,
                            int64_t out_stride) {
  const SplitPlane x = split_columns(xp, OH / 2 * 2 + 2, Wp);  // the rows the pool's windows read
  int64_t o = 0;
  for (; o + 2 <= O; o += 2) pool_block<2>(x, w, bias, o, OH, OW, pooled, codes, out_stride);
  if (o < O) pool_block<1>(x, w, bias, o, OH, OW, pooled, codes, out_stride);
}

// Lanes summed in a fixed order (wgrad_c1_3x3's last step).
float hsum(__m256 v) {
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

// wgrad_c1_3x3 for CB output channels, one tap row i at a time: CB x 3 accumulators of 8
// pixels (9 + 3 inputs + gy of 16 registers at CB = 3), so each input row is loaded once per
// CB channels (3 loads and CB gy loads per 3 CB FMAs; one channel with all 9 taps took 10
// loads per 9 FMAs, and the loads bound this kernel). Whole vectors of a row are read with
// plain loads, only its tail masked. Each (channel, tap) sum runs over the pixels in the
// same order either way, then is added to gw.
template <int CB>
void wgrad_c1_channels(const float* xp, int64_t Wp, const float* gy, int64_t OH, int64_t OW,
                       float* gw) {
  const int64_t P = OH * OW, whole = OW / 8 * 8;
  const __m256i tail = lane_mask(OW - whole);
  const auto plain = [](const float* p) { return _mm256_loadu_ps(p); };
  const auto masked = [&](const float* p) { return _mm256_maskload_ps(p, tail); };
  for (int i = 0; i < 3; ++i) {
    __m256 acc[CB][3];
    for (int b = 0; b < CB; ++b) acc[b][0] = acc[b][1] = acc[b][2] = _mm256_setzero_ps();
    for (int64_t oh = 0; oh < OH; ++oh) {
      const float* xr = xp + (oh + i) * Wp;
      const float* gr = gy + oh * OW;
      const auto step = [&](int64_t ow0, const auto& load) {
        const __m256 x0 = load(xr + ow0), x1 = load(xr + ow0 + 1), x2 = load(xr + ow0 + 2);
        for (int b = 0; b < CB; ++b) {
          const __m256 gv = load(gr + b * P + ow0);
          acc[b][0] = _mm256_fmadd_ps(gv, x0, acc[b][0]);
          acc[b][1] = _mm256_fmadd_ps(gv, x1, acc[b][1]);
          acc[b][2] = _mm256_fmadd_ps(gv, x2, acc[b][2]);
        }
      };
      for (int64_t ow0 = 0; ow0 < whole; ow0 += 8) step(ow0, plain);
      if (whole < OW) step(whole, masked);
    }
    for (int b = 0; b < CB; ++b) {
      for (int j = 0; j < 3; ++j) gw[b * 9 + i * 3 + j] += hsum(acc[b][j]);
    }
  }
}

void wgrad_c1_3x3(const float* xp, int64_t Wp, const float* gy, int64_t O, int64_t OH,
                  int64_t OW, float* gw) {
  const int64_t P = OH * OW;
  int64_t o = 0;
  for (; o + 3 <= O; o += 3) wgrad_c1_channels<3>(xp, Wp, gy + o * P, OH, OW, gw + o * 9);
  if (o + 2 <= O) {
    wgrad_c1_channels<2>(xp, Wp, gy + o * P, OH, OW, gw + o * 9);
    o += 2;
  }
  if (o < O) wgrad_c1_channels<1>(xp, Wp, gy + o * P, OH, OW, gw + o * 9);
}

// Lanes l < 8 with lo <= base + l < hi, as a maskload mask.
__m256i lanes_between(int64_t base, int64_t lo, int64_t hi) {
  const __m256i idx = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(base)),
                                       _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256i ge = _mm256_cmpgt_epi32(idx, _mm256_set1_epi32(static_cast<int>(lo) - 1));
  return _mm256_and_si256(ge, _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(hi)), idx));
}

// RB rows x 16 outputs of gx in 2*RB ymm accumulators (independent FMA chains: one row's
// chain is 9*O FMAs long, latency-bound alone). Per (o, gy row) the row is read at the 3 tap
// shifts (masked loads: columns outside gy read as 0, nothing outside it is touched), each
// feeding 2 FMAs per output row that reads it. Each element sums its terms in (o, i from 2
// down to 0, j) order.
// The row end is stored through a buffer (store_first: a masked store is microcoded on AMD).
template <int RB>
void dgrad_rows(const float* gy, const float* w, int64_t O, int64_t OH, int64_t OW, int64_t W,
                int64_t pt, int64_t pl, int64_t h, int64_t x0, float* gx) {
  const int64_t P = OH * OW;
  __m256i m0[3], m1[3];  // lanes whose gy column x + pl - j lies in [0, OW), x < W
  for (int j = 0; j < 3; ++j) {
    const int64_t c0 = x0 + pl - j;
    m0[j] = _mm256_and_si256(lanes_between(c0, 0, OW), lanes_between(x0, 0, W));
    m1[j] = _mm256_and_si256(lanes_between(c0 + 8, 0, OW), lanes_between(x0 + 8, 0, W));
  }
  __m256 a0[RB], a1[RB];
#pragma GCC unroll 4
  for (int k = 0; k < RB; ++k) a0[k] = a1[k] = _mm256_setzero_ps();
  for (int64_t o = 0; o < O; ++o) {
    const float* wo = w + o * 9;
    // gy row r = h + pt - 2 + d reaches output rows h + k through tap row i = k + 2 - d
#pragma GCC unroll 6
    for (int d = 0; d < RB + 2; ++d) {
      const int64_t r = h + pt - 2 + d;
      if (r < 0 || r >= OH) continue;
      const float* g = gy + o * P + r * OW + x0 + pl;
#pragma GCC unroll 3
      for (int j = 0; j < 3; ++j) {
        const __m256 s0 = _mm256_maskload_ps(g - j, m0[j]);
        const __m256 s1 = _mm256_maskload_ps(g - j + 8, m1[j]);
#pragma GCC unroll 4
        for (int k = 0; k < RB; ++k) {
          const int i = k + 2 - d;
          if (i < 0 || i > 2) continue;
          const __m256 wv = _mm256_set1_ps(wo[i * 3 + j]);
          a0[k] = _mm256_fmadd_ps(s0, wv, a0[k]);
          a1[k] = _mm256_fmadd_ps(s1, wv, a1[k]);
        }
      }
    }
  }
  for (int k = 0; k < RB; ++k) {
    float* dst = gx + (h + k) * W + x0;
    store_first(dst, a0[k], W - x0);
    store_first(dst + 8, a1[k], W - x0 - 8);
  }
}

void dgrad_c1_3x3(const float* gy, const float* w, int64_t O, int64_t OH, int64_t OW, int64_t H,
                  int64_t W, int64_t pt, int64_t pl, float* gx) {
  for (int64_t x0 = 0; x0 < W; x0 += 16) {
    int64_t h = 0;
    for (; h + 4 <= H; h += 4) dgrad_rows<4>(gy, w, O, OH, OW, W, pt, pl, h, x0, gx);
    for (; h < H; ++h) dgrad_rows<1>(gy, w, O, OH, OW, W, pt, pl, h, x0, gx);
  }
}

// Four accumulators (32 floats) per row hide the add latency; masked tail; fixed reduction.
void row_sums(const float* gy, int64_t rows, int64_t P, float* gb) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* g = gy + r * P;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t p = 0;
    for (; p + 32 <= P; p += 32) {
      a0 = _mm256_add_ps(a0, _mm256_loadu_ps(g + p));
      a1 = _mm256_add_ps(a1, _mm256_loadu_ps(g + p + 8));
      a2 = _mm256_add_ps(a2, _mm256_loadu_ps(g + p + 16));
      a3 = _mm256_add_ps(a3, _mm256_loadu_ps(g + p + 24));
    }
    for (; p < P; p += 8) a0 = _mm256_add_ps(a0, _mm256_maskload_ps(g + p, lane_mask(P - p)));
    gb[r] += hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  }
}

// 8 columns b at a time, one masked gather per row a (masked-off lanes are not read). Rows
// shorter than 8 (nr = the A tile's 6) are stored lane by lane: vmaskmovps is slow on AMD.
void gather_panel(const float* src, const int32_t* ra, const int32_t* rh, const int32_t* rw,
                  int64_t na, const int32_t* cb, const int32_t* ch, const int32_t* cw, int64_t nb,
                  int64_t nr, int32_t H, int32_t W, float* dst) {
  const __m256i sign = _mm256_set1_epi32(static_cast<int>(0x80000000u));
  // (unsigned)v < n  <=>  (n ^ sign) > (v ^ sign) as signed
  const __m256i Hs = _mm256_xor_si256(_mm256_set1_epi32(H), sign);
  const __m256i Ws = _mm256_xor_si256(_mm256_set1_epi32(W), sign);
  for (int64_t b0 = 0; b0 < nr; b0 += 8) {
    alignas(32) int32_t t_cb[8], t_ch[8], t_cw[8];
    for (int q = 0; q < 8; ++q) {
      const bool in = b0 + q < nb;
      t_cb[q] = in ? cb[b0 + q] : 0;
      t_ch[q] = in && rh != nullptr ? ch[b0 + q] : 0;
      t_cw[q] = in && rh != nullptr ? cw[b0 + q] : 0;
    }
    const __m256i lanes = lane_mask(nb - b0);
    const __m256i cbv = _mm256_load_si256(reinterpret_cast<const __m256i*>(t_cb));
    const __m256i chv = _mm256_load_si256(reinterpret_cast<const __m256i*>(t_ch));
    const __m256i cwv = _mm256_load_si256(reinterpret_cast<const __m256i*>(t_cw));
    const int64_t width = nr - b0 < 8 ? nr - b0 : 8;
    float* d = dst + b0;
    for (int64_t a = 0; a < na; ++a, d += nr) {
      __m256i m = lanes;
      if (rh != nullptr) {
        const __m256i h = _mm256_xor_si256(_mm256_add_epi32(chv, _mm256_set1_epi32(rh[a])), sign);
        const __m256i w = _mm256_xor_si256(_mm256_add_epi32(cwv, _mm256_set1_epi32(rw[a])), sign);
        m = _mm256_and_si256(m, _mm256_and_si256(_mm256_cmpgt_epi32(Hs, h), _mm256_cmpgt_epi32(Ws, w)));
      }
      const __m256i idx = _mm256_add_epi32(cbv, _mm256_set1_epi32(ra[a]));
      const __m256 v = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), src, idx,
                                                _mm256_castsi256_ps(m), 4);
      store_first(d, v, width);
    }
  }
}

// copy_panel as AVX-512's: each run is cut at the 8-lane vector boundaries into pieces once
// per call (PanelPieces, conv2d_rows_inl.h); per row, each vector is the OR of zero-masked
// loads of its pieces (a piece's lanes load straight into place; lanes outside every run stay
// 0), written with a plain store (store_first at a partial end). Per element the plain loop (copy_panel_runs) spent ~6
// cycles on AMD Zen 3 (runs of kw = 3: ~32% of the reference conv3's weight gradient).
void copy_panel(const float* src, const int32_t* ra, int64_t na, const int32_t* lo,
                const int32_t* hi, const int32_t* rel, int64_t nruns, int64_t nr, float* dst) {
  PanelPieces<8> pc;
  if (!pc.cut(lo, hi, rel, nruns, nr)) {  // pathological run count
    copy_panel_runs(src, ra, na, lo, hi, rel, nruns, nr, dst);
    return;
  }
  __m256i ld[PanelPieces<8>::kMaxPieces];
  for (int p = 0; p < pc.first[pc.nv]; ++p) {
    ld[p] = _mm256_andnot_si256(lane_mask(pc.lane_lo[p]), lane_mask(pc.lane_hi[p]));
  }
  for (int64_t a = 0; a < na; ++a) {
    const float* s = src + ra[a];
    float* d = dst + a * nr;
    for (int64_t v = 0; v < pc.nv; ++v) {
      __m256 acc = _mm256_setzero_ps();
      for (int p = pc.first[v]; p < pc.first[v + 1]; ++p) {
        acc = _mm256_or_ps(acc, _mm256_maskload_ps(s + pc.off[p], ld[p]));
      }
      store_first(d + v * 8, acc, nr - v * 8);
    }
  }
}

}  // namespace

extern const ConvKernels conv2d_kernels_avx2 = {&im2col, &col2im, &direct_c1, &wgrad_c1_3x3,
                                                &dgrad_c1_3x3, &row_sums, &gather_panel,
    &copy_panel, &direct_c1_relu_pool2x2};

}  // namespace fv
