// conv2d driver: picks a path per shape, splits the work over threads, calls fv::sgemm and
// the ISA direct kernel (see conv2d.h for the maths and layouts).
//
// Paths (chosen from the shape and fastvision.set_conv_algorithm, never from the thread
// count; only auto's Winograd choice for the gradients also looks at the ISA, as measured,
// and small integers come out exact on either path):
//   winograd  3x3 stride-1 layers where F(4x4, 3x3) or F(2x2, 3x3) pays (or is forced):
//             winograd.cpp, for each of forward, data gradient and weight gradient (the two
//             gradients in one pass where winograd_backward_fused_ok).
//   direct    Cg == 1, stride 1, dilation 1 (first layers with C = 1, depthwise): the ISA
//             kernel on a zero-padded copy of the input plane; K = kh*kw is too short for GEMM.
//   pointwise 1x1, stride 1, no padding: the input image already is the col matrix.
//   packed    the im2col shapes below while the batch's index maps fit int32: see
//             conv2d_packed.cpp (forward, backward data, weight gradient); the im2col
//             path below remains for tensors past that limit.
//   im2col    everything else: for a batch of nb images side by side, col[Kg, nb*P] and one
//             GEMM y_g[Og, nb*P] = W_g[Og, Kg] x col with the bias-per-row + relu epilogue.
//             Side by side, small images (5x5 -> P = 9) still make GEMMs with a wide N.
// Backward data: gcol[Kg, nb*P] = W_g^T x gy_g (sgemm trans_a), then col2im per image
// (within one image, so threads never race). Backward weight/bias: the batch is cut into
// FIXED chunks of kChunk images; each chunk computes its own buffer (one GEMM with the long
// reduction nb*P per batch, accumulated with beta = 1 in image order), then the chunk buffers
// are summed in chunk order, so the result does not depend on the thread count.
// Direct-path 3x3 weight gradients (C = 1 first layers, depthwise) use the ISA kernel
// wgrad_c1_3x3 per image into the same chunk buffers instead ([O, P] x [P, 9] is too narrow
// a GEMM); bias gradients use the ISA row_sums likewise; their data gradients the SIMD
// kernel dgrad_c1_3x3 per image and group ([9, O] x [O, P] has too few rows; the scalar
// level has none and keeps the GEMM path).
// nb depends on the shape only, and sgemm's results depend on neither N nor the tile an
// element falls in, so batching never changes bits either.
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "ops/conv2d/conv2d.h"
#include "ops/conv2d/conv2d_packed.h"
#include "ops/conv2d/winograd.h"
#include "ops/gemm/gemm.h"

