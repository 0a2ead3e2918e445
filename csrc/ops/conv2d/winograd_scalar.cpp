// Winograd tile transforms, scalar (one tile per "vector"): see winograd.h / winograd_inl.h.
#include "ops/conv2d/winograd_inl.h"
#include "ops/conv2d/winograd4_inl.h"

namespace fv {
namespace {

struct VecScalar {
  static constexpr bool kPairs = false;
  static constexpr bool kRowLoads = false;  // gathers
  static constexpr int L = 1;
  using F = float;
  using K = bool;
  static K kor(K a, K b) { return a || b; }
  static F zero() { return 0.0f; }
  static F add(F a, F b) { return a + b; }
  static F sub(F a, F b) { return a - b; }
  static F neg(F a) { return -a; }
  static F max0(F a) { return a < 0.0f ? 0.0f : a; }  // NaN stays NaN, as torch.relu
  static F set1(float v) { return v; }
  static F mul(F a, F b) { return a * b; }
  static void take_if_greater_or_nan(F v, F at_v, F* best, F* at) {
    if (v > *best || v != v) {
      *best = v;
      *at = at_v;
    }
  }
  static K kand(K a, K b) { return a && b; }
  static F gather(const float* base, const int32_t* idx, K m) { return m ? base[idx[0]] : 0.0f; }
  static void tiles16(const F* v, float* out) {
    for (int k = 0; k < 16; ++k) out[k] = v[k];
  }
  static void store_tile(float* d, int64_t ld, const float* s, int rows, int cols) {
    for (int a = 0; a < rows; ++a) {
      for (int b = 0; b < cols; ++b) d[a * ld + b] = s[4 * a + b];
    }
  }
  static K mask(int64_t lo, int64_t hi) { return lo <= 0 && 0 < hi; }
  static F load(const float* p, K m) { return m ? *p : 0.0f; }
  static void store(float* p, K m, F v) {
    if (m) *p = v;
  }
  static void store_all(float* p, F v) { *p = v; }
  static F even(F a, F b) { return a; }
  static F odd(F a, F b) { return b; }
  static void interleave(F v0, F v1, F* lo, F* hi) {
    *lo = v0;
    *hi = v1;
  }
};

}  // namespace
}  // namespace fv

FV_WINOGRAD_TABLE(VecScalar, scalar)
FV_WINOGRAD4_TABLE(VecScalar, scalar)
