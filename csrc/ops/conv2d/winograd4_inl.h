// The Winograd F(4x4, 3x3) tile transforms (winograd.h), written once over a vector type so
// the scalar, AVX2 and AVX-512 files run the same operations in the same order (the same
// bits). Included by ISA files after winograd_inl.h: everything here has internal linkage.
//
// Integer-scaled matrices (points 0, +-1, +-2; Lavin & Gray 2015 divided by their fractions):
//   B^T  = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0;
//           0 4 0 -5 0 1]                                   (the input transform, as Lavin's)
//   G'   = [1 0 0; -1 -1 -1; -1 1 -1; 1 2 4; 1 -2 4; 0 0 1] (Lavin's G = S G',
//                                                            S = diag(1/4, 1/6, 1/6, 1/24, 1/24, 1))
//   A'^T = 24 A^T S = [6 4 4 1 1 0; 0 4 -4 2 -2 0; 0 4 4 4 4 0; 0 4 -4 8 -8 24]
// so y_tile = A'^T [ sum_c (G' g G'^T) (.) (B^T d B) ] A' / 576: every matrix is integer and
// the one division comes last. With small integers every value before it is an integer, exact
// while it stays below 2^24, and the channel sums (the GEMMs) are then exact in any order:
// every ISA gives the same bits. (Lavin's fractional G would round in the GEMM's inputs.)
//
// Lanes are L consecutive tiles of a block, in any images (small images have only a few tiles
// per row): each lane's 6x6 input window (4x4 for dy) is read through a per-lane offset and
// masks per window row and column (reads outside the tensor are never made: they are 0),
// either gathered element by element (scalar) or, with AVX2 and AVX-512, loaded row by row per
// lane and transposed into lanes (windows(); on the reference conv2 that took the data
// gradient from 1.43 to 1.13 ms with AVX-512; AVX2's gathers cost ~11 cycles each on AMD
// Zen 3). Windows 4 apart overlap by 2 columns, so the row-shuffle scheme of F(2x2) does not
// carry over. The output transform turns its 16 vectors of outputs (lanes = tiles) into 16
// outputs per tile (a transpose) and copies each tile's 4 rows out.
//
// Vec provides, on top of winograd_inl.h's list:
//   kRowLoads: whether windows() loads rows per lane and transposes (then
//   template <int R> void windows(const float* src, const int32_t* idx,
//                                 const uint8_t* lane_rows, int64_t ld, F* w)
//       w[r*R + c] lane i = src[idx[i] + r*ld + c] where bit c of lane_rows[r*L + i], else 0)
//   and (kRowLoads) template <int R, class Plan> void add_windows(const Plan& p, float* dst,
//                                 int64_t ld, const F* z)
//       dst[p.idx[i] + r*ld + c] += z[r*8 + c] lane i where bit c of p.lane_rows[r][i], lanes
//       in order (Plan: GatherPlan<Vec, R>)
//   F mul(F, F)
//   void take_if_greater_or_nan(F v, F at_v, F* best, F* at)
//       *best, *at = v, at_v in the lanes where v > *best or v is NaN
//   and (!kRowLoads) K kand(K, K),
//   F gather(const float* base, const int32_t* idx, K m)   lane i = base[idx[i]] where m, else 0
//   void tiles16(const F* v, float* out)                    out[16 i + k] = v[k] lane i
//                                                           (k < 16, i < L; a transpose)
//   void store_tile(float* d, int64_t ld, const float* s, int rows, int cols)
//       d[a*ld + b] = s[4a + b] for a < rows, b < cols (s: one tile of tiles16's out, read
//       back in the widths tiles16 stored it, so the loads are forwarded from the stores)
#pragma once

#include <cstdint>
#include <cstring>

#include "ops/conv2d/winograd.h"