namespace fv {
namespace {

const KernelSet<ConvKernels> kConv = FV_KERNEL_SET(ConvKernels, conv2d_kernels);

bool use_direct(const ConvGeom& g) {
  return g.Cg() == 1 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1;
}

// The direct path's common case (first layer, depthwise 3x3): its gradients have ISA kernels too.
bool use_direct_3x3(const ConvGeom& g) { return use_direct(g) && g.kh == 3 && g.kw == 3; }

bool use_pointwise(const ConvGeom& g) {
  return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt == 0 && g.pb == 0 &&
         g.pl == 0 && g.pr == 0;
}

constexpr int64_t kChunk = 8;       // images per weight-gradient chunk (fixed: determinism)
constexpr int64_t kDirectOc = 16;   // output channels per direct-path work unit
constexpr int64_t kColCap = 1 << 18;  // floats in one col batch (stays in L2)
constexpr int64_t kCols = 512;        // GEMM columns wanted per batch
constexpr int64_t kMaxBatch = 16;     // forward: keeps >= 4 work items at batch 64

// Images per side-by-side batch: enough for ~kCols GEMM columns, within kColCap floats.
int64_t batch_images(const ConvGeom& g, int64_t cap) {
  const int64_t P = g.P(), KP = g.Kg() * P;
  int64_t nb = (kCols + P - 1) / P;
  if (nb > kColCap / KP) nb = kColCap / KP;
  if (nb > cap) nb = cap;
  if (nb < 1 || use_pointwise(g)) nb = 1;  // pointwise: x itself is one image's col
  return nb;
}

// Where the output goes: y; or with a sink each unit's planes go to a thread buffer and then
// to the sink; or with `pool` (relu on) the fused kernel writes each unit's pooled planes and
// codes.
struct PoolOut {
  float* pooled;
  uint8_t* codes;
};
void forward_direct(const ConvGeom& g, const float* x, const float* w, const float* bias,
                    bool relu, float* y, const PlanesSink* sink = nullptr,
                    const PoolOut* pool = nullptr) {
  const ConvKernels& k = kConv.cpu();
  const int64_t Og = g.Og(), P = g.P();
  const int64_t n_oc = (Og + kDirectOc - 1) / kDirectOc;
  const int64_t Hp = g.H + g.pt + g.pb, Wp = g.W + g.pl + g.pr;
  const bool padded = Hp != g.H || Wp != g.W;
  // Units (n, group, block of kDirectOc output channels): enough of them to feed the threads
  // even at batch 1; each output element is computed the same way in any unit.
  parallel_for(g.N * g.groups * n_oc, 1, [&](int64_t b, int64_t e) {
    std::vector<float> pad(padded ? Hp * Wp : 0, 0.0f);
    std::vector<float> ybuf(sink != nullptr ? kDirectOc * P : 0);
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
      if (pool != nullptr) {
        const int64_t PP = (g.OH / 2) * (g.OW / 2), at = (n * g.O + o0) * PP;
        k.direct_c1_relu_pool2x2(plane, Wp, w + o0 * 9, bias ? bias + o0 : nullptr, cnt, g.OH,
                                 g.OW, pool->pooled + at, pool->codes + at, PP);
        continue;
      }
      float* out = sink != nullptr ? ybuf.data() : y + (n * g.O + o0) * P;
      k.direct_c1(plane, Hp, Wp, w + o0 * g.kh * g.kw, bias ? bias + o0 : nullptr, cnt, g.kh,
                  g.kw, g.OH, g.OW, relu, out, P);
      if (sink != nullptr) (*sink)(n * g.O + o0, cnt, out);
    }
  });
}

// Data gradient of the direct path's 3x3 case: the ISA kernel per (image, group), each
// writing its own gx plane.
void backward_data_direct(const ConvGeom& g, const float* gy, const float* w, float* gx) {
  const ConvKernels& k = kConv.cpu();
  const int64_t Og = g.Og(), P = g.P(), HW = g.H * g.W;
  parallel_for(g.N * g.groups, 1, [&](int64_t b, int64_t e) {
    for (int64_t item = b; item < e; ++item) {
      const int64_t n = item / g.groups, grp = item % g.groups;
      k.dgrad_c1_3x3(gy + (n * g.O + grp * Og) * P, w + grp * Og * 9, Og, g.OH, g.OW, g.H, g.W,
                     g.pt, g.pl, gx + (n * g.C + grp) * HW);
    }
  });
}

}  // namespace

bool conv2d_forward_per_unit_ok(const ConvGeom& g) {
  return !winograd_forward_ok(g) && use_direct(g);
}

void conv2d_forward_per_unit(const ConvGeom& g, const float* x, const float* w, const float* bias,
                             bool relu, const PlanesSink& sink) {
  forward_direct(g, x, w, bias, relu, nullptr, &sink);
}

namespace {
bool direct_relu_pool2x2_ok(const ConvGeom& g) {
  return conv2d_forward_per_unit_ok(g) && kConv.cpu().direct_c1_relu_pool2x2 != nullptr &&
         g.kh == 3 && g.kw == 3 && g.OH >= 2 && g.OW >= 2 && g.OW <= kPoolFusedMaxOW;
}
}  // namespace

bool conv2d_relu_pool2x2_fused_ok(const ConvGeom& g) {
  return winograd_relu_pool2x2_ok(g) || direct_relu_pool2x2_ok(g);
}

void conv2d_relu_pool2x2_fused(const ConvGeom& g, const float* x, const float* w,
                               const float* bias, float* pooled, uint8_t* codes) {
  if (winograd_relu_pool2x2_ok(g)) {
    return conv2d_relu_pool2x2_winograd(g, x, w, bias, pooled, codes);
  }
  const PoolOut pool{pooled, codes};
  forward_direct(g, x, w, bias, true, nullptr, nullptr, &pool);
}

