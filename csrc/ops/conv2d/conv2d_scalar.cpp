// conv2d, scalar reference of the direct single-input-channel kernel (see conv2d.h).
#include "ops/conv2d/conv2d.h"

namespace fv {
namespace {

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

}  // namespace

extern const ConvKernels conv2d_kernels_scalar = {&direct_c1};

}  // namespace fv
