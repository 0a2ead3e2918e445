// Optimizer updates, in place, elementwise over n floats (flattened, any shape):
//   sgd      torch.optim.SGD     (momentum, dampening, nesterov, weight_decay)
//   adam     torch.optim.Adam    (amsgrad; AdamW when decoupled)
//   rmsprop  torch.optim.RMSprop (momentum, centered)
// Each kernel transcribes torch's single-tensor (foreach=False) CPU formula in float32, with
// torch's order of operations: x.add_(y, alpha=a) is x + a * y, x.addcmul_(a, b, value=c) is
// x + (c * a) * b, x.addcdiv_(a, b, value=c) is x + (c * a) / b, lerp with weight w < 0.5 is
// x + w * (y - x), else y - (y - x) * (1 - w). Scalar coefficients are computed once in double
// (as torch does in Python) and rounded to float by the binding.
// No FMA anywhere (the SIMD files use separate mul/add, the scalar file builds with
// -ffp-contract=off), and sqrt and division are correctly rounded everywhere, so every ISA gives
// bitwise identical results. No reductions: any split over threads is deterministic.
// Tests: tests/test_optim.py; reference: tests/reference/optim.py.
#pragma once

#include <cstdint>

#include "core/dispatch.h"

namespace fv {

struct SgdParams {
  float neg_lr;        // -lr
  float weight_decay;  // 0: skipped
  float momentum;      // 0: plain SGD, buf unused (may be null)
  float keep;          // 1 - dampening
  bool nesterov;
  bool first_step;     // buf = d_p (torch: the buffer does not exist yet)
};

struct AdamParams {
  float weight_decay;   // coupled (Adam): grad + wd * param; 0: skipped
  float decay;          // decoupled (AdamW): param * (1 - lr * wd); 1: skipped
  float w1;             // 1 - beta1 (lerp weight of exp_avg)
  float beta2;
  float w2;             // 1 - beta2
  float bc2_sqrt;       // sqrt(1 - beta2^step)
  float eps;
  float neg_step_size;  // -lr / (1 - beta1^step)
  bool amsgrad;         // v_max = max(v_max, v), used in the denominator
};

struct RmspropParams {
  float weight_decay;   // 0: skipped
  float alpha;
  float w;              // 1 - alpha
  float eps;
  float momentum;       // 0: no buffer
  float neg_lr;         // -lr
  bool centered;        // grad_avg used
};

struct OptimKernels {
  void (*sgd)(float* param, const float* grad, float* buf, int64_t n, const SgdParams& hp);
  void (*adam)(float* param, const float* grad, float* m, float* v, float* v_max, int64_t n,
               const AdamParams& hp);
  void (*rmsprop)(float* param, const float* grad, float* square_avg, float* buf,
                  float* grad_avg, int64_t n, const RmspropParams& hp);
};

FV_DECLARE_KERNELS(OptimKernels, optim_kernels);

}  // namespace fv