void conv2d_forward(const ConvGeom& g, const float* x, const float* w, const float* bias,
                    bool relu, float* y) {
  if (winograd_forward_ok(g)) return conv2d_forward_winograd(g, x, w, bias, relu, y);
  if (use_direct(g)) return forward_direct(g, x, w, bias, relu, y);
  if (!use_pointwise(g) && conv2d_packed_ok(g)) {
    return conv2d_forward_packed(g, x, w, bias, relu, y);
  }
  const ConvKernels& k = kConv.cpu();
  const int64_t Og = g.Og(), Cg = g.Cg(), Kg = g.Kg(), P = g.P();
  const bool pointwise = use_pointwise(g);
  const int64_t nb = batch_images(g, kMaxBatch);
  const int64_t n_items = (g.N + nb - 1) / nb;
  // Work item = one batch of nb images. At batch 1 the single item runs on the calling
  // thread, outside any parallel region, so sgemm splits the one GEMM over the threads itself.
  parallel_for(n_items, 1, [&](int64_t b, int64_t e) {
    std::vector<float> col(pointwise ? 0 : Kg * nb * P);
    std::vector<float> ybuf(nb > 1 ? Og * nb * P : 0);
    for (int64_t item = b; item < e; ++item) {
      const int64_t s0 = item * nb, cnt = s0 + nb <= g.N ? nb : g.N - s0, ld = cnt * P;
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        const float* xg = x + (s0 * g.C + grp * Cg) * g.H * g.W;
        if (!pointwise) {
          for (int64_t t = 0; t < cnt; ++t) {
            k.im2col(&g, x + ((s0 + t) * g.C + grp * Cg) * g.H * g.W, col.data() + t * P, ld);
          }
        }
        GemmEpilogue ep;
        if (bias != nullptr) {
          ep.bias_kind = GemmEpilogue::Bias::per_row;
          ep.bias = bias + grp * Og;
        }
        ep.relu = relu;
        float* yg = y + (s0 * g.O + grp * Og) * P;
        sgemm(false, false, Og, ld, Kg, w + grp * Og * Kg, Kg, pointwise ? xg : col.data(), ld,
              0.0f, cnt > 1 ? ybuf.data() : yg, ld, ep);
        for (int64_t t = 0; cnt > 1 && t < cnt; ++t) {  // [Og, cnt*P] -> images' NCHW planes
          for (int64_t o = 0; o < Og; ++o) {
            std::memcpy(yg + (t * g.O + o) * P, ybuf.data() + o * ld + t * P, sizeof(float) * P);
          }
        }
      }
    }
  });
}

namespace {

// Channels of gy made (or read) and consumed at a time by direct_weight_bias_images: a
// multiple of the wgrad kernels' 3-channel blocks, small enough to stay in L1 with the input
// plane (conv1's 6 x 26 x 26 floats: 16 KB). Whole images (conv1's 86 KB) went through L2: the
// pool's backward wrote them there and wgrad_c1_3x3 and row_sums read them back.
constexpr int64_t kChannelBlock = 6;

// The direct path's weight gradient (wgrad_c1_3x3, when wb is not null) and the bias gradient
// (row_sums, when bb is not null) of images [n0, n_end), image by image into one chunk's
// zeroed buffers wb (O x 9) and bb (O); within an image, kChannelBlock channels of gy at a
// time (every channel's sums are its own: any split gives the same bits). gy_buf holds
// kChannelBlock * P floats; pad: a zeroed Hp x Wp plane (padded layers only).
void direct_weight_bias_images(const ConvGeom& g, const ImageGrad& gy_of, float* gy_buf,
                               const float* x, int64_t n0, int64_t n_end, float* wb, float* bb,
                               float* pad) {
  const ConvKernels& k = kConv.cpu();
  const int64_t Og = g.Og(), P = g.P(), HW = g.H * g.W;
  const int64_t Wp = g.W + g.pl + g.pr;
  for (int64_t n = n0; n < n_end; ++n) {
    int64_t padded = -1;  // the group whose input plane is in pad
    for (int64_t o0 = 0; o0 < g.O; o0 += kChannelBlock) {
      const int64_t o1 = o0 + kChannelBlock < g.O ? o0 + kChannelBlock : g.O;
      const float* gyb = gy_of(n, o0, o1, gy_buf);  // channels [o0, o1)
      for (int64_t grp = o0 / Og; wb != nullptr && grp * Og < o1; ++grp) {
        const int64_t c0 = grp * Og > o0 ? grp * Og : o0;
        const int64_t c1 = (grp + 1) * Og < o1 ? (grp + 1) * Og : o1;
        const float* plane = x + (n * g.C + grp) * HW;  // Cg == 1
        if (pad != nullptr) {
          if (padded != grp) {
            for (int64_t r = 0; r < g.H; ++r) {
              std::memcpy(pad + (r + g.pt) * Wp + g.pl, plane + r * g.W, sizeof(float) * g.W);
            }
            padded = grp;
          }
          plane = pad;
        }
        k.wgrad_c1_3x3(plane, Wp, gyb + (c0 - o0) * P, c1 - c0, g.OH, g.OW, wb + c0 * 9);
      }
      if (bb != nullptr) k.row_sums(gyb, o1 - o0, P, bb + o0);
    }
  }
}

}  // namespace

