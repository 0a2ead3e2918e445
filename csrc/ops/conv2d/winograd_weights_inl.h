// The Winograd weight transform U = G k G^T of both tile sizes, written once over a vector
// type (winograd_inl.h's Vec) so the scalar, AVX2 and AVX-512 files run the same operations in
// the same order (the same bits), and written straight into sgemm's packed A layout, which
// the per-element GEMMs read: no row-major U, no packing pass after it. Included by
// winograd_inl.h: everything here has internal linkage.
//
// Lanes are consecutive rows p of one micro-panel (the GEMM's mr rows; AVX-512's 14 fit one
// vector), so each element's value for one depth q is a contiguous store of mr floats. The
// 3x3 kernels are strided in w (9 or 9 C floats apart per lane): they are copied tap by tap
// into a lane-major block first, then loaded as vectors. The copy takes kGather depths at a
// time, lane by lane (each lane reads one run of w), before any of them is loaded: a vector
// load right after the scalar stores that wrote its lanes cannot be forwarded from the store
// buffer and stalls until they retire. One depth at a time, perf put those stalls and the
// lane-crossing reads of w at the top of this transform, itself ~22% of the reference conv3's
// forward pass; batched, that pass went from 0.187 to 0.164 ms and the training step 0.09 ms
// faster (2 threads, AVX-512, on an Intel Xeon: this VM's host on 2026-12-07). With AVX-512
// the copy goes through 16 x 16 transposes instead (gather_kernels): conv3's forward 0.16 ->
// 0.15 ms, its backward 0.48 -> 0.465 (alternating processes, same host type).
#pragma once

#include <cstdint>

#include "ops/conv2d/winograd.h"