namespace fv {
namespace {

namespace f4 {

// Tile t of the grid (winograd.h, WinoGeom with 4x4 tiles): image, tile row, tile column.
struct TilePos {
  int64_t n, tr, tc;
};
inline TilePos tile_pos(const WinoGeom* g, int64_t t) {
  const int64_t per = g->TH * g->TW, r = t % per;
  return TilePos{t / per, r / g->TW, r % g->TW};
}

// r = B^T d along a line of 6 (exact on small integers: x4 and x2 are exact, x5 too there).
template <class Vec>
inline void bt6(const typename Vec::F* d, typename Vec::F* r) {
  using F = typename Vec::F;
  const F four = Vec::set1(4.0f), five = Vec::set1(5.0f), two = Vec::set1(2.0f);
  const F s12 = Vec::add(d[1], d[2]), d12 = Vec::sub(d[1], d[2]);
  const F d31 = Vec::sub(d[3], d[1]), d42 = Vec::sub(d[4], d[2]);
  r[0] = Vec::add(Vec::sub(Vec::mul(four, d[0]), Vec::mul(five, d[2])), d[4]);
  r[1] = Vec::sub(Vec::add(d[3], d[4]), Vec::mul(four, s12));
  r[2] = Vec::add(Vec::sub(d[4], d[3]), Vec::mul(four, d12));
  r[3] = Vec::add(d42, Vec::mul(two, d31));
  r[4] = Vec::sub(d42, Vec::mul(two, d31));
  r[5] = Vec::add(Vec::sub(Vec::mul(four, d[1]), Vec::mul(five, d[3])), d[5]);
}

// The last step's division by 576 is a multiplication by float(1/576) = (1 + 2^-27) / 576:
// for x = 576 k (k an integer, x exact) the product's relative error 2^-27 is below half an
// ulp of k, so it returns k exactly, as the division would (small integers stay exact);
// elsewhere it is within an ulp of the division, the same on every ISA, and ~5x cheaper.
constexpr float kInv576 = 1.0f / 576.0f;

// z = A'^T m along a line of 6 (6 -> 4).
template <class Vec>
inline void at6(const typename Vec::F* m, typename Vec::F* z) {
  using F = typename Vec::F;
  const F two = Vec::set1(2.0f), four = Vec::set1(4.0f), six = Vec::set1(6.0f);
  const F eight = Vec::set1(8.0f), k24 = Vec::set1(24.0f);
  const F s12 = Vec::add(m[1], m[2]), d12 = Vec::sub(m[1], m[2]);
  const F s34 = Vec::add(m[3], m[4]), d34 = Vec::sub(m[3], m[4]);
  z[0] = Vec::add(Vec::add(Vec::mul(six, m[0]), Vec::mul(four, s12)), s34);
  z[1] = Vec::add(Vec::mul(four, d12), Vec::mul(two, d34));
  z[2] = Vec::mul(four, Vec::add(s12, s34));
  z[3] = Vec::add(Vec::add(Vec::mul(four, d12), Vec::mul(eight, d34)), Vec::mul(k24, m[5]));
}

// r = A' p along a line of 4 (4 -> 6): the dy transform's step, the adjoint of at6.
template <class Vec>
inline void a6(const typename Vec::F* p, typename Vec::F* r) {
  using F = typename Vec::F;
  const F two = Vec::set1(2.0f), four = Vec::set1(4.0f), six = Vec::set1(6.0f);
  const F eight = Vec::set1(8.0f), k24 = Vec::set1(24.0f);
  r[0] = Vec::mul(six, p[0]);
  r[1] = Vec::mul(four, Vec::add(Vec::add(p[0], p[1]), Vec::add(p[2], p[3])));
  r[2] = Vec::mul(four, Vec::add(Vec::sub(p[0], p[1]), Vec::sub(p[2], p[3])));
  r[3] = Vec::add(Vec::add(p[0], Vec::mul(two, p[1])),
                  Vec::add(Vec::mul(four, p[2]), Vec::mul(eight, p[3])));
  r[4] = Vec::add(Vec::sub(p[0], Vec::mul(two, p[1])),
                  Vec::sub(Vec::mul(four, p[2]), Vec::mul(eight, p[3])));
  r[5] = Vec::mul(k24, p[3]);
}

// z = B m along a line of 6 (the adjoint of bt6: the adjoint data gradient's output step).
template <class Vec>
inline void b6(const typename Vec::F* m, typename Vec::F* z) {
  using F = typename Vec::F;
  const F two = Vec::set1(2.0f), four = Vec::set1(4.0f), five = Vec::set1(5.0f);
  const F s12 = Vec::add(m[1], m[2]), d21 = Vec::sub(m[2], m[1]);
  const F s34 = Vec::add(m[3], m[4]), d34 = Vec::sub(m[3], m[4]);
  z[0] = Vec::mul(four, m[0]);
  z[1] = Vec::add(Vec::sub(Vec::mul(four, d21), Vec::mul(two, d34)), Vec::mul(four, m[5]));
  z[2] = Vec::sub(Vec::sub(Vec::neg(Vec::mul(five, m[0])), Vec::mul(four, s12)), s34);
  z[3] = Vec::sub(Vec::sub(Vec::mul(two, d34), d21), Vec::mul(five, m[5]));
  z[4] = Vec::add(Vec::add(m[0], s12), s34);
  z[5] = m[5];
}

// How a chunk of <= L consecutive tiles (block tiles j .. j + cnt) reads a window of R x R
// from an NCHW tensor of ch channels of rows x cols: lane i reads src + idx[i] + r*cols + c
// (+ channel * rows*cols) where rm[r] & cm[c]. The tiles' windows start at (4 tr - off_r,
// 4 tc - off_c). Offsets are from the chunk's first image, so they fit int32 while L images
// do (the driver checks: winograd.cpp).
// lane_rows[r][i] holds the same masks per lane: bit c set where lane i reads row r, column c
// (the row loads of windows() and add_windows()); rm / cm are made only for gathers.
// Bit r of whole_rows[i] is set where the 8 floats from lane i's row r, column 0 lie in its
// plane (AVX2's add_windows stores those whole: see winograd_avx2.cpp).
template <class Vec, int R>
struct GatherPlan {
  const float* src;
  alignas(64) int32_t idx[Vec::L];
  typename Vec::K rm[R], cm[R];
  uint8_t lane_rows[R][Vec::L];
  uint8_t whole_rows[Vec::L];
  // The chunk's windows within one channel plane, as spans of floats [lo, hi] from src (the
  // windows of a tile row's lanes merged, and their rows too where the gap between them is
  // under a cache line): what prefetch_windows reads.
  int32_t span_lo[R * Vec::L], span_hi[R * Vec::L];
  int spans;
  int64_t j;  // first tile of the chunk in the block
  int cnt;

