// conv2d driver: picks a path per shape, splits the work over threads, calls fv::sgemm and
// the ISA direct kernel (see conv2d.h for the maths and layouts).
//
// Paths (chosen from the shape only, never from the ISA or thread count):
//   direct    Cg == 1, stride 1, dilation 1 (first layers with C = 1, depthwise): the ISA
//             kernel on a zero-padded copy of the input plane; K = kh*kw is too short for GEMM.
//   pointwise 1x1, stride 1, no padding: the input image already is the col matrix.
//   im2col    everything else: col[Kg, P] per image and group, then one GEMM
//             y_g[Og, P] = W_g[Og, Kg] x col[Kg, P] with the bias-per-row + relu epilogue.
// Backward data: gcol = W_g^T x gy_g (sgemm trans_a) then col2im (scatter-add within one
// image, so threads over images never race). Backward weight/bias: the batch is cut into
// FIXED chunks of kChunk images; each chunk accumulates into its own buffer (beta = 1 sgemm
// calls in image order), then the chunk buffers are summed in chunk order, so the result does
// not depend on the thread count.
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "ops/conv2d/conv2d.h"
#include "ops/gemm/gemm.h"

namespace fv {
namespace {

const KernelSet<ConvKernels> kConv = FV_KERNEL_SET(ConvKernels, conv2d_kernels);
constexpr int64_t kChunk = 4;       // images per weight-gradient chunk (fixed: determinism)
constexpr int64_t kDirectOc = 16;   // output channels per direct-path work unit
// Weight gradient: images of a chunk go side by side into one col matrix [Kg, nb*P] so that
// one GEMM with a long reduction (nb*P) replaces nb short ones; nb is capped so that the
// buffer stays cache-sized. It depends on the shape only (determinism).
constexpr int64_t kColCap = 1 << 18;  // floats

bool use_direct(const ConvGeom& g) {
  return g.Cg() == 1 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1;
}

bool use_pointwise(const ConvGeom& g) {
  return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pb == 0 &&
         g.pl == 0 && g.pr == 0;
}

void forward_direct(const ConvGeom& g, const float* x, const float* w, const float* bias,
                    bool relu, float* y) {
  const ConvKernels& k = kConv.cpu();
  const int64_t Og = g.Og(), P = g.P();
  const int64_t n_oc = (Og + kDirectOc - 1) / kDirectOc;
  const int64_t Hp = g.H + g.pt + g.pb, Wp = g.W + g.pl + g.pr;
  const bool padded = Hp != g.H || Wp != g.W;
  // Units (n, group, block of kDirectOc output channels): enough of them to feed the threads
  // even at batch 1; each output element is computed the same way in any unit.
  parallel_for(g.N * g.groups * n_oc, 1, [&](int64_t b, int64_t e) {
    std::vector<float> pad(padded ? Hp * Wp : 0, 0.0f);
    int64_t padded_plane = -1;  // which (n, c) plane `pad` holds
    for (int64_t u = b; u < e; ++u) {
      const int64_t oc = u % n_oc, ng = u / n_oc;  // ng = n * groups + group
      const int64_t grp = ng % g.groups, n = ng / g.groups;
      const float* plane = x + ng * g.H * g.W;   // Cg == 1: channel index == group
      if (padded) {
        if (padded_plane != ng) {
          for (int64_t r = 0; r < g.H; ++r) {
            std::memcpy(pad.data() + (r + g.pt) * Wp + g.pl, plane + r * g.W, sizeof(float) * g.W);
          }
          padded_plane = ng;
        }
        plane = pad.data();
      }
      const int64_t o0 = grp * Og + oc * kDirectOc;
      const int64_t cnt = Og - oc * kDirectOc < kDirectOc ? Og - oc * kDirectOc : kDirectOc;
      k.direct_c1(plane, Hp, Wp, w + o0 * g.kh * g.kw, bias ? bias + o0 : nullptr, cnt, g.kh,
                  g.kw, g.OH, g.OW, relu, y + (n * g.O + o0) * P, P);
    }
  });
}

}  // namespace

void conv2d_forward(const ConvGeom& g, const float* x, const float* w, const float* bias,
                    bool relu, float* y) {
  if (use_direct(g)) return forward_direct(g, x, w, bias, relu, y);
  const ConvKernels& k = kConv.cpu();
  const int64_t Og = g.Og(), Cg = g.Cg(), Kg = g.Kg(), P = g.P();
  const bool pointwise = use_pointwise(g);
  // One image per item; at batch 1 the single item runs on the calling thread, outside any
  // parallel region, so sgemm splits the one big GEMM over the threads itself.
  parallel_for(g.N, 1, [&](int64_t b, int64_t e) {
    std::vector<float> col(pointwise ? 0 : Kg * P);
    for (int64_t n = b; n < e; ++n) {
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        const float* xg = x + (n * g.C + grp * Cg) * g.H * g.W;
        if (!pointwise) k.im2col(&g, xg, col.data(), P);
        GemmEpilogue ep;
        if (bias != nullptr) {
          ep.bias_kind = GemmEpilogue::Bias::per_row;
          ep.bias = bias + grp * Og;
        }
        ep.relu = relu;
        sgemm(false, false, Og, P, Kg, w + grp * Og * Kg, Kg, pointwise ? xg : col.data(), P,
              0.0f, y + (n * g.O + grp * Og) * P, P, ep);
      }
    }
  });
}

