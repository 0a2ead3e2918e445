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
//   void store_all(float* p, F v)        p[i] = v[i] for all L lanes (no mask: AVX2's masked
//                                        stores are slow on AMD)
//   F even(F a, F b), odd(F a, F b)      lane i = (a ++ b)[2i], (a ++ b)[2i + 1]
//   void interleave(F v0, F v1, F* lo, F* hi)
//                                        lo ++ hi = v0[0], v1[0], v0[1], v1[1], ...
//   K kor(K, K)
//   void transpose(const F* v, F* out)   out[k] lane i = v[i] lane k (an L x L transpose; the
//                                        vector ISAs only: winograd_weights_inl.h)
//   kPairs                               true if the Vec also has (then a Chunk may pack
//                                        two tile rows into one vector):
//   F compress(K m, F v), expand(K m, F v)   m's lanes of v to the front / the front to m
#pragma once

#include <cstdint>

#include "ops/conv2d/winograd.h"
#include "ops/conv2d/winograd_weights_inl.h"

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

// A chunk is what one pass of the transforms covers: one segment of <= L consecutive tiles of
// a tile row or, for rows of at most L/2 - 1 tiles on a Vec with kPairs, two consecutive tile
// rows at once (lanes [0, L/2) and [L/2, L)). With two segments, the "second vector" of each
// view is the second row's columns instead of the first row's columns L.. 2L: then the even /
// odd shuffles hand lanes [0, L/2) the first row's tiles and [L/2, L) the second's, and the
// interleave gives the first row's outputs in lo and the second's in hi, with no extra work.
// The two segments' tiles are consecutive in V / M / D (j1 = j0 + cnt0): compress / expand
// move them between lanes and memory in one access (two where a GEMM panel edge cuts them).
struct Seg {
  int64_t j, n, tr, tc0, cnt;  // first tile in the block, image, tile row, tile column, count
};

template <class Vec>
struct Chunk {
  Seg seg[2];
  int ns;      // segments: 1 or 2
  bool pairs;  // two-row layout (ns may still be 1: the block's odd last row)
  int64_t total() const { return seg[0].cnt + (ns > 1 ? seg[1].cnt : 0); }
  // Lanes that hold tiles, and vector v's segment and first column (see above).
  typename Vec::K tile_lanes() const {
    if (!pairs) return Vec::mask(0, seg[0].cnt);
    return Vec::kor(Vec::mask(0, seg[0].cnt),
                    ns > 1 ? Vec::mask(Vec::L / 2, Vec::L / 2 + seg[1].cnt) : Vec::mask(0, 0));
  }
  int seg_of(int v) const { return pairs ? v : 0; }
  int64_t col_of(int v) const { return pairs ? 0 : v * Vec::L; }
  bool has(int v) const { return !pairs || v < ns; }
};

template <class Vec, class Fn>
inline void for_each_chunk(const WinoGeom* g, int64_t t0, int64_t T, Fn fn) {
  constexpr int L = Vec::L;
  Chunk<Vec> ch{};
  ch.pairs = Vec::kPairs && 2 * g->TW + 2 <= L;
  const int64_t step = ch.pairs ? 2 * g->TW : g->TW;
  for (int64_t j = 0; j < T; j += step) {
    for (int64_t tc0 = 0; tc0 < g->TW; tc0 += L) {
      ch.ns = 0;
      for (int k = 0; k < (ch.pairs ? 2 : 1) && j + k * g->TW < T; ++k) {
        const int64_t row = (t0 + j + k * g->TW) / g->TW;
        ch.seg[k] = Seg{j + k * g->TW + tc0, row / g->TH, row % g->TH, tc0,
                        g->TW - tc0 < L ? g->TW - tc0 : L};
        ++ch.ns;
      }
      fn(ch);
    }
  }
}

