// Optimizer updates, scalar reference and fallback (see optim.h for the formulas' source).
#include <cmath>

#include "ops/optim/optim.h"

namespace fv {
namespace {

// torch's lerp: exact at both ends, and the small-weight branch for the usual 1 - beta.
float lerp(float x, float y, float w) {
  return w < 0.5f ? x + w * (y - x) : y - (y - x) * (1.0f - w);
}

void sgd(float* param, const float* grad, float* buf, int64_t n, const SgdParams& hp) {
  for (int64_t i = 0; i < n; ++i) {
    float d = grad[i];
    if (hp.weight_decay != 0.0f) d = d + hp.weight_decay * param[i];
    if (hp.momentum != 0.0f) {
      const float b = hp.first_step ? d : buf[i] * hp.momentum + hp.keep * d;
      buf[i] = b;
      d = hp.nesterov ? d + hp.momentum * b : b;
    }
    param[i] = param[i] + hp.neg_lr * d;
  }
}

void adam(float* param, const float* grad, float* m, float* v, float* v_max, int64_t n,
          const AdamParams& hp) {
  for (int64_t i = 0; i < n; ++i) {
    float p = param[i], g = grad[i];
    if (hp.decay != 1.0f) p = p * hp.decay;
    if (hp.weight_decay != 0.0f) g = g + hp.weight_decay * p;
    const float mi = lerp(m[i], g, hp.w1);
    const float vi = v[i] * hp.beta2 + (hp.w2 * g) * g;
    m[i] = mi;
    v[i] = vi;
    float vv = vi;
    if (hp.amsgrad) {
      vv = v_max[i] > vi ? v_max[i] : vi;
      v_max[i] = vv;
    }
    const float denom = std::sqrt(vv) / hp.bc2_sqrt + hp.eps;
    param[i] = p + (hp.neg_step_size * mi) / denom;
  }
}

void rmsprop(float* param, const float* grad, float* square_avg, float* buf, float* grad_avg,
             int64_t n, const RmspropParams& hp) {
  for (int64_t i = 0; i < n; ++i) {
    const float p = param[i];
    float g = grad[i];
    if (hp.weight_decay != 0.0f) g = g + hp.weight_decay * p;
    const float sq = square_avg[i] * hp.alpha + (hp.w * g) * g;
    square_avg[i] = sq;
    float avg;
    if (hp.centered) {
      const float ga = lerp(grad_avg[i], g, hp.w);
      grad_avg[i] = ga;
      avg = std::sqrt(sq + (-ga) * ga);  // addcmul(ga, ga, value=-1)
    } else {
      avg = std::sqrt(sq);
    }
    avg = avg + hp.eps;
    if (hp.momentum > 0.0f) {
      const float b = buf[i] * hp.momentum + g / avg;
      buf[i] = b;
      param[i] = p + hp.neg_lr * b;
    } else {
      param[i] = p + (hp.neg_lr * g) / avg;
    }
  }
}

}  // namespace

extern const OptimKernels optim_kernels_scalar = {&sgd, &adam, &rmsprop};

}  // namespace fv
