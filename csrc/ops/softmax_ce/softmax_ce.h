// Row-wise softmax ops on (N, C) row-major float32 arrays:
//   softmax_cross_entropy  fused per row: loss_i and grad_i = d loss / d logits_i in one pass
//                          over the row (log-sum-exp stabilised by the row max), with torch's
//                          label smoothing (target = (1 - ls) * onehot + ls / C);
//   log_softmax            y = x - max - log(sum exp(x - max));
//   log_softmax_backward   grad_x = grad_y - exp(y) * sum(grad_y), per row.
// Variants: scalar (std::exp / sequential sums), AVX2 and AVX-512 (a vectorised expf written
// in each ISA file; row sums accumulate in 16 lanes, the AVX2 file as two 8-lane halves, and
// both reduce 16 -> 8 -> 4 -> 2 -> 1 in the same order, so AVX2 and AVX-512 give bitwise
// identical results; the scalar differs from them by a few ulps).
// Each kernel handles rows [0, n) of the pointers it is given; the binding splits rows over
// threads, and a row is computed the same way wherever it falls (deterministic).
// Tests: tests/test_loss.py; reference: tests/reference/loss.py.
#pragma once

#include <cstdint>

#include "core/dispatch.h"

namespace fv {

struct SoftmaxCeParams {
  int64_t c;          // classes (row length), >= 1
  float t_other;      // target of a non-label class: ls / C
  float t_label;      // target of the label class: (1 - ls) + ls / C
  float keep;         // 1 - ls: weight of the label's log-probability in the loss
  float smooth;       // ls / C: weight of sum_j log p_j in the loss (0 skips that sum)
  float grad_scale;   // 1/N for reduction "mean", else 1
};

struct SoftmaxCeKernels {
  // For each of n rows: loss[i] = -sum_j target_ij * log softmax(x_i)_j and
  // grad[i, j] = grad_scale * (softmax(x_i)_j - target_ij). labels are in [0, c) (checked).
  void (*cross_entropy)(const float* x, const int64_t* labels, float* loss, float* grad,
                        int64_t n, const SoftmaxCeParams& p);
  // y = log_softmax(x) over each row of c; x and y must not overlap.
  void (*log_softmax)(const float* x, float* y, int64_t n, int64_t c);
  // grad_x = grad_y - exp(y) * sum(grad_y) per row of c.
  void (*log_softmax_backward)(const float* grad_y, const float* y, float* grad_x, int64_t n,
                               int64_t c);
};

FV_DECLARE_KERNELS(SoftmaxCeKernels, softmax_ce_kernels);

}  // namespace fv
