// pool2d, scalar reference and fallback (see pool2d.h): every output element through the
// shared per-element code, backward as plain scatters.
#include "ops/pool2d/pool2d.h"

namespace fv {
namespace {

void max_forward_plane(const float* x, float* y, int64_t* idx, const Pool2dGeom& g) {
  for (int64_t oh = 0; oh < g.OH; ++oh)
    for (int64_t ow = 0; ow < g.OW; ++ow) max_cell(x, y, idx, g, oh, ow);
}

void avg_forward_plane(const float* x, float* y, const Pool2dGeom& g, bool count_include_pad) {
  for (int64_t oh = 0; oh < g.OH; ++oh)
    for (int64_t ow = 0; ow < g.OW; ++ow) avg_cell(x, y, g, oh, ow, count_include_pad);
}

void avg_backward_plane(const float* gy, float* gx, const Pool2dGeom& g, bool count_include_pad) {
  avg_backward_scatter(gy, gx, g, count_include_pad);
}

void max_forward(const float* x, float* y, int64_t* idx, int64_t planes, const Pool2dGeom& g) {
  const int64_t in_n = g.H * g.W, out_n = g.OH * g.OW;
  for (int64_t c = 0; c < planes; ++c)
    max_forward_plane(x + c * in_n, y + c * out_n, idx == nullptr ? nullptr : idx + c * out_n, g);
}

// Always the scatter-add (own_blocks would allow plain stores; the values are the same).
void max_backward(const float* gy, const int64_t* idx, float* gx, int64_t planes, const Pool2dGeom& g,
                  bool /*own_blocks*/) {
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
  int64_t period;
  const bool blocks = max_bwd_pins(g, pin, &period);
  const int64_t n_out = g.OH * g.OW;
  int res = kOwnBlocks;
  for (int64_t c = 0; c < planes; ++c, idx += n_out) {
    const int r = check_indices_cells(idx, 0, n_out, g, blocks ? pin : nullptr);
    if (r == kOutOfRange) return r;
    res = r < res ? r : res;
  }
  return blocks ? res : kInRange;
}

void max_forward_2x2(const float* x, float* y, uint8_t* code, int64_t planes, const Pool2dGeom& g) {
  const int64_t in_n = g.H * g.W, out_n = g.OH * g.OW;
  for (int64_t c = 0; c < planes; ++c)
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow)
        max2x2_cell(x + c * in_n, y + c * out_n, code + c * out_n, g, oh, ow);
}

void max_backward_2x2(const float* gy, const uint8_t* code, const float* relu_y, float* gx,
                      int64_t planes, const Pool2dGeom& g) {
  const int64_t in_n = g.H * g.W, out_n = g.OH * g.OW;
  for (int64_t c = 0; c < planes; ++c) {
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow)
        max2x2_backward_cell(gy + c * out_n, code + c * out_n,
                             relu_y == nullptr ? nullptr : relu_y + c * out_n, gx + c * in_n, g, oh, ow);
    max2x2_backward_edges(gx + c * in_n, g);
  }
}

}  // namespace

extern const Pool2dKernels pool2d_kernels_scalar = {&max_forward, &max_backward, &avg_forward,
                                                    &avg_backward, &check_indices,
                                                    &max_forward_2x2, &max_backward_2x2};

}  // namespace fv