// Where a chunk's tiles go in a WinoLayout: the chunk's total() consecutive tiles from j
// fill panel j / panel_w from offset j % panel_w, and those past its end start the next panel.
template <class Vec>
struct TileStore {
  int64_t off[2];          // from channel 0 of the plane, minus the lanes before each part
  typename Vec::K m[2];    // lanes (after compress) of each part
  typename Vec::K lanes;   // lanes holding tiles before compress
  bool split;              // the chunk crosses into the next panel (a second store)

  TileStore() = default;
  TileStore(const Chunk<Vec>& c, const WinoLayout& lay) : lanes(c.tile_lanes()) {
    const int64_t j = c.seg[0].j, total = c.total(), panel = j / lay.panel_w;
    const int64_t in_first = lay.panel_w - j % lay.panel_w;
    const int64_t n1 = total < in_first ? total : in_first;
    off[0] = panel * lay.panel_stride + j % lay.panel_w;
    off[1] = (panel + 1) * lay.panel_stride - n1;
    m[0] = Vec::mask(0, n1);
    m[1] = Vec::mask(n1, total);
    split = n1 < total;
  }

  // Stores the tiles of v (p: the plane's channel); with kPairs the tile lanes are first
  // compressed to the front (for a single segment they already are). The second store only
  // where the chunk crosses a panel edge (even an all-masked store costs a store slot).
  void store(float* p, typename Vec::F v) const {
    if constexpr (Vec::kPairs) v = Vec::compress(lanes, v);
    Vec::store(p + off[0], m[0], v);
    if (split) Vec::store(p + off[1], m[1], v);
  }
};

template <class Vec>
inline typename Vec::F load_tiles(typename Vec::K lanes, typename Vec::K first_n,
                                  const float* p) {
  typename Vec::F v = Vec::load(p, first_n);
  if constexpr (Vec::kPairs) v = Vec::expand(lanes, v);
  return v;
}

// Runs plan = make(chunk) for up to kBatch chunks at a time, then body(plan, c) for each
// channel c < nc, chunk after chunk. Channel-outer order walks each input and output plane
// sequentially; chunk-outer order hopped across all C planes for every chunk and stalled on
// the loads (perf: a third of the transform time on the first use of loaded data).
template <class Plan, class Vec, class Make, class Body>
void run_chunks(const WinoGeom* g, int64_t t0, int64_t T, int64_t nc, Make make, Body body) {
  constexpr int kBatch = 32;
  Plan plans[kBatch];
  int np = 0;
  auto flush = [&] {
    for (int64_t c = 0; c < nc; ++c) {
      for (int i = 0; i < np; ++i) body(plans[i], c);
    }
    np = 0;
  };
  for_each_chunk<Vec>(g, t0, T, [&](const Chunk<Vec>& ch) {
    plans[np++] = make(ch);
    if (np == kBatch) flush();
  });
  flush();
}

// Where a chunk reads an NCHW tensor (ch channels of rows x cols) for a transform whose tile
// window is R rows from row 2 tr - off_r, and S views of two vectors each: view s starts at
// column 2 tc0 - off_c + 2 s (the input transform: R = 4, S = 2 for columns b = 0,1 and 2,3;
// the dy transform: R = 2, S = 1). Lane i of a segment takes columns 2i and 2i + 1 of each
// view through the even / odd shuffles.
template <class Vec, int R, int S>
struct RowPlan {
  const float* src[2];          // [vector]: channel 0, first window row, the view-0 column
  typename Vec::K m[S][2][R];   // [view][vector][window row]: columns inside [0, cols), row
                                // inside [0, rows), vector in use (else 0: a zero, no access)
  TileStore<Vec> out;           // where the transformed tiles go

