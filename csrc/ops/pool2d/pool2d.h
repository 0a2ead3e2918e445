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
// Backward (max): the driver's index check (check_indices) also tells whether every index
// lies in its own 2x2 block of a k2s2-shaped output (then no two coincide). If so, the vector
// variants zero a group of planes and store g + 0 at the indices (no read-modify-write), except
// AVX-512 on wide planes (OW >= 8), which writes the 2x2 blocks directly; otherwise zeros +
// scatter-add, group by group. All equal the scatter bit for bit. Backward (avg): scatter, or
// a direct write for full k2s2 windows.
// 2x2 with codes (max_forward_2x2 / max_backward_2x2, ops.max_pool2d_2x2): the k2s2 forward
// keeping each window's winner as a byte; its backward picks, per code, which of the four
// even / odd, upper / lower vectors a gradient goes to and interleaves them back into the two
// rows (no scatter, no zeroing pass, no index check), with the relu mask folded in.
#pragma once

#include <cstdint>
#include <cstring>

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
  // already be validated to lie in [0, H*W); own_blocks: check_indices returned kOwnBlocks.
  void (*max_backward)(const float* gy, const int64_t* idx, float* gx, int64_t planes,
                       const Pool2dGeom& g, bool own_blocks);
  void (*avg_forward)(const float* x, float* y, int64_t planes, const Pool2dGeom& g,
                      bool count_include_pad);
  void (*avg_backward)(const float* gy, float* gx, int64_t planes, const Pool2dGeom& g,
                       bool count_include_pad);
  // Of `planes` index planes (OH x OW, into H x W): kOutOfRange when one lies outside
  // [0, H*W); kOwnBlocks when the output is k2s2-shaped (max_bwd_pins) and each index lies
  // in its own output's 2x2 block (so no two coincide); else kInRange.
  int (*check_indices)(const int64_t* idx, int64_t planes, const Pool2dGeom& g);
  // 2x2 stride-2 max pooling in floor mode (OH = H / 2, OW = W / 2, H, W >= 2) with each
  // window's winner as a code, 0..3 row-major in the window: the position max_forward's
  // indices give, by the same rule, in a byte instead of an int64 and valid by construction
  // (the compact form the fused conv + relu + pool node keeps for its backward pass).
  void (*max_forward_2x2)(const float* x, float* y, uint8_t* code, int64_t planes,
                          const Pool2dGeom& g);
  // Its backward: grad_x planes (H x W, written entirely): each window's input at its code
  // gets grad_y + 0 (as max_backward), the other three 0, rows / columns past 2*OH / 2*OW 0.
  // relu_y may be null; else the pooled values of a relu's output, and grad_y counts only
  // where relu_y > 0 (the relu's gradient mask, applied on the pooled side). Codes must be < 4
  // (the driver checks).
  void (*max_backward_2x2)(const float* gy, const uint8_t* code, const float* relu_y, float* gx,
                           int64_t planes, const Pool2dGeom& g);
};

FV_DECLARE_KERNELS(Pool2dKernels, pool2d_kernels);

// The 2x2 pool for ops built on it (conv2d_bind.cpp: the fused conv + relu + pool forward and
// gradient), from pool2d_bind.cpp. pool2x2_geometry: a 2x2 stride-2 floor-mode pool over H x W
// (ValueError naming op when H or W < 2). check_pool_codes: ValueError naming op and the first
// code > 3 (codes are indices into a window; checked before anything is written).
// max_forward_2x2_planes / max_backward_2x2_planes: max_pool2d_2x2's and
// max_pool2d_2x2_backward's work over `planes` planes, the planes split over the threads (on
// the calling thread alone when called inside a parallel region).
Pool2dGeom pool2x2_geometry(const char* op, int64_t H, int64_t W);
void check_pool_codes(const char* op, const uint8_t* code, int64_t n);
void max_forward_2x2_planes(const float* x, float* y, uint8_t* code, int64_t planes,
                            const Pool2dGeom& g);
void max_backward_2x2_planes(const float* gy, const uint8_t* code, const float* relu_y, float* gx,
                             int64_t planes, const Pool2dGeom& g);

constexpr int kOutOfRange = 0, kInRange = 1, kOwnBlocks = 2;

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

// 2x2 stride-2 max with a code (max_forward_2x2): the rule of max_cell over the window
// (its first element can only lose to a larger or NaN one, so starting from it equals
// starting from -inf).
inline void max2x2_cell(const float* x, float* y, uint8_t* code, const Pool2dGeom& g, int64_t oh,
                        int64_t ow) {
  const float* p = x + 2 * oh * g.W + 2 * ow;
  const float v[4] = {p[0], p[1], p[g.W], p[g.W + 1]};
  float best = v[0];
  uint8_t c = 0;
  for (uint8_t k = 1; k < 4; ++k) {
    if (v[k] > best || v[k] != v[k]) {
      best = v[k];
      c = k;
    }
  }
  y[oh * g.OW + ow] = best;
  code[oh * g.OW + ow] = c;
}

