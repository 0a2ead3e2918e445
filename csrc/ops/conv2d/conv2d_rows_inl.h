// Row helpers shared by the conv2d variant files (geometry, scatter col2im, plain panel copy).
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
// zeros between them. The scalar variant, and AVX2's fallback for very many runs.
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

}  // namespace
}  // namespace fv