  GatherPlan() = default;
  GatherPlan(const WinoGeom* g, int64_t t0, int64_t j0, int64_t n_tiles, const float* base,
             int64_t ch, int64_t rows, int64_t cols, int64_t off_r, int64_t off_c)
      : j(j0), cnt(static_cast<int>(n_tiles)) {
    const int64_t n0 = tile_pos(g, t0 + j0).n, plane = rows * cols;
    src = base + n0 * ch * plane;
    int32_t row0[Vec::L], col0[Vec::L];
    int64_t image[Vec::L];
    for (int i = 0; i < Vec::L; ++i) {
      const TilePos p = tile_pos(g, t0 + j0 + (i < cnt ? i : 0));
      row0[i] = static_cast<int32_t>(4 * p.tr - off_r);
      col0[i] = static_cast<int32_t>(4 * p.tc - off_c);
      image[i] = p.n - n0;
      idx[i] = static_cast<int32_t>(image[i] * ch * plane + row0[i] * cols + col0[i]);
    }
    make_spans(row0, col0, image, ch * plane, rows, cols);
    if constexpr (!Vec::kRowLoads) {
      for (int a = 0; a < R; ++a) {
        rm[a] = lanes_where(row0, a, rows);
        cm[a] = lanes_where(col0, a, cols);
      }
    }
    for (int i = 0; i < Vec::L; ++i) {
      unsigned c_bits = 0;
      for (int c = 0; c < R; ++c) {
        if (col0[i] + c >= 0 && col0[i] + c < cols) c_bits |= 1u << c;
      }
      unsigned whole = 0;
      for (int r = 0; r < R; ++r) {
        const bool in = i < cnt && row0[i] + r >= 0 && row0[i] + r < rows;
        lane_rows[r][i] = static_cast<uint8_t>(in ? c_bits : 0u);
        const int64_t start = (row0[i] + r) * cols + col0[i];
        if (start >= 0 && start + 8 <= plane) whole |= 1u << r;
      }
      whole_rows[i] = static_cast<uint8_t>(whole);
    }
  }

