// Row helpers shared by the conv2d variant files (geometry, scatter col2im, panel copies).
// Included by ISA files too: everything here has internal linkage (anonymous namespace), so
// each file gets its own copy built with its own flags (see csrc/README.md, rule 3).
#pragma once

#include <cstdint>

#include "ops/conv2d/conv2d.h"

namespace fv {
namespace {

// Output columns [lo, hi) whose input column ow*s + off lies inside [0, W).
inline void valid_range(int64_t off, int64_t s, int64_t W, int64_t OW, int64_t* lo, int64_t* hi) {
  int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
  int64_t h = W - 1 - off >= 0 ? (W - 1 - off) / s + 1 : 0;
  if (h > OW) h = OW;
  if (l > h) l = h;
  *lo = l;
  *hi = h;
}

// col2im in scatter form: x[c, ih, ow*sw + off] += col row, tap by tap (any stride). The
// scalar variant; the SIMD ones fall back to it where their row adds do not apply.
inline void col2im_scatter(const ConvGeom* g, const float* col, int64_t ld, float* x) {
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
          for (int64_t ow = lo; ow < hi; ++ow) dst[ow * g->sw + off] += src[ow];
        }
      }
    }
  }
}

// copy_panel with plain loops: per row a, runs [lo[s], hi[s]) copied from src + ra[a] + rel[s],
// zeros between them (runs ascending, apart). The scalar variant, and the SIMD ones' fallback
// for very many runs.
inline void copy_panel_runs(const float* src, const int32_t* ra, int64_t na,
                            const int32_t* lo, const int32_t* hi, const int32_t* rel,
                            int64_t nruns, int64_t nr, float* dst) {
  for (int64_t a = 0; a < na; ++a) {
    float* d = dst + a * nr;
    int64_t b = 0;
    for (int64_t s = 0; s < nruns; ++s) {
      for (; b < lo[s]; ++b) d[b] = 0.0f;
      const float* sp = src + (static_cast<int64_t>(ra[a]) + rel[s]);
      for (; b < hi[s]; ++b) d[b] = sp[b];
    }
    for (; b < nr; ++b) d[b] = 0.0f;
  }
}

// copy_panel's runs cut at the boundaries of L-lane vectors, once per call (the AVX2 and
// AVX-512 copy_panels build a load mask per piece from it): vector v of a row is the pieces
// p in [first[v], first[v + 1]), piece p its lanes [lane_lo[p], lane_hi[p]) read from
// src + ra[a] + off[p] + lane (lanes outside every piece are 0). cut() returns false where
// the pieces or vectors outnumber these arrays (then copy_panel_runs does the copy).
template <int L>
struct PanelPieces {
  static constexpr int kMaxPieces = 64, kMaxVectors = 16;
  int lane_lo[kMaxPieces], lane_hi[kMaxPieces];
  int64_t off[kMaxPieces];
  int first[kMaxVectors + 1];
  int64_t nv = 0;

  bool cut(const int32_t* lo, const int32_t* hi, const int32_t* rel, int64_t nruns,
           int64_t nr) {
    nv = (nr + L - 1) / L;
    if (nv > kMaxVectors) return false;
    int np = 0;
    for (int64_t v = 0; v < nv; ++v) {
      first[v] = np;
      const int64_t b0 = v * L;
      for (int64_t s = 0; s < nruns; ++s) {
        const int64_t l = lo[s] - b0 < 0 ? 0 : lo[s] - b0, h = hi[s] - b0 > L ? L : hi[s] - b0;
        if (h <= l) continue;
        if (np == kMaxPieces) return false;
        lane_lo[np] = static_cast<int>(l);
        lane_hi[np] = static_cast<int>(h);
        off[np++] = rel[s] + b0;
      }
    }
    first[nv] = np;
    return true;
  }
};

}  // namespace
}  // namespace fv
