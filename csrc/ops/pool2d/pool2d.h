// pool2d: max and average pooling over NCHW float32 planes, forward and backward, with
// torch.nn.functional semantics (max_pool2d / avg_pool2d and their backward).
//
// Layout: every kernel works on `planes` consecutive (n, c) planes: each x plane is H x W
// row-major, each y / indices plane OH x OW row-major; indices are flat offsets into the
// H*W input plane (as torch). The driver (pool2d_bind.cpp) validates, allocates and splits
// the N*C planes over threads.
//
// Semantics, identical in every variant (each output element is computed by the same
// sequence of float operations wherever it falls, so scalar / avx2 / avx512 agree bit for
// bit, indices included):
//   max: window rows ih0 = oh*sh - ph, ..., clipped to [0, H) by stepping ih0 by dh while
//        negative (likewise columns); scan row-major starting from maxval = -inf, maxidx =
//        first in-plane position; take a value when (v > maxval || isnan(v)). So ties keep
//        the FIRST index and, as torch's CPU kernel, the LAST NaN in a window wins. A window
//        with no in-plane element (possible only with dilation on tiny planes) gives -inf and
//        torch's index ih0*W + iw0.
//   avg: window [ih0, min(ih0+kh, H+ph)) x [iw0, min(iw0+kw, W+pw)); its size is the divisor
//        when count_include_pad, else the size of its intersection with the plane; the sum
//        runs row-major over the intersection from 0, then ONE division. Empty -> 0.
//   backward: max scatters grad_y into zeros at the indices, in output order; avg adds
//        grad_y / divisor to each input of the window, in output order.
// Variants (forward): a k2s2 fast path (kernel 2, stride 2, no padding, no dilation: the
// reference CNN's pools) vectorised along the output width (two input rows loaded,
// even/odd columns deinterleaved); for small k2s2 planes (OH*OW <= 64, e.g. 11x11 -> 5x5)
// 8 or 16 planes at once, their outputs filling whole vectors, inputs gathered; a generic
// path vectorised along the output width: AVX2 over the interior columns (windows inside the
// plane horizontally) with the border elements through the shared per-element code below,
// AVX-512 over every column with out-of-plane positions masked off per lane.
// Backward (max): zeros + scatter-add, except AVX-512 on wide k2s2-shaped planes (OW >= 8),
// which writes the 2x2 blocks directly when every index lies in its own block (then equal to
// the scatter). Backward (avg): scatter, or a direct write for full k2s2 windows.
#pragma once

#include <cstdint>

#include "core/dispatch.h"