bool conv2d_backward_per_image_ok(const ConvGeom& g, bool need_gx, bool need_gw) {
  return !need_gx && (!need_gw || use_direct_3x3(g));
}

void conv2d_backward_per_image(const ConvGeom& g, const ImageGrad& gy_of, const float* x,
                               float* gw, float* gb) {
  if (gw == nullptr && gb == nullptr) return;
  const int64_t n_chunks = (g.N + kChunk - 1) / kChunk, wsize = g.O * 9;
  const int64_t Hp = g.H + g.pt + g.pb, Wp = g.W + g.pl + g.pr;
  const bool padded = Hp != g.H || Wp != g.W;
  std::vector<float> wbuf(gw ? n_chunks * wsize : 0, 0.0f);
  std::vector<float> bbuf(gb ? n_chunks * g.O : 0, 0.0f);
  parallel_for(n_chunks, 1, [&](int64_t b, int64_t e) {
    std::vector<float> pad(gw && padded ? Hp * Wp : 0, 0.0f);
    std::vector<float> gy_buf(kChannelBlock * g.P());
    for (int64_t ch = b; ch < e; ++ch) {
      const int64_t n0 = ch * kChunk, n_end = n0 + kChunk < g.N ? n0 + kChunk : g.N;
      direct_weight_bias_images(g, gy_of, gy_buf.data(), x, n0, n_end,
                                gw ? wbuf.data() + ch * wsize : nullptr,
                                gb ? bbuf.data() + ch * g.O : nullptr,
                                gw && padded ? pad.data() : nullptr);
    }
  });
  if (gw != nullptr) conv_packed::sum_chunks(wbuf.data(), n_chunks, wsize, gw);
  if (gb != nullptr) conv_packed::sum_chunks(bbuf.data(), n_chunks, g.O, gb);
}

bool conv2d_backward_blocks_ok(const ConvGeom& g, bool need_gx, bool need_gw) {
  return need_gx && need_gw && winograd_backward_fused_ok(g);
}

// The Winograd pass makes gy a block at a time; the bias gradient's row sums are taken from
// each block as it is made, image by image into the chunk's buffer as conv2d_backward does:
// a chunk of kChunk images lies within one of the pass's chunks, whose images come in order
// on one thread.
void conv2d_backward_blocks(const ConvGeom& g, const ImagesGrad& gy_of, const float* x,
                            const float* w, float* gx, float* gw, float* gb) {
  static_assert(kWinogradChunk % kChunk == 0, "a bias chunk must lie within a Winograd chunk");
  const ConvKernels& k = kConv.cpu();
  const int64_t P = g.P(), n_chunks = (g.N + kChunk - 1) / kChunk;
  std::vector<float> bbuf(gb ? n_chunks * g.O : 0, 0.0f);
  const ImagesGrad with_bias = [&](int64_t n0, int64_t images, float* buf) {
    gy_of(n0, images, buf);
    for (int64_t i = 0; gb != nullptr && i < images; ++i) {
      k.row_sums(buf + i * g.O * P, g.O, P, bbuf.data() + (n0 + i) / kChunk * g.O);
    }
  };
  conv2d_backward_winograd(g, with_bias, x, w, gx, gw);
  if (gb != nullptr) conv_packed::sum_chunks(bbuf.data(), n_chunks, g.O, gb);
}

