// softmax cross-entropy / log_softmax, scalar reference and fallback (see softmax_ce.h).
// Plain loops: the row max, then exp(x - max) with std::exp summed left to right.
#include <cmath>

#include "ops/softmax_ce/softmax_ce.h"

namespace fv {
namespace {

float row_max(const float* x, int64_t c) {
  float m = x[0];
  for (int64_t j = 1; j < c; ++j) m = x[j] > m ? x[j] : m;
  return m;
}

void cross_entropy(const float* x, const int64_t* labels, float* loss, float* grad, int64_t n,
                   const SoftmaxCeParams& p) {
  const int64_t c = p.c;
  for (int64_t i = 0; i < n; ++i) {
    const float* xr = x + i * c;
    float* gr = grad + i * c;
    const int64_t y = labels[i];
    const float m = row_max(xr, c);
    float s = 0.0f, sumd = 0.0f;
    for (int64_t j = 0; j < c; ++j) {
      const float d = xr[j] - m;
      const float e = std::exp(d);
      gr[j] = e;  // the grad row holds exp(x - max) until the sum is known
      s += e;
      sumd += d;
    }
    const float inv = 1.0f / s;
    for (int64_t j = 0; j < c; ++j) {
      const float t = j == y ? p.t_label : p.t_other;
      gr[j] = (gr[j] * inv - t) * p.grad_scale;
    }
    // loss = log s - (1 - ls) * (x_y - max) - (ls / C) * sum_j (x_j - max): three terms >= 0,
    // so no cancellation even for logits near +-1e30.
    const double lse = logf(s);  // float log: the loss is returned in float anyway
    const double dy = xr[y] - m;
    double l = lse - static_cast<double>(p.keep) * dy;
    if (p.smooth != 0.0f) l -= static_cast<double>(p.smooth) * sumd;
    loss[i] = static_cast<float>(l);
  }
}

void log_softmax(const float* x, float* y, int64_t n, int64_t c) {
  for (int64_t i = 0; i < n; ++i) {
    const float* xr = x + i * c;
    float* yr = y + i * c;
    const float m = row_max(xr, c);
    float s = 0.0f;
    for (int64_t j = 0; j < c; ++j) s += std::exp(xr[j] - m);
    const float ls = std::log(s);
    for (int64_t j = 0; j < c; ++j) yr[j] = (xr[j] - m) - ls;
  }
}

void log_softmax_backward(const float* gy, const float* y, float* gx, int64_t n, int64_t c) {
  for (int64_t i = 0; i < n; ++i) {
    const float* gr = gy + i * c;
    const float* yr = y + i * c;
    float* xr = gx + i * c;
    float s = 0.0f;
    for (int64_t j = 0; j < c; ++j) s += gr[j];
    for (int64_t j = 0; j < c; ++j) xr[j] = gr[j] - std::exp(yr[j]) * s;
  }
}

}  // namespace

extern const SoftmaxCeKernels softmax_ce_kernels_scalar = {&cross_entropy, &log_softmax,
                                                           &log_softmax_backward};

}  // namespace fv
