// The Winograd F(2x2, 3x3) tile transforms (winograd.h), written once over a vector type so
// the scalar, AVX2 and AVX-512 files run the same operations in the same order (the same
// bits). Included by ISA files: everything here has internal linkage.
//
// Lanes are consecutive tiles of one tile row (chunks of L). Blocks hold whole tile rows
// (the driver makes T a multiple of TW), so a chunk's tiles are consecutive in V / M / D.
// A tile row's input rows are combined first (whole-row vector ops on masked contiguous
// loads), then even / odd lane shuffles hand each lane its tile's columns; outputs are
// interleaved back into rows the same way. No gathers, no scatters, nothing goes through
// memory between the two 1-D steps (a store then an overlapping unaligned reload stalls on
// store forwarding).
//
// Vec provides (all static):
//   L; F (float vector); K (lane mask)
//   F zero(), add(F, F), sub(F, F), neg(F), max0(F), set1(float)
//   K mask(int64_t lo, int64_t hi)       lanes lo <= i < hi
//   F load(const float* p, K m)          lane i = p[i] where m, else 0 (others unread)
//   void store(float* p, K m, F v)       p[i] = v[i] where m
//   F even(F a, F b), odd(F a, F b)      lane i = (a ++ b)[2i], (a ++ b)[2i + 1]
//   void interleave(F v0, F v1, F* lo, F* hi)
//                                        lo ++ hi = v0[0], v1[0], v0[1], v1[1], ...
#pragma once

#include <cstdint>

#include "ops/conv2d/winograd.h"