// max_backward_2x2 for one output (oh, ow): writes its 2x2 window of gx.
inline void max2x2_backward_cell(const float* gy, const uint8_t* code, const float* relu_y,
                                 float* gx, const Pool2dGeom& g, int64_t oh, int64_t ow) {
  const int64_t j = oh * g.OW + ow;
  const float v = (relu_y == nullptr || relu_y[j] > 0.0f ? gy[j] : 0.0f) + 0.0f;
  float* p = gx + 2 * oh * g.W + 2 * ow;
  p[0] = code[j] == 0 ? v : 0.0f;
  p[1] = code[j] == 1 ? v : 0.0f;
  p[g.W] = code[j] == 2 ? v : 0.0f;
  p[g.W + 1] = code[j] == 3 ? v : 0.0f;
}

// The parts of a gx plane no window covers (floor mode: an odd H's last row, an odd W's last
// column) get 0.
inline void max2x2_backward_edges(float* gx, const Pool2dGeom& g) {
  if (g.W > 2 * g.OW) {
    for (int64_t r = 0; r < 2 * g.OH; ++r) gx[r * g.W + g.W - 1] = 0.0f;
  }
  if (g.H > 2 * g.OH) {
    std::memset(gx + 2 * g.OH * g.W, 0, static_cast<size_t>((g.H - 2 * g.OH) * g.W) * sizeof(float));
  }
}

// Max backward works on groups of planes of about kBwdGroupBytes of grad_x: a group is zeroed
// (one fill, not many short ones) and then written while it is still in L1 (zeroing a whole
// 1 MB run first and coming back to it measured ~10% slower).
constexpr int64_t kBwdGroupBytes = 8192;

inline int64_t max_bwd_group(const Pool2dGeom& g) {
  const int64_t n = kBwdGroupBytes / (4 * g.H * g.W);
  return n < 1 ? 1 : n;
}

// Generic backward scatters (output order), used by every variant outside the fast paths.
inline void max_backward_scatter(const float* gy, const int64_t* idx, float* gx, int64_t planes,
                                 const Pool2dGeom& g) {
  const int64_t n_in = g.H * g.W, n_out = g.OH * g.OW, group = max_bwd_group(g);
  for (int64_t c0 = 0; c0 < planes; c0 += group) {
    const int64_t c1 = c0 + group < planes ? c0 + group : planes;
    std::memset(gx + c0 * n_in, 0, static_cast<size_t>((c1 - c0) * n_in) * sizeof(float));
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t j = 0; j < n_out; ++j) gx[c * n_in + idx[c * n_out + j]] += gy[c * n_out + j];
  }
}

// Max backward of planes whose indices were checked to lie each in its own 2x2 block
// (kOwnBlocks): no two coincide, so plain stores of g + 0 give the scatter-add's values
// (0 + g: -0 -> +0) without its read-modify-write; group by group as the scatter.
inline void max_store_plane(const float* __restrict gy, const int64_t* __restrict idx, float* __restrict gx,
                            int64_t n_out) {
  for (int64_t j = 0; j < n_out; ++j) gx[idx[j]] = gy[j] + 0.0f;
}

inline void max_backward_store(const float* gy, const int64_t* idx, float* gx, int64_t planes,
                               const Pool2dGeom& g) {
  const int64_t n_in = g.H * g.W, n_out = g.OH * g.OW, group = max_bwd_group(g);
  for (int64_t c0 = 0; c0 < planes; c0 += group) {
    const int64_t c1 = c0 + group < planes ? c0 + group : planes;
    std::memset(gx + c0 * n_in, 0, static_cast<size_t>((c1 - c0) * n_in) * sizeof(float));
    for (int64_t c = c0; c < c1; ++c) max_store_plane(gy + c * n_out, idx + c * n_out, gx + c * n_in, n_out);
  }
}

// Top-left input of each output of a k2s2-shaped plane (OH == H/2, OW == W/2: the backward
// knows only the shapes), for the own-block checks, repeated over *period planes so that a
// period holds a whole number of 8-index vectors (the checks then run over the flat stream
// of indices in whole vectors); false (no table) for other shapes and for planes of more
// than kPinMax outputs.
constexpr int64_t kPinMax = 256;

inline bool max_bwd_pins(const Pool2dGeom& g, int32_t* pin, int64_t* period) {
  const int64_t n_out = g.OH * g.OW;
  if (!(g.OH == g.H / 2 && g.OW == g.W / 2 && n_out <= kPinMax)) return false;
  *period = (n_out & 1) != 0 ? 8 : (n_out & 3) != 0 ? 4 : (n_out & 7) != 0 ? 2 : 1;
  for (int64_t p = 0, k = 0; p < *period; ++p)
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow) pin[k++] = static_cast<int32_t>(2 * oh * g.W + 2 * ow);
  return true;
}

// check_indices for one plane, plainly (the scalar variant and the vector variants' tails
// share it): the worst of each index's kOwnBlocks / kInRange / kOutOfRange. pin may be null
// (no own-block test).
inline int check_indices_cells(const int64_t* idx, int64_t from, int64_t to, const Pool2dGeom& g,
                               const int32_t* pin) {
  int res = pin != nullptr ? kOwnBlocks : kInRange;
  for (int64_t j = from; j < to; ++j) {
    if (idx[j] < 0 || idx[j] >= g.H * g.W) return kOutOfRange;
    const int64_t off = pin != nullptr ? idx[j] - pin[j] : 0;
    if (pin != nullptr && off != 0 && off != 1 && off != g.W && off != g.W + 1) res = kInRange;
  }
  return res;
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
