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

bool use_direct(const ConvGeom& g) {
  return g.Cg() == 1 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1;
}

bool use_pointwise(const ConvGeom& g) {
  return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pb == 0 &&
         g.pl == 0 && g.pr == 0;
}

// Output columns [lo, hi) whose input column ow*sw + off lies inside [0, W).
void valid_range(int64_t off, int64_t s, int64_t W, int64_t OW, int64_t* lo, int64_t* hi) {
  int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
  int64_t h = W - 1 - off >= 0 ? (W - 1 - off) / s + 1 : 0;
  if (h > OW) h = OW;
  if (l > h) l = h;
  *lo = l;
  *hi = h;
}

// col[((c*kh + i)*kw + j)*P + oh*OW + ow] = x[c, oh*sh - pt + i*dh, ow*sw - pl + j*dw] (0 outside)
// for the Cg channels starting at x.
void im2col(const ConvGeom& g, const float* x, float* col) {
  const int64_t P = g.P(), Cg = g.Cg();
  for (int64_t c = 0; c < Cg; ++c) {
    for (int64_t i = 0; i < g.kh; ++i) {
      for (int64_t j = 0; j < g.kw; ++j) {
        float* row = col + ((c * g.kh + i) * g.kw + j) * P;
        const int64_t off = j * g.dw - g.pl;
        int64_t lo, hi;
        valid_range(off, g.sw, g.W, g.OW, &lo, &hi);
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          float* dst = row + oh * g.OW;
          const int64_t ih = oh * g.sh - g.pt + i * g.dh;
          if (ih < 0 || ih >= g.H) {
            std::memset(dst, 0, sizeof(float) * g.OW);
            continue;
          }
          const float* src = x + (c * g.H + ih) * g.W + off;
          std::memset(dst, 0, sizeof(float) * lo);
          if (g.sw == 1) {
            std::memcpy(dst + lo, src + lo, sizeof(float) * (hi - lo));
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow * g.sw];
          }
          std::memset(dst + hi, 0, sizeof(float) * (g.OW - hi));
        }
      }
    }
  }
}

// The adjoint of im2col: x[c, ih, iw] += col[...] for every tap that read it, in a fixed
// (c, i, j, oh, ow) order. x (Cg channels) must be zeroed by the caller.
void col2im(const ConvGeom& g, const float* col, float* x) {
  const int64_t P = g.P(), Cg = g.Cg();
  for (int64_t c = 0; c < Cg; ++c) {
    for (int64_t i = 0; i < g.kh; ++i) {
      for (int64_t j = 0; j < g.kw; ++j) {
        const float* row = col + ((c * g.kh + i) * g.kw + j) * P;
        const int64_t off = j * g.dw - g.pl;
        int64_t lo, hi;
        valid_range(off, g.sw, g.W, g.OW, &lo, &hi);
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          const int64_t ih = oh * g.sh - g.pt + i * g.dh;
          if (ih < 0 || ih >= g.H) continue;
          const float* src = row + oh * g.OW;
          float* dst = x + (c * g.H + ih) * g.W + off;
          if (g.sw == 1) {
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow] += src[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow * g.sw] += src[ow];
          }
        }
      }
    }
  }
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
  const int64_t Og = g.Og(), Cg = g.Cg(), Kg = g.Kg(), P = g.P();
  const bool pointwise = use_pointwise(g);
  // One image per item; at batch 1 the single item runs on the calling thread, outside any
  // parallel region, so sgemm splits the one big GEMM over the threads itself.
  parallel_for(g.N, 1, [&](int64_t b, int64_t e) {
    std::vector<float> col(pointwise ? 0 : Kg * P);
    for (int64_t n = b; n < e; ++n) {
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        const float* xg = x + (n * g.C + grp * Cg) * g.H * g.W;
        if (!pointwise) im2col(g, xg, col.data());
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
  const int64_t Og = g.Og(), Cg = g.Cg(), Kg = g.Kg(), P = g.P(), HW = g.H * g.W;
  const bool pointwise = use_pointwise(g);
  const int64_t n_chunks = (g.N + kChunk - 1) / kChunk;
  const int64_t wsize = g.O * Kg;
  std::vector<float> wbuf(gw ? n_chunks * wsize : 0, 0.0f);
  std::vector<float> bbuf(gb ? n_chunks * g.O : 0, 0.0f);
  const bool need_col = !pointwise && (gx != nullptr || gw != nullptr);
  parallel_for(n_chunks, 1, [&](int64_t b, int64_t e) {
    std::vector<float> col(need_col ? Kg * P : 0);
    for (int64_t ch = b; ch < e; ++ch) {
      const int64_t n_end = (ch + 1) * kChunk < g.N ? (ch + 1) * kChunk : g.N;
      for (int64_t n = ch * kChunk; n < n_end; ++n) {
        const float* gyn = gy + n * g.O * P;
        if (gx != nullptr) {
          float* gxn = gx + n * g.C * HW;
          if (!pointwise) std::memset(gxn, 0, sizeof(float) * g.C * HW);
          for (int64_t grp = 0; grp < g.groups; ++grp) {
            float* dst = pointwise ? gxn + grp * Cg * HW : col.data();
            sgemm(true, false, Kg, P, Og, w + grp * Og * Kg, Kg, gyn + grp * Og * P, P, 0.0f,
                  dst, P);
            if (!pointwise) col2im(g, col.data(), gxn + grp * Cg * HW);
          }
        }
        if (gw != nullptr) {
          for (int64_t grp = 0; grp < g.groups; ++grp) {
            const float* xg = x + (n * g.C + grp * Cg) * HW;
            if (!pointwise) im2col(g, xg, col.data());
            sgemm(false, true, Og, Kg, P, gyn + grp * Og * P, P, pointwise ? xg : col.data(), P,
                  1.0f, wbuf.data() + ch * wsize + grp * Og * Kg, Kg);
          }
        }
        if (gb != nullptr) {
          float* bb = bbuf.data() + ch * g.O;
          for (int64_t o = 0; o < g.O; ++o) {
            const float* r = gyn + o * P;
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