  RowPlan() = default;
  RowPlan(const Chunk<Vec>& c, const WinoLayout& lay, const float* base, int64_t ch_count,
          int64_t rows, int64_t cols, int64_t off_r, int64_t off_c)
      : out(c, lay) {
    constexpr int L = Vec::L;
    for (int v = 0; v < 2; ++v) {
      const Seg& sg = c.seg[c.seg_of(v)];
      const int64_t c0 = 2 * sg.tc0 - off_c + c.col_of(v), r0 = 2 * sg.tr - off_r;
      // The second vector: the second row segment, or columns past L of a long segment.
      const bool used = c.has(v) && (v == 0 || c.pairs || 2 * c.seg[0].cnt + 2 * (S - 1) > L);
      src[v] = base + sg.n * ch_count * rows * cols + r0 * cols + c0;
      for (int s = 0; s < S; ++s) {
        const typename Vec::K cm = Vec::mask(-(c0 + 2 * s), cols - (c0 + 2 * s));
        for (int a = 0; a < R; ++a) {
          m[s][v][a] = used && r0 + a >= 0 && r0 + a < rows ? cm : Vec::mask(0, 0);
        }
      }
    }
  }
};

template <class Vec>
void input_transform_t(const WinoGeom* g, const float* x, int64_t t0, int64_t T, float* V,
                       const WinoLayout* lay) {
  using F = typename Vec::F;
  using P = RowPlan<Vec, 4, 2>;
  const int64_t C = g->C, H = g->H, W = g->W;
  const int64_t cs = lay->c_stride, es = lay->es;
  auto make = [&](const Chunk<Vec>& ch) { return P(ch, *lay, x, C, H, W, g->pt, g->pl); };
  auto body = [&](const P& p, int64_t c) {
    F r[4][2][2];  // [row of B^T d][view][vector]
    for (int s = 0; s < 2; ++s) {
      for (int v = 0; v < 2; ++v) {
        const float* src = p.src[v] + c * H * W + 2 * s;
        F t[4];
        bt4<Vec>(Vec::load(src, p.m[s][v][0]), Vec::load(src + W, p.m[s][v][1]),
                 Vec::load(src + 2 * W, p.m[s][v][2]), Vec::load(src + 3 * W, p.m[s][v][3]), t);
        for (int a = 0; a < 4; ++a) r[a][s][v] = t[a];
      }
    }
    // Locals: the SIMD stores may alias anything, so fields read through pointers would be
    // reloaded after every store.
    const TileStore<Vec> out = p.out;
    float* dst = V + c * cs;
    for (int a = 0; a < 4; ++a) {
      F v[4];  // row a of B^T d B
      bt4<Vec>(Vec::even(r[a][0][0], r[a][0][1]), Vec::odd(r[a][0][0], r[a][0][1]),
               Vec::even(r[a][1][0], r[a][1][1]), Vec::odd(r[a][1][0], r[a][1][1]), v);
      for (int b = 0; b < 4; ++b) out.store(dst + (a * 4 + b) * es, v[b]);
    }
  };
  run_chunks<P, Vec>(g, t0, T, C, make, body);
}

template <class Vec>
struct OutputPlan {
  float* dst[2];                  // lo / hi destination rows (channel 0, a = 0)
  typename Vec::K out_m[2][2];    // [lo / hi][a]: columns inside the output, row inside, used
  typename Vec::K lanes, first_n;
  int64_t j;
};

