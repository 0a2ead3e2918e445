// Optimizer updates, AVX2 (see optim.h). 8 floats per step with plain loads/stores; the tail
// runs the same body with maskload/maskstore, so every element takes the same arithmetic path.
// Separate mul/add, no FMA: bitwise identical to the scalar and AVX-512 files.
#include <immintrin.h>

#include <cstdint>

#include "ops/optim/optim.h"

namespace fv {
namespace {

typedef __m256 V;

// A lane mask; `full` (all lanes) selects plain loads/stores, which are cheaper than masked
// ones on AMD. Both are inlined into each loop, so `full` is a constant there.
struct M {
  __m256i k;
  bool full;
};

__attribute__((always_inline)) inline V ld(const float* p, const M& m) {
  return m.full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, m.k);
}
__attribute__((always_inline)) inline void st(float* p, const M& m, V v) {
  if (m.full) _mm256_storeu_ps(p, v);
  else _mm256_maskstore_ps(p, m.k, v);
}
inline V add(V a, V b) { return _mm256_add_ps(a, b); }
inline V sub(V a, V b) { return _mm256_sub_ps(a, b); }
inline V mul(V a, V b) { return _mm256_mul_ps(a, b); }
inline V vdiv(V a, V b) { return _mm256_div_ps(a, b); }
inline V bc(float x) { return _mm256_set1_ps(x); }

inline V lerp(V x, V y, float w, bool small) {
  return small ? add(x, mul(bc(w), sub(y, x))) : sub(y, mul(sub(y, x), bc(1.0f - w)));
}

M tail_mask(int64_t r) {
  M m;
  m.k = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(r)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  m.full = false;
  return m;
}

__attribute__((always_inline)) inline void sgd8(float* param, const float* grad, float* buf,
                                                const M& k, const SgdParams& hp) {
  const V p = ld(param, k);
  V d = ld(grad, k);
  if (hp.weight_decay != 0.0f) d = add(d, mul(bc(hp.weight_decay), p));
  if (hp.momentum != 0.0f) {
    const V b = hp.first_step ? d : add(mul(ld(buf, k), bc(hp.momentum)), mul(bc(hp.keep), d));
    st(buf, k, b);
    d = hp.nesterov ? add(d, mul(bc(hp.momentum), b)) : b;
  }
  st(param, k, add(p, mul(bc(hp.neg_lr), d)));
}

void sgd(float* param, const float* grad, float* buf, int64_t n, const SgdParams& hp) {
  const M full = {_mm256_set1_epi32(-1), true};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) sgd8(param + i, grad + i, buf ? buf + i : buf, full, hp);
  if (i < n) sgd8(param + i, grad + i, buf ? buf + i : buf, tail_mask(n - i), hp);
}

__attribute__((always_inline)) inline void adam8(float* param, const float* grad, float* m,
                                                 float* v, float* v_max, const M& k,
                                                 const AdamParams& hp, bool small) {
  V p = ld(param, k), g = ld(grad, k);
  if (hp.decay != 1.0f) p = mul(p, bc(hp.decay));
  if (hp.weight_decay != 0.0f) g = add(g, mul(bc(hp.weight_decay), p));
  const V mi = lerp(ld(m, k), g, hp.w1, small);
  const V vi = add(mul(ld(v, k), bc(hp.beta2)), mul(mul(bc(hp.w2), g), g));
  st(m, k, mi);
  st(v, k, vi);
  V vv = vi;
  if (hp.amsgrad) {
    vv = _mm256_max_ps(ld(v_max, k), vi);  // v_max > v ? v_max : v, as the scalar file
    st(v_max, k, vv);
  }
  const V denom = add(vdiv(_mm256_sqrt_ps(vv), bc(hp.bc2_sqrt)), bc(hp.eps));
  st(param, k, add(p, vdiv(mul(bc(hp.neg_step_size), mi), denom)));
}

void adam(float* param, const float* grad, float* m, float* v, float* v_max, int64_t n,
          const AdamParams& hp) {
  const M full = {_mm256_set1_epi32(-1), true};
  const bool small = hp.w1 < 0.5f;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    adam8(param + i, grad + i, m + i, v + i, v_max ? v_max + i : v_max, full, hp, small);
  if (i < n)
    adam8(param + i, grad + i, m + i, v + i, v_max ? v_max + i : v_max, tail_mask(n - i), hp, small);
}

__attribute__((always_inline)) inline void rmsprop8(float* param, const float* grad,
                                                    float* square_avg, float* buf, float* grad_avg,
                                                    const M& k, const RmspropParams& hp, bool small) {
  const V p = ld(param, k);
  V g = ld(grad, k);
  if (hp.weight_decay != 0.0f) g = add(g, mul(bc(hp.weight_decay), p));
  const V sq = add(mul(ld(square_avg, k), bc(hp.alpha)), mul(mul(bc(hp.w), g), g));
  st(square_avg, k, sq);
  V avg;
  if (hp.centered) {
    const V ga = lerp(ld(grad_avg, k), g, hp.w, small);
    st(grad_avg, k, ga);
    avg = _mm256_sqrt_ps(add(sq, mul(_mm256_xor_ps(ga, bc(-0.0f)), ga)));
  } else {
    avg = _mm256_sqrt_ps(sq);
  }
  avg = add(avg, bc(hp.eps));
  if (hp.momentum > 0.0f) {
    const V b = add(mul(ld(buf, k), bc(hp.momentum)), vdiv(g, avg));
    st(buf, k, b);
    st(param, k, add(p, mul(bc(hp.neg_lr), b)));
  } else {
    st(param, k, add(p, vdiv(mul(bc(hp.neg_lr), g), avg)));
  }
}

void rmsprop(float* param, const float* grad, float* square_avg, float* buf, float* grad_avg,
             int64_t n, const RmspropParams& hp) {
  const M full = {_mm256_set1_epi32(-1), true};
  const bool small = hp.w < 0.5f;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    rmsprop8(param + i, grad + i, square_avg + i, buf ? buf + i : buf,
             grad_avg ? grad_avg + i : grad_avg, full, hp, small);
  if (i < n)
    rmsprop8(param + i, grad + i, square_avg + i, buf ? buf + i : buf,
             grad_avg ? grad_avg + i : grad_avg, tail_mask(n - i), hp, small);
}

}  // namespace

extern const OptimKernels optim_kernels_avx2 = {&sgd, &adam, &rmsprop};

}  // namespace fv