 private:
  // span_lo / span_hi: per run of lanes in one tile row of one image (consecutive tiles),
  // the rows of their windows that lie in the plane, clipped to it.
  void make_spans(const int32_t* row0, const int32_t* col0, const int64_t* image,
                  int64_t image_stride, int64_t rows, int64_t cols) {
    spans = 0;
    for (int i = 0, e; i < cnt; i = e) {
      for (e = i + 1; e < cnt && image[e] == image[i] && row0[e] == row0[i]; ++e) {
      }
      const int64_t r_lo = row0[i] > 0 ? row0[i] : 0;
      const int64_t r_hi = (row0[i] + R < rows ? row0[i] + R : rows) - 1;
      const int64_t c_lo = col0[i] > 0 ? col0[i] : 0;
      const int64_t c_hi = (col0[e - 1] + R < cols ? col0[e - 1] + R : cols) - 1;
      if (r_lo > r_hi || c_lo > c_hi) continue;
      const int64_t at = image[i] * image_stride + c_lo;
      if (cols - (c_hi - c_lo + 1) < 16) {  // the rows' gaps are under a line: one span
        add_span(at + r_lo * cols, at + r_hi * cols + (c_hi - c_lo));
      } else {
        for (int64_t r = r_lo; r <= r_hi; ++r) {
          add_span(at + r * cols, at + r * cols + (c_hi - c_lo));
        }
      }
    }
  }
  void add_span(int64_t lo, int64_t hi) {
    span_lo[spans] = static_cast<int32_t>(lo);
    span_hi[spans] = static_cast<int32_t>(hi);
    ++spans;
  }