template <class Vec>
void output_transform_t(const WinoGeom* g, const float* M, int64_t ldm, int64_t es, int64_t t0,
                        int64_t T, const float* bias, bool relu, float* y) {
  using F = typename Vec::F;
  using P = OutputPlan<Vec>;
  const int64_t O = g->O, OH = g->OH, OW = g->OW;
  // lo holds the first segment's output columns [0, L); hi its columns [L, 2L) or, with two
  // segments, the second segment's columns [0, L).
  auto make = [&](const Chunk<Vec>& ch) {
    P p;
    for (int h = 0; h < 2; ++h) {
      const bool used = ch.has(h);
      const Seg& sg = ch.seg[ch.pairs && used ? h : 0];
      const int64_t c0 = 2 * sg.tc0 + ch.col_of(h), ncols = OW - c0;
      const int64_t end = 2 * sg.cnt - ch.col_of(h) < ncols ? 2 * sg.cnt - ch.col_of(h) : ncols;
      p.dst[h] = y + sg.n * O * OH * OW + 2 * sg.tr * OW + c0;
      for (int a = 0; a < 2; ++a) {
        p.out_m[h][a] = used && 2 * sg.tr + a < OH ? Vec::mask(0, end) : Vec::mask(0, 0);
      }
    }
    p.lanes = ch.tile_lanes();
    p.first_n = Vec::mask(0, ch.total());
    p.j = ch.seg[0].j;
    return p;
  };
  auto body = [&](const P& p, int64_t o) {
    F col[4][2];  // col[b][a] = (A^T m)[a][b]
    const float* mo = M + o * ldm + p.j;
    for (int b = 0; b < 4; ++b) {
      at4<Vec>(load_tiles<Vec>(p.lanes, p.first_n, mo + (0 + b) * es),
               load_tiles<Vec>(p.lanes, p.first_n, mo + (4 + b) * es),
               load_tiles<Vec>(p.lanes, p.first_n, mo + (8 + b) * es),
               load_tiles<Vec>(p.lanes, p.first_n, mo + (12 + b) * es), col[b]);
    }
    const F bo = Vec::set1(bias != nullptr ? bias[o] : 0.0f);
    for (int a = 0; a < 2; ++a) {
      F r[2];
      at4<Vec>(col[0][a], col[1][a], col[2][a], col[3][a], r);
      for (int b = 0; b < 2; ++b) {
        if (bias != nullptr) r[b] = Vec::add(r[b], bo);
        if (relu) r[b] = Vec::max0(r[b]);
      }
      F lohi[2];
      Vec::interleave(r[0], r[1], &lohi[0], &lohi[1]);
      for (int h = 0; h < 2; ++h) Vec::store(p.dst[h] + o * OH * OW + a * OW, p.out_m[h][a], lohi[h]);
    }
  };
  run_chunks<P, Vec>(g, t0, T, O, make, body);
}

template <class Vec>
void dy_transform_t(const WinoGeom* g, const float* dy, int64_t t0, int64_t T, float* D,
                    const WinoLayout* lay) {
  using F = typename Vec::F;
  using P = RowPlan<Vec, 2, 1>;
  const int64_t O = g->O, OH = g->OH, OW = g->OW;
  const int64_t cs = lay->c_stride, es = lay->es;
  auto make = [&](const Chunk<Vec>& ch) { return P(ch, *lay, dy, O, OH, OW, 0, 0); };
  auto body = [&](const P& p, int64_t o) {
    F q[4][2];  // [row of A dy][vector]
    for (int v = 0; v < 2; ++v) {
      const float* src = p.src[v] + o * OH * OW;
      F t[4];
      a2<Vec>(Vec::load(src, p.m[0][v][0]), Vec::load(src + OW, p.m[0][v][1]), t);
      for (int a = 0; a < 4; ++a) q[a][v] = t[a];
    }
    const TileStore<Vec> out = p.out;  // locals: see input_transform_t
    float* dst = D + o * cs;
    for (int a = 0; a < 4; ++a) {
      F w[4];  // row a of A dy A^T
      a2<Vec>(Vec::even(q[a][0], q[a][1]), Vec::odd(q[a][0], q[a][1]), w);
      for (int b = 0; b < 4; ++b) out.store(dst + (a * 4 + b) * es, w[b]);
    }
  };
  run_chunks<P, Vec>(g, t0, T, O, make, body);
}

}  // namespace
}  // namespace fv

// Defines an ISA file's kernel table from its Vec type.
#define FV_WINOGRAD_TABLE(Vec, isa)                                                        \
  namespace fv {                                                                           \
  extern const WinogradKernels winograd_kernels_##isa = {                                  \
      &input_transform_t<Vec>, &output_transform_t<Vec>, &dy_transform_t<Vec>, nullptr,    \
      &weight_transform_t<Vec, 2>, nullptr};                                               \
  }