namespace fv {

struct Pool2dGeom {
  int64_t H, W, OH, OW;
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;  // avg pooling uses dh = dw = 1
};

struct Pool2dKernels {
  // idx may be null (indices not wanted). The vector paths keep plane offsets in int32
  // lanes: the driver uses the scalar table when (H + dh + 1) * W exceeds INT32_MAX.
  void (*max_forward)(const float* x, float* y, int64_t* idx, int64_t planes, const Pool2dGeom& g);
  // grad_x planes (H x W, written entirely) from grad_y / idx planes (OH x OW). Indices must
  // already be validated to lie in [0, H*W).
  void (*max_backward)(const float* gy, const int64_t* idx, float* gx, int64_t planes,
                       const Pool2dGeom& g);
  void (*avg_forward)(const float* x, float* y, int64_t planes, const Pool2dGeom& g,
                      bool count_include_pad);
  void (*avg_backward)(const float* gy, float* gx, int64_t planes, const Pool2dGeom& g,
                       bool count_include_pad);
  // True when every idx[i], i < n, lies in [0, limit).
  bool (*indices_in_range)(const int64_t* idx, int64_t n, int64_t limit);
};

FV_DECLARE_KERNELS(Pool2dKernels, pool2d_kernels);

// Per-element code shared by every variant. It sits in an anonymous namespace, so each
// variant file compiles its own internal copy with its own flags (nothing is merged across
// ISA levels); -ffp-contract=off keeps its arithmetic the same in every copy.
namespace {

inline bool pool_is_k2s2(const Pool2dGeom& g) {
  return g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0 &&
         g.dh == 1 && g.dw == 1;
}

// The range [lo, hi) of output columns whose windows lie inside [0, W) horizontally
// (hi == lo when none). For avg pooling, call with dw = 1.
inline void pool_interior_cols(const Pool2dGeom& g, int64_t* lo, int64_t* hi) {
  const int64_t first = (g.pw + g.sw - 1) / g.sw;           // ow*sw - pw >= 0
  const int64_t span = (g.kw - 1) * g.dw + 1;
  const int64_t room = g.W + g.pw - span;                     // ow*sw <= room
  int64_t last = room < 0 ? 0 : room / g.sw + 1;
  if (last > g.OW) last = g.OW;
  *lo = first < g.OW ? first : g.OW;
  *hi = last > *lo ? last : *lo;  // so [0, lo) and [hi, OW) never overlap
}

// Rows of output row oh's max window: first in-plane row, end (exclusive).
inline void max_rows(const Pool2dGeom& g, int64_t oh, int64_t* ih0, int64_t* ih1) {
  int64_t a = oh * g.sh - g.ph;
  const int64_t e = a + (g.kh - 1) * g.dh + 1;
  *ih1 = e < g.H ? e : g.H;
  while (a < 0) a += g.dh;
  *ih0 = a;
}

inline void max_cell(const float* x, float* y, int64_t* idx, const Pool2dGeom& g, int64_t oh,
                     int64_t ow) {
  int64_t ih0, ih1;
  max_rows(g, oh, &ih0, &ih1);
  int64_t iw0 = ow * g.sw - g.pw;
  const int64_t e = iw0 + (g.kw - 1) * g.dw + 1;
  const int64_t iw1 = e < g.W ? e : g.W;
  while (iw0 < 0) iw0 += g.dw;
  float best = -__builtin_inff();
  int64_t at = ih0 * g.W + iw0;
  for (int64_t ih = ih0; ih < ih1; ih += g.dh) {
    for (int64_t iw = iw0; iw < iw1; iw += g.dw) {
      const float v = x[ih * g.W + iw];
      if (v > best || v != v) {
        best = v;
        at = ih * g.W + iw;
      }
    }
  }
  y[oh * g.OW + ow] = best;
  if (idx != nullptr) idx[oh * g.OW + ow] = at;
}

// Clipped avg window of output (oh, ow) and its divisor; false when empty.
inline bool avg_window(const Pool2dGeom& g, int64_t oh, int64_t ow, bool count_include_pad,
                       int64_t* ih0, int64_t* ih1, int64_t* iw0, int64_t* iw1, float* div) {
  int64_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
  int64_t h1 = h0 + g.kh, w1 = w0 + g.kw;
  if (h1 > g.H + g.ph) h1 = g.H + g.ph;
  if (w1 > g.W + g.pw) w1 = g.W + g.pw;
  const int64_t pool_size = (h1 - h0) * (w1 - w0);
  if (h0 < 0) h0 = 0;
  if (w0 < 0) w0 = 0;
  if (h1 > g.H) h1 = g.H;
  if (w1 > g.W) w1 = g.W;
  if (h0 >= h1 || w0 >= w1) return false;
  *ih0 = h0, *ih1 = h1, *iw0 = w0, *iw1 = w1;
  *div = static_cast<float>(count_include_pad ? pool_size : (h1 - h0) * (w1 - w0));
  return true;
}

inline void avg_cell(const float* x, float* y, const Pool2dGeom& g, int64_t oh, int64_t ow,
                     bool count_include_pad) {
  int64_t ih0, ih1, iw0, iw1;
  float div;
  float out = 0.0f;
  if (avg_window(g, oh, ow, count_include_pad, &ih0, &ih1, &iw0, &iw1, &div)) {
    float sum = 0.0f;
    for (int64_t ih = ih0; ih < ih1; ++ih)
      for (int64_t iw = iw0; iw < iw1; ++iw) sum += x[ih * g.W + iw];
    out = sum / div;
  }
  y[oh * g.OW + ow] = out;
}

// Generic backward scatters (output order), used by every variant outside the fast paths.
// Max: a run of planes is zeroed in one pass (small planes: one long fill, not many short).
inline void max_backward_scatter(const float* gy, const int64_t* idx, float* gx, int64_t planes,
                                 const Pool2dGeom& g) {
  const int64_t n_in = g.H * g.W, n_out = g.OH * g.OW;
  for (int64_t i = 0; i < planes * n_in; ++i) gx[i] = 0.0f;
  for (int64_t c = 0; c < planes; ++c, gy += n_out, idx += n_out, gx += n_in)
    for (int64_t j = 0; j < n_out; ++j) gx[idx[j]] += gy[j];
}

inline void avg_backward_scatter(const float* gy, float* gx, const Pool2dGeom& g,
                                 bool count_include_pad) {
  const int64_t n_in = g.H * g.W;
  for (int64_t i = 0; i < n_in; ++i) gx[i] = 0.0f;
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    for (int64_t ow = 0; ow < g.OW; ++ow) {
      int64_t ih0, ih1, iw0, iw1;
      float div;
      if (!avg_window(g, oh, ow, count_include_pad, &ih0, &ih1, &iw0, &iw1, &div)) continue;
      const float d = gy[oh * g.OW + ow] / div;
      for (int64_t ih = ih0; ih < ih1; ++ih)
        for (int64_t iw = iw0; iw < iw1; ++iw) gx[ih * g.W + iw] += d;
    }
  }
}

}  // namespace
}  // namespace fv
