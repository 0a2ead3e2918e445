// Optimizer updates, AVX-512 (see optim.h). 16 floats per step; the tail is the same body
// under a mask, so every element takes the same arithmetic path (and the scalar file's).
// Separate mul/add, no FMA: bitwise identical to the scalar file.
#include <immintrin.h>

#include <cstdint>

#include "ops/optim/optim.h"

namespace fv {
namespace {

typedef __m512 V;

inline V ld(const float* p, __mmask16 k) { return _mm512_maskz_loadu_ps(k, p); }
inline void st(float* p, __mmask16 k, V v) { _mm512_mask_storeu_ps(p, k, v); }
inline V add(V a, V b) { return _mm512_add_ps(a, b); }
inline V sub(V a, V b) { return _mm512_sub_ps(a, b); }
inline V mul(V a, V b) { return _mm512_mul_ps(a, b); }
inline V vdiv(V a, V b) { return _mm512_div_ps(a, b); }
inline V bc(float x) { return _mm512_set1_ps(x); }

// torch's lerp; `small` is w < 0.5, the same for every lane.
inline V lerp(V x, V y, float w, bool small) {
  return small ? add(x, mul(bc(w), sub(y, x))) : sub(y, mul(sub(y, x), bc(1.0f - w)));
}

__mmask16 mask_at(int64_t i, int64_t n) {
  return n - i >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - i)) - 1u);
}

void sgd(float* param, const float* grad, float* buf, int64_t n, const SgdParams& hp) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = mask_at(i, n);
    const V p = ld(param + i, k);
    V d = ld(grad + i, k);
    if (hp.weight_decay != 0.0f) d = add(d, mul(bc(hp.weight_decay), p));
    if (hp.momentum != 0.0f) {
      const V b = hp.first_step ? d : add(mul(ld(buf + i, k), bc(hp.momentum)), mul(bc(hp.keep), d));
      st(buf + i, k, b);
      d = hp.nesterov ? add(d, mul(bc(hp.momentum), b)) : b;
    }
    st(param + i, k, add(p, mul(bc(hp.neg_lr), d)));
  }
}

void adam(float* param, const float* grad, float* m, float* v, float* v_max, int64_t n,
          const AdamParams& hp) {
  const bool small = hp.w1 < 0.5f;
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = mask_at(i, n);
    V p = ld(param + i, k), g = ld(grad + i, k);
    if (hp.decay != 1.0f) p = mul(p, bc(hp.decay));
    if (hp.weight_decay != 0.0f) g = add(g, mul(bc(hp.weight_decay), p));
    const V mi = lerp(ld(m + i, k), g, hp.w1, small);
    const V vi = add(mul(ld(v + i, k), bc(hp.beta2)), mul(mul(bc(hp.w2), g), g));
    st(m + i, k, mi);
    st(v + i, k, vi);
    V vv = vi;
    if (hp.amsgrad) {
      vv = _mm512_max_ps(ld(v_max + i, k), vi);  // v_max > v ? v_max : v, as the scalar file
      st(v_max + i, k, vv);
    }
    const V denom = add(vdiv(_mm512_sqrt_ps(vv), bc(hp.bc2_sqrt)), bc(hp.eps));
    st(param + i, k, add(p, vdiv(mul(bc(hp.neg_step_size), mi), denom)));
  }
}

void rmsprop(float* param, const float* grad, float* square_avg, float* buf, float* grad_avg,
             int64_t n, const RmspropParams& hp) {
  const bool small = hp.w < 0.5f;
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = mask_at(i, n);
    const V p = ld(param + i, k);
    V g = ld(grad + i, k);
    if (hp.weight_decay != 0.0f) g = add(g, mul(bc(hp.weight_decay), p));
    const V sq = add(mul(ld(square_avg + i, k), bc(hp.alpha)), mul(mul(bc(hp.w), g), g));
    st(square_avg + i, k, sq);
    V avg;
    if (hp.centered) {
      const V ga = lerp(ld(grad_avg + i, k), g, hp.w, small);
      st(grad_avg + i, k, ga);
      avg = _mm512_sqrt_ps(add(sq, mul(_mm512_xor_ps(ga, bc(-0.0f)), ga)));
    } else {
      avg = _mm512_sqrt_ps(sq);
    }
    avg = add(avg, bc(hp.eps));
    if (hp.momentum > 0.0f) {
      const V b = add(mul(ld(buf + i, k), bc(hp.momentum)), vdiv(g, avg));
      st(buf + i, k, b);
      st(param + i, k, add(p, mul(bc(hp.neg_lr), b)));
    } else {
      st(param + i, k, add(p, vdiv(mul(bc(hp.neg_lr), g), avg)));
    }
  }
}

}  // namespace

extern const OptimKernels optim_kernels_avx512 = {&sgd, &adam, &rmsprop};

}  // namespace fv