void conv2d_backward(const ConvGeom& g, const float* gy, const float* x, const float* w,
                     float* gx, float* gw, float* gb) {
  const ConvKernels& k = kConv.cpu();
  const int64_t Og = g.Og(), Cg = g.Cg(), Kg = g.Kg(), P = g.P(), HW = g.H * g.W;
  const bool pointwise = use_pointwise(g);
  const int64_t n_chunks = (g.N + kChunk - 1) / kChunk;
  const int64_t wsize = g.O * Kg;
  // Images per weight GEMM (a divisor-free cap: the last group of a chunk may be shorter).
  int64_t nb = kColCap / (Kg * P > 0 ? Kg * P : 1);
  if (nb < 1) nb = 1;
  if (nb > kChunk) nb = kChunk;
  if (pointwise) nb = 1;  // x itself is the col matrix of one image
  std::vector<float> wbuf(gw ? n_chunks * wsize : 0, 0.0f);
  std::vector<float> bbuf(gb ? n_chunks * g.O : 0, 0.0f);
  parallel_for(n_chunks, 1, [&](int64_t b, int64_t e) {
    std::vector<float> gcol(gx != nullptr && !pointwise ? Kg * P : 0);
    std::vector<float> col(gw != nullptr && !pointwise ? Kg * nb * P : 0);
    std::vector<float> gyc(gw != nullptr && nb > 1 ? g.O * nb * P : 0);
    for (int64_t ch = b; ch < e; ++ch) {
      const int64_t n0 = ch * kChunk;
      const int64_t n_end = n0 + kChunk < g.N ? n0 + kChunk : g.N;
      if (gx != nullptr) {
        for (int64_t n = n0; n < n_end; ++n) {
          const float* gyn = gy + n * g.O * P;
          float* gxn = gx + n * g.C * HW;
          if (!pointwise) std::memset(gxn, 0, sizeof(float) * g.C * HW);
          for (int64_t grp = 0; grp < g.groups; ++grp) {
            float* dst = pointwise ? gxn + grp * Cg * HW : gcol.data();
            sgemm(true, false, Kg, P, Og, w + grp * Og * Kg, Kg, gyn + grp * Og * P, P, 0.0f,
                  dst, P);
            if (!pointwise) k.col2im(&g, gcol.data(), P, gxn + grp * Cg * HW);
          }
        }
      }
      if (gw != nullptr) {
        float* wb = wbuf.data() + ch * wsize;
        for (int64_t s0 = n0; s0 < n_end; s0 += nb) {
          const int64_t cnt = s0 + nb < n_end ? nb : n_end - s0;
          const int64_t ld = cnt * P;
          // gy of the cnt images as [O, cnt*P] (a view when cnt == 1).
          const float* gya = gy + s0 * g.O * P;
          if (cnt > 1) {
            for (int64_t t = 0; t < cnt; ++t) {
              for (int64_t o = 0; o < g.O; ++o) {
                std::memcpy(gyc.data() + o * ld + t * P, gy + ((s0 + t) * g.O + o) * P,
                            sizeof(float) * P);
              }
            }
            gya = gyc.data();
          }
          for (int64_t grp = 0; grp < g.groups; ++grp) {
            const float* colp = x + (s0 * g.C + grp * Cg) * HW;  // pointwise: x is col
            if (!pointwise) {
              for (int64_t t = 0; t < cnt; ++t) {
                k.im2col(&g, x + ((s0 + t) * g.C + grp * Cg) * HW, col.data() + t * P, ld);
              }
              colp = col.data();
            }
            sgemm(false, true, Og, Kg, ld, gya + grp * Og * ld, ld, colp, ld,
                  s0 == n0 ? 0.0f : 1.0f, wb + grp * Og * Kg, Kg);
          }
        }
      }
      if (gb != nullptr) {
        float* bb = bbuf.data() + ch * g.O;
        for (int64_t n = n0; n < n_end; ++n) {
          for (int64_t o = 0; o < g.O; ++o) {
            const float* r = gy + (n * g.O + o) * P;
            float s = 0.0f;
            for (int64_t p = 0; p < P; ++p) s += r[p];
            bb[o] += s;
          }
        }
      }
    }
  });
  // Chunk buffers summed in chunk order, element by element (any split of the elements over
  // threads gives the same bits).
  if (gw != nullptr) {
    parallel_for(wsize, 4096, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        float s = wbuf[i];
        for (int64_t ch = 1; ch < n_chunks; ++ch) s += wbuf[ch * wsize + i];
        gw[i] = s;
      }
    });
  }
  if (gb != nullptr) {
    for (int64_t o = 0; o < g.O; ++o) {
      float s = bbuf[o];
      for (int64_t ch = 1; ch < n_chunks; ++ch) s += bbuf[ch * g.O + o];
      gb[o] = s;
    }
  }
}

}  // namespace fv
