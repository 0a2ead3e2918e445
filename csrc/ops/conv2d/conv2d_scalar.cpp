// conv2d, scalar reference kernels (see conv2d.h): im2col, col2im, direct single channel.
#include <cstring>

#include "ops/conv2d/conv2d.h"
#include "ops/conv2d/conv2d_rows_inl.h"

namespace fv {
namespace {

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
            std::memset(dst, 0, sizeof(float) * OW);
            continue;
          }
          const float* src = x + (c * g->H + ih) * g->W;
          for (int64_t ow = 0; ow < lo; ++ow) dst[ow] = 0.0f;
          for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow * g->sw + off];
          for (int64_t ow = hi; ow < OW; ++ow) dst[ow] = 0.0f;
        }
      }
    }
  }
}

void direct_c1(const float* xp, int64_t Hp, int64_t Wp, const float* w, const float* bias,
               int64_t O, int64_t kh, int64_t kw, int64_t OH, int64_t OW, bool relu, float* y,
               int64_t y_stride) {
  for (int64_t o = 0; o < O; ++o) {
    const float* wo = w + o * kh * kw;
    float* yo = y + o * y_stride;
    for (int64_t oh = 0; oh < OH; ++oh) {
      for (int64_t ow = 0; ow < OW; ++ow) {
        float acc = 0.0f;
        for (int64_t i = 0; i < kh; ++i) {
          const float* xr = xp + (oh + i) * Wp + ow;
          for (int64_t j = 0; j < kw; ++j) acc += wo[i * kw + j] * xr[j];
        }
        if (bias != nullptr) acc += bias[o];
        if (relu && acc < 0.0f) acc = 0.0f;
        yo[oh * OW + ow] = acc;
      }
    }
  }
}

void wgrad_c1_3x3(const float* xp, int64_t Wp, const float* gy, int64_t O, int64_t OH,
                  int64_t OW, float* gw) {
  for (int64_t o = 0; o < O; ++o) {
    const float* g = gy + o * OH * OW;
    for (int64_t t = 0; t < 9; ++t) {
      const float* xs = xp + (t / 3) * Wp + t % 3;
      float s = 0.0f;
      for (int64_t oh = 0; oh < OH; ++oh) {
        for (int64_t ow = 0; ow < OW; ++ow) s += g[oh * OW + ow] * xs[oh * Wp + ow];
      }
      gw[o * 9 + t] += s;
    }
  }
}

void row_sums(const float* gy, int64_t rows, int64_t P, float* gb) {
  for (int64_t r = 0; r < rows; ++r) {
    float s = 0.0f;
    for (int64_t p = 0; p < P; ++p) s += gy[r * P + p];
    gb[r] += s;
  }
}

void gather_panel(const float* src, const int32_t* ra, const int32_t* rh, const int32_t* rw,
                  int64_t na, const int32_t* cb, const int32_t* ch, const int32_t* cw, int64_t nb,
                  int64_t nr, int32_t H, int32_t W, float* dst) {
  for (int64_t a = 0; a < na; ++a) {
    for (int64_t b = 0; b < nr; ++b) {
      bool ok = b < nb;
      if (ok && rh != nullptr) {
        ok = static_cast<uint32_t>(rh[a] + ch[b]) < static_cast<uint32_t>(H) &&
             static_cast<uint32_t>(rw[a] + cw[b]) < static_cast<uint32_t>(W);
      }
      dst[a * nr + b] = ok ? src[static_cast<int64_t>(ra[a]) + cb[b]] : 0.0f;
    }
  }
}

}  // namespace

extern const ConvKernels conv2d_kernels_scalar = {&im2col, &col2im_scatter, &direct_c1,
                                                  &wgrad_c1_3x3, nullptr,
                                                  &row_sums, &gather_panel,
    &copy_panel_runs, nullptr};

}  // namespace fv