  // Lanes < cnt whose start + a lies in [0, limit).
  typename Vec::K lanes_where(const int32_t* start, int a, int64_t limit) const {
    typename Vec::K k = Vec::mask(0, 0);
    for (int i = 0; i < cnt; ++i) {
      if (start[i] + a >= 0 && start[i] + a < limit) k = Vec::kor(k, Vec::mask(i, i + 1));
    }
    return k;
  }
};

// w[r*R + c] = the chunk's windows at row r, column c (lanes = tiles; 0 outside the tensor)
// from channel plane src (the plan's src + channel offset) of row length ld. Vec::kRowLoads:
// each lane loads its window rows and the rows are transposed into lanes (Vec::windows);
// otherwise one masked gather per (r, c).
template <class Vec, int R>
inline void windows(const GatherPlan<Vec, R>& p, const float* src, int64_t ld,
                    typename Vec::F* w) {
  if constexpr (Vec::kRowLoads) {
    Vec::template windows<R>(src, p.idx, &p.lane_rows[0][0], ld, w);
  } else {
    for (int r = 0; r < R; ++r) {
      for (int c = 0; c < R; ++c) {
        w[r * R + c] = Vec::gather(src + r * ld + c, p.idx, Vec::kand(p.rm[r], p.cm[c]));
      }
    }
  }
}

// dst[idx[i] + r*ld + c] += z[r*8 + c] lane i where bit c of lane_rows[r][i] (lanes in order,
// so overlapping windows add up in tile order). Vec::kRowLoads: each lane's rows come out of a
// transpose and are added as vectors (Vec::add_windows); otherwise through a stage, by element.
template <class Vec, int R>
inline void add_windows(const GatherPlan<Vec, R>& p, float* dst, int64_t ld,
                        const typename Vec::F* z) {
  if constexpr (Vec::kRowLoads) {
    Vec::template add_windows<R>(p, dst, ld, z);
  } else {
    alignas(64) float stage[R * 8][Vec::L];
    for (int k = 0; k < R * 8; ++k) Vec::store(stage[k], Vec::mask(0, Vec::L), z[k]);
    for (int i = 0; i < p.cnt; ++i) {
      float* d = dst + p.idx[i];
      for (int r = 0; r < R; ++r) {
        const unsigned bits = p.lane_rows[r][i];
        for (int c = 0; c < R; ++c) {
          if (bits >> c & 1u) d[r * ld + c] += stage[r * 8 + c][i];
        }
      }
    }
  }
}

// Prefetches the lines of plan p's windows in the channel plane at `plane` (p.src + a later
// channel's offset). The transforms walk the channels of a block's chunks channel-outer, so
// each chunk reads a few hundred bytes per plane, planes apart, and the hardware
// prefetchers miss it: the input transform's row loads waited on L3 / memory (the top of its
// profile). A later channel's windows are asked for while the other chunks of this channel
// run. Measured on the reference model's training step (AVX2, AMD Zen 3, 2 threads,
// per-step interleaved A/B, tools/ab_step.py; ~9 ms a step): these spans 2 planes ahead
// -0.46 ms, a first version prefetching each lane's rows -0.33 and -0.28; 1 or 4 planes
// ahead, or into L2 only, -0.40, -0.33, -0.32 (the same within the noise). (GatherPlan makes
// the spans for the other transforms too, unused there: a few operations per 8 tiles.) The
// dy transform's input (gy) comes from the pass's own scratch or a small tensor: prefetching
// it measured nothing (-0.07 ms), so only the input transform does.
constexpr int64_t kPrefetchChannels = 2;

template <class Plan>
inline void prefetch_windows(const Plan& p, const float* plane) {
  for (int s = 0; s < p.spans; ++s) {
    const float* hi = plane + p.span_hi[s];
    for (const float* a = plane + p.span_lo[s]; a < hi; a += 16) __builtin_prefetch(a, 0, 3);
    __builtin_prefetch(hi, 0, 3);
  }
}

// Where a chunk's lanes go in a WinoLayout: panel_w is a multiple of L and chunks start at
// multiples of L, so a chunk never crosses a panel edge.
inline int64_t layout_offset(const WinoLayout& lay, int64_t j) {
  return (j / lay.panel_w) * lay.panel_stride + j % lay.panel_w;
}

// Runs body(plan, c) for every channel c < nc and every chunk of the block, channel-outer
// (each input / output plane is walked once), plans made once per call.
template <class Plan, class Vec, class Make, class Body>
void run_plans(int64_t T, int64_t nc, Make make, Body body) {
  constexpr int kBatch = 16;
  Plan plans[kBatch];
  for (int64_t j0 = 0; j0 < T; j0 += kBatch * Vec::L) {
    int np = 0;
    for (int64_t j = j0; j < T && np < kBatch; j += Vec::L) {
      plans[np++] = make(j, T - j < Vec::L ? T - j : Vec::L);
    }
    for (int64_t c = 0; c < nc; ++c) {
      for (int i = 0; i < np; ++i) body(plans[i], c);
    }
  }
}

template <class Vec>
void input_transform_t(const WinoGeom* g, const float* x, int64_t t0, int64_t T, float* V,
                       const WinoLayout* lay) {
  using F = typename Vec::F;
  using P = GatherPlan<Vec, 6>;
  const int64_t H = g->H, W = g->W, HW = H * W, cs = lay->c_stride, es = lay->es;
  auto make = [&](int64_t j, int64_t n) { return P(g, t0, j, n, x, g->C, H, W, g->pt, g->pl); };
  auto body = [&](const P& p, int64_t c) {
    const float* src = p.src + c * HW;
    if (c + kPrefetchChannels < g->C) prefetch_windows(p, src + kPrefetchChannels * HW);
    F win[36];
    windows<Vec, 6>(p, src, W, win);
    F t[6][6];  // t[a][col] = (B^T d)[a][col]
    for (int col = 0; col < 6; ++col) {
      F d[6], r[6];
      for (int row = 0; row < 6; ++row) d[row] = win[row * 6 + col];
      bt6<Vec>(d, r);
      for (int a = 0; a < 6; ++a) t[a][col] = r[a];
    }
    float* dst = V + c * cs + layout_offset(*lay, p.j);
    for (int a = 0; a < 6; ++a) {
      F v[6];
      bt6<Vec>(t[a], v);
      // every lane: those past the block's tiles hold 0 (their windows read as 0)
      for (int b = 0; b < 6; ++b) Vec::store_all(dst + (a * 6 + b) * es, v[b]);
    }
  };
  run_plans<P, Vec>(T, g->C, make, body);
}

// Lane i's tile of outputs, v[4a + b] = relu?(bias_o + (A'^T m A')[a][b] / 576), from the M
// rows of output channel o at mo (plane stride es): the output transforms' shared step.
template <class Vec>
inline void output_tile(const float* mo, int64_t es, typename Vec::K all, const float* bias,
                        int64_t o, bool relu, typename Vec::F* v) {
  using F = typename Vec::F;
  F col[6][4];  // col[b][a] = (A'^T m)[a][b]
  for (int b = 0; b < 6; ++b) {
    F m[6];
    for (int a = 0; a < 6; ++a) m[a] = Vec::load(mo + (a * 6 + b) * es, all);
    at6<Vec>(m, col[b]);
  }
  const F inv576 = Vec::set1(kInv576);
  const F bo = Vec::set1(bias != nullptr ? bias[o] : 0.0f);
  for (int a = 0; a < 4; ++a) {
    const F line[6] = {col[0][a], col[1][a], col[2][a], col[3][a], col[4][a], col[5][a]};
    F z[4];
    at6<Vec>(line, z);
    for (int b = 0; b < 4; ++b) {
      F r = Vec::mul(z[b], inv576);
      if (bias != nullptr) r = Vec::add(r, bo);
      if (relu) r = Vec::max0(r);
      v[a * 4 + b] = r;
    }
  }
}

// Where a chunk's outputs go: per lane, the tile's first output element and how many of its
// `side` rows / columns lie inside the output (rows x cols; 4 for the conv's output, 2 for
// its 2x2 pool).
template <class Vec>
struct OutPlan {
  int64_t dst[Vec::L];
  int8_t rows[Vec::L], cols[Vec::L];
  int64_t j;
  int cnt;
};

template <class Vec>
OutPlan<Vec> out_plan(const WinoGeom* g, int64_t t0, int64_t j, int64_t n, int64_t side,
                      int64_t rows, int64_t cols) {
  OutPlan<Vec> p;
  p.j = j;
  p.cnt = static_cast<int>(n);
  for (int i = 0; i < p.cnt; ++i) {
    const TilePos tp = tile_pos(g, t0 + j + i);
    const int64_t r0 = side * tp.tr, c0 = side * tp.tc;
    p.dst[i] = tp.n * g->O * rows * cols + r0 * cols + c0;
    p.rows[i] = static_cast<int8_t>(rows - r0 < side ? (rows > r0 ? rows - r0 : 0) : side);
    p.cols[i] = static_cast<int8_t>(cols - c0 < side ? (cols > c0 ? cols - c0 : 0) : side);
  }
  return p;
}

template <class Vec>
void output_transform_t(const WinoGeom* g, const float* M, int64_t ldm, int64_t es, int64_t t0,
                        int64_t T, const float* bias, bool relu, float* y) {
  using F = typename Vec::F;
  using P = OutPlan<Vec>;
  const int64_t OW = g->OW, plane = g->OH * OW;
  auto make = [&](int64_t j, int64_t n) { return out_plan<Vec>(g, t0, j, n, 4, g->OH, OW); };
  auto body = [&](const P& p, int64_t o) {
    F v[16];  // v[4a + b]: output (a, b) of each lane's tile
    output_tile<Vec>(M + o * ldm + p.j, es, Vec::mask(0, p.cnt), bias, o, relu, v);
    alignas(64) float stage[Vec::L][16];  // each lane's tile, row-major (4x4)
    Vec::tiles16(v, &stage[0][0]);
    float* yo = y + o * plane;
    for (int i = 0; i < p.cnt; ++i) {
      Vec::store_tile(yo + p.dst[i], OW, stage[i], p.rows[i], p.cols[i]);
    }
  };
  run_plans<P, Vec>(T, g->O, make, body);
}

// The forward with relu, then a 2x2 stride-2 max pool (floor mode) of the conv's output: a
// 4x4 tile holds whole pool windows, so each lane pools its tile's four in registers and the
// conv's output is never stored. pooled and codes are (N, O, OH / 2, OW / 2); codes (0-3:
// the window position of the max) and maxima follow max_pool2d_2x2's rule (row 0 column 0,
// then (0, 1), (1, 0), (1, 1), each taken where greater or NaN) on the values output_transform
// would store: the bits of output_transform (relu) followed by max_pool2d_2x2.
template <class Vec>
void output_transform_pool2x2_t(const WinoGeom* g, const float* M, int64_t ldm, int64_t es,
                                int64_t t0, int64_t T, const float* bias, float* pooled,
                                uint8_t* codes) {
  using F = typename Vec::F;
  using P = OutPlan<Vec>;
  const int64_t PH = g->OH / 2, PW = g->OW / 2, plane = PH * PW;
  auto make = [&](int64_t j, int64_t n) { return out_plan<Vec>(g, t0, j, n, 2, PH, PW); };
  const F code[4] = {Vec::zero(), Vec::set1(1.0f), Vec::set1(2.0f), Vec::set1(3.0f)};
  const F byte = Vec::set1(256.0f);
  auto body = [&](const P& p, int64_t o) {
    F v[16];
    output_tile<Vec>(M + o * ldm + p.j, es, Vec::mask(0, p.cnt), bias, o, true, v);
    // w[2a + b]: window (a, b)'s max; w[4 + a]: the codes of row a's two windows as one
    // number, code(a, 0) + 256 code(a, 1) (exact), so a lane converts one float per row
    F w[16];
    for (int a = 0; a < 2; ++a) {
      F at_row[2];
      for (int b = 0; b < 2; ++b) {
        const F* e = v + 8 * a + 2 * b;  // the window's (0, 0)
        F best = e[0], at = code[0];
        Vec::take_if_greater_or_nan(e[1], code[1], &best, &at);
        Vec::take_if_greater_or_nan(e[4], code[2], &best, &at);
        Vec::take_if_greater_or_nan(e[5], code[3], &best, &at);
        w[2 * a + b] = best;
        at_row[b] = at;
      }
      w[4 + a] = Vec::add(at_row[0], Vec::mul(at_row[1], byte));
    }
    for (int k = 6; k < 16; ++k) w[k] = Vec::zero();
    alignas(64) float stage[Vec::L][16];
    Vec::tiles16(w, &stage[0][0]);
    float* po = pooled + o * plane;
    uint8_t* co = codes + o * plane;
    for (int i = 0; i < p.cnt; ++i) {
      const float* s = stage[i];
      for (int a = 0; a < p.rows[i]; ++a) {
        const int64_t d = p.dst[i] + a * PW;
        const int pair = static_cast<int>(s[4 + a]);
        if (p.cols[i] == 2) {
          std::memcpy(po + d, s + 2 * a, 2 * sizeof(float));
          co[d] = static_cast<uint8_t>(pair & 0xff);
          co[d + 1] = static_cast<uint8_t>(pair >> 8);
        } else if (p.cols[i] == 1) {
          po[d] = s[2 * a];
          co[d] = static_cast<uint8_t>(pair & 0xff);
        }
      }
    }
  };
  run_plans<P, Vec>(T, g->O, make, body);
}

template <class Vec>
void dy_transform_t(const WinoGeom* g, const float* dy, int64_t t0, int64_t T, float* D,
                    const WinoLayout* lay) {
  using F = typename Vec::F;
  using P = GatherPlan<Vec, 4>;
  const int64_t OH = g->OH, OW = g->OW, cs = lay->c_stride, es = lay->es;
  auto make = [&](int64_t j, int64_t n) { return P(g, t0, j, n, dy, g->O, OH, OW, 0, 0); };
  auto body = [&](const P& p, int64_t o) {
    const float* src = p.src + o * OH * OW;
    F win[16];
    windows<Vec, 4>(p, src, OW, win);
    F q[6][4];  // q[a][col] = (A' dy)[a][col]
    for (int col = 0; col < 4; ++col) {
      F d[4], r[6];
      for (int row = 0; row < 4; ++row) d[row] = win[row * 4 + col];
      a6<Vec>(d, r);
      for (int a = 0; a < 6; ++a) q[a][col] = r[a];
    }
    float* dst = D + o * cs + layout_offset(*lay, p.j);
    for (int a = 0; a < 6; ++a) {
      F w[6];
      a6<Vec>(q[a], w);
      // every lane: those past the block's tiles hold 0 (their windows read as 0)
      for (int b = 0; b < 6; ++b) Vec::store_all(dst + (a * 6 + b) * es, w[b]);
    }
  };
  run_plans<P, Vec>(T, g->O, make, body);
}

// The data gradient as the adjoint of the forward conv, over the forward's tiles (4x4 blocks
// of gy, not of gx): gx(window of tile j) += B [ M(., c, j) ] B^T / 576 for every channel c,
// M the row-major planes of sum_o U^T (.) (A' gy A'^T) (winograd.cpp). The windows of
// neighbouring tiles overlap by 2 rows / columns: the block holds whole images (one thread)
// and adds its tiles in order, so the sums do not depend on threads. gx of the block's images
// is zeroed first; every element lies in some window.
template <class Vec>
void adjoint_output_transform_t(const WinoGeom* g, const float* M, int64_t ldm, int64_t es,
                                int64_t t0, int64_t T, float* gx) {
  using F = typename Vec::F;
  using P = GatherPlan<Vec, 6>;
  const int64_t C = g->C, H = g->H, W = g->W, HW = H * W, per = g->TH * g->TW;
  std::memset(gx + t0 / per * C * HW, 0, sizeof(float) * static_cast<size_t>(T / per * C * HW));
  auto make = [&](int64_t j, int64_t n) { return P(g, t0, j, n, gx, C, H, W, g->pt, g->pl); };
  const F inv576 = Vec::set1(kInv576);
  auto body = [&](const P& p, int64_t c) {
    const typename Vec::K all = Vec::mask(0, p.cnt);
    const float* mc = M + c * ldm + p.j;
    F t[6][6];  // t[a][col] = (B m)[a][col], the first step along the tile rows
    for (int col = 0; col < 6; ++col) {
      F m[6], r[6];
      for (int a = 0; a < 6; ++a) m[a] = Vec::load(mc + (a * 6 + col) * es, all);
      b6<Vec>(m, r);
      for (int a = 0; a < 6; ++a) t[a][col] = r[a];
    }
    F z[48];  // z[r*8 + c]: row r of each lane's 6x6 window contribution (c = 6, 7 unused)
    for (int r = 0; r < 6; ++r) {
      F v[6];
      b6<Vec>(t[r], v);
      for (int c = 0; c < 6; ++c) z[r * 8 + c] = Vec::mul(v[c], inv576);
      z[r * 8 + 6] = z[r * 8 + 7] = Vec::zero();
    }
    add_windows<Vec, 6>(p, gx + (p.src - gx) + c * HW, W, z);
  };
  run_plans<P, Vec>(T, C, make, body);
}

}  // namespace f4

}  // namespace
}  // namespace fv

// Defines an ISA file's F(4x4, 3x3) kernel table from its Vec type.
#define FV_WINOGRAD4_TABLE(Vec, isa)                                                       \
  namespace fv {                                                                           \
  extern const WinogradKernels winograd4_kernels_##isa = {                                 \
      &f4::input_transform_t<Vec>, &f4::output_transform_t<Vec>, &f4::dy_transform_t<Vec>, \
      &f4::adjoint_output_transform_t<Vec>, &weight_transform_t<Vec, 4>,                   \
      &f4::output_transform_pool2x2_t<Vec>};                                               \
  }