namespace fv {
namespace {

// r = B^T d along one line of 4: the input transform's 1-D step.
template <class Vec>
inline void bt4(typename Vec::F d0, typename Vec::F d1, typename Vec::F d2, typename Vec::F d3,
                typename Vec::F* r) {
  r[0] = Vec::sub(d0, d2);
  r[1] = Vec::add(d1, d2);
  r[2] = Vec::sub(d2, d1);
  r[3] = Vec::sub(d1, d3);
}

// r = A^T m along one line of 4: the output transform's 1-D step.
template <class Vec>
inline void at4(typename Vec::F m0, typename Vec::F m1, typename Vec::F m2, typename Vec::F m3,
                typename Vec::F* r) {
  r[0] = Vec::add(Vec::add(m0, m1), m2);
  r[1] = Vec::sub(Vec::sub(m1, m2), m3);
}

// r = A p along one line of 2: the dy transform's 1-D step (the adjoint of at4).
template <class Vec>
inline void a2(typename Vec::F p0, typename Vec::F p1, typename Vec::F* r) {
  r[0] = p0;
  r[1] = Vec::add(p0, p1);
  r[2] = Vec::sub(p0, p1);
  r[3] = Vec::neg(p1);
}

// Calls fn(j, n, tr, tc0, cnt) for each chunk of <= L tiles of the block's tile rows: j is the
// chunk's first tile within the block.
template <int L, class Fn>
inline void for_each_chunk(const WinoGeom* g, int64_t t0, int64_t T, Fn fn) {
  for (int64_t j = 0; j < T; j += g->TW) {
    const int64_t row = (t0 + j) / g->TW, n = row / g->TH, tr = row % g->TH;
    for (int64_t tc0 = 0; tc0 < g->TW; tc0 += L) {
      fn(j + tc0, n, tr, tc0, g->TW - tc0 < L ? g->TW - tc0 : L);
    }
  }
}

template <class Vec>
void input_transform_t(const WinoGeom* g, const float* x, int64_t t0, int64_t T, float* V,
                       int64_t ldv, int64_t es) {
  using F = typename Vec::F;
  using K = typename Vec::K;
  constexpr int L = Vec::L;
  const int64_t C = g->C, H = g->H, W = g->W;
  for_each_chunk<L>(g, t0, T, [&](int64_t j, int64_t n, int64_t tr, int64_t tc0, int64_t cnt) {
    // Lane i of tile column tc0 + i reads input columns iw0 + 2i + b, b < 4: two views of
    // 2L columns each, starting at iw0 (b = 0, 1) and iw0 + 2 (b = 2, 3).
    const int64_t iw0 = 2 * tc0 - g->pl, ih0 = 2 * tr - g->pt;
    K m[2][2];  // [view][vector]: columns inside [0, W)
    for (int s = 0; s < 2; ++s) {
      for (int v = 0; v < 2; ++v) {
        const int64_t first = iw0 + 2 * s + v * L;
        m[s][v] = Vec::mask(-first, W - first);
      }
    }
    bool row_in[4];
    for (int a = 0; a < 4; ++a) row_in[a] = ih0 + a >= 0 && ih0 + a < H;
    const K store_m = Vec::mask(0, cnt);
    // A view's second vector is needed only past column L (chunks of > L/2 - 1 tiles).
    const int nv = 2 * cnt + 2 > L ? 2 : 1;
    for (int64_t c = 0; c < C; ++c) {
      const float* xc = x + (n * C + c) * H * W + ih0 * W + iw0;
      F r[4][2][2];  // [row of B^T d][view][vector]
      for (int s = 0; s < 2; ++s) {
        for (int a = 0; a < 4; ++a) r[a][s][1] = Vec::zero();
        for (int v = 0; v < nv; ++v) {
          F d[4];
          for (int a = 0; a < 4; ++a) {
            d[a] = row_in[a] ? Vec::load(xc + a * W + 2 * s + v * L, m[s][v]) : Vec::zero();
          }
          F t[4];
          bt4<Vec>(d[0], d[1], d[2], d[3], t);
          for (int a = 0; a < 4; ++a) r[a][s][v] = t[a];
        }
      }
      for (int a = 0; a < 4; ++a) {
        F v[4];  // row a of B^T d B
        bt4<Vec>(Vec::even(r[a][0][0], r[a][0][1]), Vec::odd(r[a][0][0], r[a][0][1]),
                 Vec::even(r[a][1][0], r[a][1][1]), Vec::odd(r[a][1][0], r[a][1][1]), v);
        for (int b = 0; b < 4; ++b) Vec::store(V + (a * 4 + b) * es + c * ldv + j, store_m, v[b]);
      }
    }
  });
}

template <class Vec>
void output_transform_t(const WinoGeom* g, const float* M, int64_t ldm, int64_t es, int64_t t0,
                        int64_t T, const float* bias, bool relu, float* y) {
  using F = typename Vec::F;
  using K = typename Vec::K;
  constexpr int L = Vec::L;
  const int64_t O = g->O, OH = g->OH, OW = g->OW;
  for_each_chunk<L>(g, t0, T, [&](int64_t j, int64_t n, int64_t tr, int64_t tc0, int64_t cnt) {
    const int64_t ncols = OW - 2 * tc0 < 2 * cnt ? OW - 2 * tc0 : 2 * cnt;
    const K load_m = Vec::mask(0, cnt), lo_m = Vec::mask(0, ncols), hi_m = Vec::mask(0, ncols - L);
    for (int64_t o = 0; o < O; ++o) {
      F col[4][2];  // col[b][a] = (A^T m)[a][b]
      for (int b = 0; b < 4; ++b) {
        at4<Vec>(Vec::load(M + (0 + b) * es + o * ldm + j, load_m),
                 Vec::load(M + (4 + b) * es + o * ldm + j, load_m),
                 Vec::load(M + (8 + b) * es + o * ldm + j, load_m),
                 Vec::load(M + (12 + b) * es + o * ldm + j, load_m), col[b]);
      }
      for (int a = 0; a < 2 && 2 * tr + a < OH; ++a) {
        F r[2];
        at4<Vec>(col[0][a], col[1][a], col[2][a], col[3][a], r);
        for (int b = 0; b < 2; ++b) {
          if (bias != nullptr) r[b] = Vec::add(r[b], Vec::set1(bias[o]));
          if (relu) r[b] = Vec::max0(r[b]);
        }
        F lo, hi;
        Vec::interleave(r[0], r[1], &lo, &hi);
        float* dst = y + ((n * O + o) * OH + 2 * tr + a) * OW + 2 * tc0;
        Vec::store(dst, lo_m, lo);
        if (ncols > L) Vec::store(dst + L, hi_m, hi);
      }
    }
  });
}

template <class Vec>
void dy_transform_t(const WinoGeom* g, const float* dy, int64_t t0, int64_t T, float* D,
                    int64_t ldd, int64_t es) {
  using F = typename Vec::F;
  using K = typename Vec::K;
  constexpr int L = Vec::L;
  const int64_t O = g->O, OH = g->OH, OW = g->OW;
  for_each_chunk<L>(g, t0, T, [&](int64_t j, int64_t n, int64_t tr, int64_t tc0, int64_t cnt) {
    const int64_t ncols = OW - 2 * tc0;  // dy columns of the chunk inside the output
    const K m0 = Vec::mask(0, ncols), m1 = Vec::mask(0, ncols - L), store_m = Vec::mask(0, cnt);
    const bool second = 2 * tr + 1 < OH;
    const int nv = 2 * cnt > L ? 2 : 1;  // the second vector only for chunks of > L/2 tiles
    for (int64_t o = 0; o < O; ++o) {
      const float* p = dy + ((n * O + o) * OH + 2 * tr) * OW + 2 * tc0;
      F q[4][2];  // [row of A dy][vector]
      for (int a = 0; a < 4; ++a) q[a][1] = Vec::zero();
      for (int v = 0; v < nv; ++v) {
        const K mv = v == 0 ? m0 : m1;
        F t[4];
        a2<Vec>(Vec::load(p + v * L, mv), second ? Vec::load(p + OW + v * L, mv) : Vec::zero(), t);
        for (int a = 0; a < 4; ++a) q[a][v] = t[a];
      }
      for (int a = 0; a < 4; ++a) {
        F w[4];  // row a of A dy A^T
        a2<Vec>(Vec::even(q[a][0], q[a][1]), Vec::odd(q[a][0], q[a][1]), w);
        for (int b = 0; b < 4; ++b) Vec::store(D + (a * 4 + b) * es + o * ldd + j, store_m, w[b]);
      }
    }
  });
}

}  // namespace
}  // namespace fv

// Defines an ISA file's kernel table from its Vec type.
#define FV_WINOGRAD_TABLE(Vec, isa)                                              \
  namespace fv {                                                                 \
  extern const WinogradKernels winograd_kernels_##isa = {                        \
      &input_transform_t<Vec>, &output_transform_t<Vec>, &dy_transform_t<Vec>}; \
  }