namespace fv {
namespace {

// r = G g along a line of 3 (3 -> m + 2): F(2x2)'s G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]
// (exact halvings), F(4x4)'s integer G' (winograd4_inl.h).
template <class Vec, int m>
struct WeightLine;

template <class Vec>
struct WeightLine<Vec, 2> {
  using F = typename Vec::F;
  static void g(F g0, F g1, F g2, F* r) {
    const F half = Vec::set1(0.5f);
    r[0] = g0;
    r[1] = Vec::mul(Vec::add(Vec::add(g0, g1), g2), half);
    r[2] = Vec::mul(Vec::add(Vec::sub(g0, g1), g2), half);
    r[3] = g2;
  }
};

template <class Vec>
struct WeightLine<Vec, 4> {
  using F = typename Vec::F;
  static void g(F g0, F g1, F g2, F* r) {
    const F two = Vec::set1(2.0f), four = Vec::set1(4.0f);
    const F s = Vec::add(g0, g2), f = Vec::add(g0, Vec::mul(four, g2));
    const F g1x2 = Vec::mul(two, g1);
    r[0] = g0;
    r[1] = Vec::neg(Vec::add(s, g1));
    r[2] = Vec::neg(Vec::sub(s, g1));
    r[3] = Vec::add(f, g1x2);
    r[4] = Vec::sub(f, g1x2);
    r[5] = g2;
  }
};

// k[iq][t][l] (flat: k[(iq * 9 + t) * L + l]) = tap t (rotated: 8 - t) of the 3x3 kernel
// at w + l * p_stride + iq * q_stride, for lanes l < live and depths iq < nq; lane by lane,
// each lane reading its run of w.
template <class Vec>
inline void gather_kernels_scalar(const float* w, int64_t p_stride, int64_t q_stride,
                                  int64_t live, int nq, bool rotate, float* k) {
  constexpr int L = Vec::L;
  for (int64_t l = 0; l < live; ++l) {
    const float* src = w + l * p_stride;
    for (int iq = 0; iq < nq; ++iq) {
      for (int t = 0; t < 9; ++t) k[(iq * 9 + t) * L + l] = src[iq * q_stride + (rotate ? 8 - t : t)];
    }
  }
}

// The same (not rotated) through L x L transposes (Vec::transpose; AVX2 8 x 8, AVX-512
// 16 x 16): the forward's kernels of a lane are one run of nq * 9 floats (q_stride 9), cut
// into vectors whose transposes hold L (iq, t) pairs each; the data gradient's kernels of one
// depth are one run over the lanes (p_stride 9), one transpose per depth (with L = 8, tap 8
// is copied lane by lane). A copy: the same values as gather_kernels_scalar, a few times
// fewer instructions (the scalar copy, 126 to 144 loads and stores per lane, was ~30% of the
// transform's samples on the reference conv3 with AVX-512).
template <class Vec>
inline void gather_kernels(const float* w, int64_t p_stride, int64_t q_stride, int64_t live,
                           int nq, float* k) {
  using F = typename Vec::F;
  constexpr int L = Vec::L;
  static_assert(L == 8 || L == 16, "8 x 8 or 16 x 16 transposes");
  F rows[L], cols[L];
  if (q_stride == 9) {
    const int64_t run = nq * 9;
    for (int64_t f0 = 0; f0 < run; f0 += L) {
      const typename Vec::K m = Vec::mask(0, run - f0);
      for (int l = 0; l < L; ++l) rows[l] = l < live ? Vec::load(w + l * p_stride + f0, m) : Vec::zero();
      Vec::transpose(rows, cols);
      for (int64_t j = 0; j < L && f0 + j < run; ++j) Vec::store_all(k + (f0 + j) * L, cols[j]);
    }
  } else if (p_stride == 9) {
    constexpr int kTaps = L < 9 ? L : 9;  // taps per transpose
    const typename Vec::K m = Vec::mask(0, kTaps);
    for (int iq = 0; iq < nq; ++iq) {
      const float* src = w + iq * q_stride;
      for (int l = 0; l < L; ++l) rows[l] = l < live ? Vec::load(src + l * 9, m) : Vec::zero();
      Vec::transpose(rows, cols);
      for (int t = 0; t < kTaps; ++t) Vec::store_all(k + (iq * 9 + t) * L, cols[t]);
      for (int t = kTaps; t < 9; ++t) {
        for (int64_t l = 0; l < live; ++l) k[(iq * 9 + t) * L + l] = src[l * 9 + t];
      }
    }
  } else {
    gather_kernels_scalar<Vec>(w, p_stride, q_stride, live, nq, false, k);
  }
}

// WinogradKernels::weight_transform (winograd.h) for F(m x m).
template <class Vec, int m>
void weight_transform_t(const float* w, int64_t O, int64_t C, WinoWeights mode, int64_t mr,
                        int64_t kc, int64_t a_size, int64_t i0, int64_t i1, float* Upack) {
  using F = typename Vec::F;
  constexpr int n = m + 2, L = Vec::L;
  const bool data_grad = mode != WinoWeights::forward;
  const bool rotate = mode == WinoWeights::data_conv;
  const int64_t P = data_grad ? C : O, Q = data_grad ? O : C;
  // Strides of w along p and q (a kernel's 9 taps are contiguous either way).
  const int64_t p_stride = data_grad ? 9 : C * 9, q_stride = data_grad ? C * 9 : 9;
  const int64_t P_padded = (P + mr - 1) / mr * mr;
  constexpr int kGather = 16;
  alignas(64) float k[kGather][9][L];
  for (int64_t item0 = i0; item0 < i1;) {
    // A run of items of one micro-panel: depths q0 .. q0 + nq.
    const int64_t panel = item0 / Q, q0 = item0 % Q;
    const int64_t left = i1 - item0 < Q - q0 ? i1 - item0 : Q - q0;
    const int nq = static_cast<int>(left < kGather ? left : kGather);
    for (int64_t l0 = 0; l0 < mr; l0 += L) {  // lanes: rows panel*mr + l0 + [0, L)
      const int64_t p0 = panel * mr + l0;
      const int64_t live = P - p0 < L ? (P - p0 > 0 ? P - p0 : 0) : L;  // rows < P
      const int64_t width = mr - l0 < L ? mr - l0 : L;  // lanes stored (rows past P: 0)
      const float* wl = w + p0 * p_stride + q0 * q_stride;
      bool gathered = false;
      if constexpr (Vec::L > 1) {  // AVX2, AVX-512: runs of w transposed into k in registers
        if (!rotate) {
          gather_kernels<Vec>(wl, p_stride, q_stride, live, nq, &k[0][0][0]);
          gathered = true;
        }
      }
      if (!gathered) gather_kernels_scalar<Vec>(wl, p_stride, q_stride, live, nq, rotate, &k[0][0][0]);
      const typename Vec::K in = Vec::mask(0, live), out = Vec::mask(0, width);
      for (int iq = 0; iq < nq; ++iq) {
        const int64_t q = q0 + iq, block = q / kc, kq = q % kc;
        const int64_t kc_b = Q - block * kc < kc ? Q - block * kc : kc;
        float* dst = Upack + P_padded * block * kc + panel * kc_b * mr + kq * mr;
        // A micro-panel narrower than a vector (AVX2: mr 6 of 8 lanes) is stored whole where
        // the lanes past it land on the next depth's rows of the same K block and that depth
        // is stored next (in this loop, one lane group): it overwrites them. Masked stores
        // cost ~6x a plain one on AMD Zen 3 (AVX2's vmaskmovps); the K block's last depth
        // and the run's last stay masked (the slots past them belong to other items).
        const bool whole = width == L || (mr <= L && iq + 1 < nq && kq + 1 < kc_b);
        F gk[n][3];  // G k, column by column
        for (int j = 0; j < 3; ++j) {
          F r[n];
          WeightLine<Vec, m>::g(Vec::load(k[iq][j], in), Vec::load(k[iq][3 + j], in),
                                Vec::load(k[iq][6 + j], in), r);
          for (int i = 0; i < n; ++i) gk[i][j] = r[i];
        }
        for (int i = 0; i < n; ++i) {  // row i of (G k) G^T: elements i*n .. i*n + n
          F u[n];
          WeightLine<Vec, m>::g(gk[i][0], gk[i][1], gk[i][2], u);
          for (int j = 0; j < n; ++j) {
            float* d = dst + (i * n + j) * a_size + l0;
            if (whole) {
              Vec::store_all(d, u[j]);
            } else {
              Vec::store(d, out, u[j]);
            }
          }
        }
      }
    }
    item0 += nq;
  }
}

}  // namespace
}  // namespace fv