void conv2d_backward(const ConvGeom& g, const float* gy, const float* x, const float* w,
                     float* gx, float* gw, float* gb) {
  if (gx != nullptr && gw != nullptr && winograd_backward_fused_ok(g)) {
    conv2d_backward_winograd(g, gy, x, w, gx, gw);
    gx = gw = nullptr;
  }
  if (gx != nullptr && winograd_backward_data_ok(g)) {
    conv2d_backward_data_winograd(g, gy, w, gx);
    gx = nullptr;
  }
  if (gw != nullptr && winograd_backward_weight_ok(g)) {
    conv2d_backward_weight_winograd(g, gy, x, gw);
    gw = nullptr;
  }
  if (gx != nullptr && use_direct_3x3(g) && kConv.cpu().dgrad_c1_3x3 != nullptr) {
    backward_data_direct(g, gy, w, gx);
    gx = nullptr;
  }
  if (gx == nullptr && gw == nullptr && gb == nullptr) return;
  if (!use_pointwise(g) && conv2d_packed_ok(g)) {
    if (gx != nullptr) conv2d_backward_data_packed(g, gy, w, gx);
    if (gw != nullptr && !use_direct_3x3(g)) conv2d_backward_weight_packed(g, gy, x, gw);
    gx = nullptr;
    if (!use_direct_3x3(g)) gw = nullptr;
    if (gw == nullptr && gb == nullptr) return;
  }
  const ConvKernels& k = kConv.cpu();
  const int64_t Og = g.Og(), Cg = g.Cg(), Kg = g.Kg(), P = g.P(), HW = g.H * g.W;
  const bool pointwise = use_pointwise(g);
  const int64_t n_chunks = (g.N + kChunk - 1) / kChunk;
  const int64_t wsize = g.O * Kg;
  const int64_t nb = batch_images(g, kChunk);
  const bool wdirect = gw != nullptr && use_direct_3x3(g);
  const int64_t Hp = g.H + g.pt + g.pb, Wp = g.W + g.pl + g.pr;
  const bool padded = Hp != g.H || Wp != g.W;
  std::vector<float> wbuf(gw ? n_chunks * wsize : 0, 0.0f);
  std::vector<float> bbuf(gb ? n_chunks * g.O : 0, 0.0f);
  const ImageGrad gy_in_tensor = [&](int64_t n, int64_t o0, int64_t, float*) {
    return gy + (n * g.O + o0) * P;
  };
  parallel_for(n_chunks, 1, [&](int64_t b, int64_t e) {
    std::vector<float> gcol(gx != nullptr && !pointwise ? Kg * nb * P : 0);
    std::vector<float> col(gw != nullptr && !wdirect && !pointwise ? Kg * nb * P : 0);
    std::vector<float> pad(wdirect && padded ? Hp * Wp : 0, 0.0f);
    std::vector<float> gyc(nb > 1 && (gx != nullptr || (gw && !wdirect)) ? g.O * nb * P : 0);
    for (int64_t ch = b; ch < e; ++ch) {
      const int64_t n0 = ch * kChunk;
      const int64_t n_end = n0 + kChunk < g.N ? n0 + kChunk : g.N;
      for (int64_t s0 = n0; s0 < n_end && (gx != nullptr || (gw != nullptr && !wdirect));
           s0 += nb) {
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
        if (gx != nullptr) {
          if (!pointwise) std::memset(gx + s0 * g.C * HW, 0, sizeof(float) * cnt * g.C * HW);
          for (int64_t grp = 0; grp < g.groups; ++grp) {
            float* gxg = gx + (s0 * g.C + grp * Cg) * HW;
            sgemm(true, false, Kg, ld, Og, w + grp * Og * Kg, Kg, gya + grp * Og * ld, ld, 0.0f,
                  pointwise ? gxg : gcol.data(), ld);
            for (int64_t t = 0; !pointwise && t < cnt; ++t) {
              k.col2im(&g, gcol.data() + t * P, ld, gxg + t * g.C * HW);
            }
          }
        }
        if (gw != nullptr && !wdirect) {
          float* wb = wbuf.data() + ch * wsize;
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
      // image by image, group by group, into the zeroed chunk buffers
      direct_weight_bias_images(g, gy_in_tensor, nullptr, x, n0, n_end,
                                wdirect ? wbuf.data() + ch * wsize : nullptr,
                                gb ? bbuf.data() + ch * g.O : nullptr,
                                wdirect && padded ? pad.data() : nullptr);
    }
  });
  if (gw != nullptr) conv_packed::sum_chunks(wbuf.data(), n_chunks, wsize, gw);
  if (gb != nullptr) conv_packed::sum_chunks(bbuf.data(), n_chunks, g.O, gb);
}

}  // namespace fv
