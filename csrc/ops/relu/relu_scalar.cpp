// relu, scalar reference (see relu.h).
#include "ops/relu/relu.h"

namespace fv {
namespace {

void forward(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

void backward(const float* grad_y, const float* y, float* grad_x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) grad_x[i] = y[i] > 0.0f ? grad_y[i] : 0.0f;
}

}  // namespace

extern const ReluKernels relu_kernels_scalar = {&forward, &backward};

}  // namespace fv
