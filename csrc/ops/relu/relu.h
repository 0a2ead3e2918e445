// relu: y = max(x, 0) elementwise (NaN propagates, as torch.relu), and its backward
// grad_x = grad_y * (y > 0). Any layout (elementwise over n floats).
//
// This op is the annotated template for the others (see csrc/README.md):
//   relu.h          the contract: kernel table type + declarations of its variants
//   relu_scalar.cpp reference and fallback
//   relu_avx2.cpp / relu_avx512.cpp   inner loops, internal linkage, one exported table
//   relu_bind.cpp   pybind11: validate, allocate, release the GIL, split over threads, call
// Tests: tests/test_activation.py; benchmark: bench/bench_kernels.py.
#pragma once

#include <cstdint>

#include "core/dispatch.h"

namespace fv {

struct ReluKernels {
  // y[i] = x[i] < 0 ? 0 : x[i]   (x and y may alias)
  void (*forward)(const float* x, float* y, int64_t n);
  // grad_x[i] = y[i] > 0 ? grad_y[i] : 0
  void (*backward)(const float* grad_y, const float* y, float* grad_x, int64_t n);
};

FV_DECLARE_KERNELS(ReluKernels, relu_kernels);

}  // namespace fv
