// conv2d packed-GEMM paths (non-ISA driver): the im2col matrix is never materialised; the
// ISA gather_panel / copy_panel write it (or gy) straight into the GEMM's packed micro-panels, and
// sgemm_packed_block runs the micro-kernel on them (see gemm.h "Pre-packed operands").
//
// Columns: the batch's output pixels side by side, column = n*P + oh*OW + ow (P = OH*OW), so
// one GEMM covers the whole batch and small images (5x5 -> P = 9) still fill whole panels.
// Index maps (int32, hence conv2d_packed_ok's size limit):
//   per tap row k = (c*kh + i)*kw + j of a group: off = c*H*W + i*dh*W + j*dw, ih = i*dh, iw = j*dw
//   per column: base = n*C*H*W + ih0*W + iw0, ih0 = oh*sh - pt, iw0 = ow*sw - pl
//   x element of (k, column) = x_group[base + off], inside the input iff ih0 + ih in [0, H)
//   and iw0 + iw in [0, W) (checked only when there is padding).
//
// Forward  y_g[Og, cols] = W_g x col: W_g packed once per call; threads split the columns in
//          NR-wide panels; per panel: gather the B panel (K block by K block), run the block
//          into a small [Og, NR] buffer, copy it out to the images' NCHW planes.
// Backward data  gcol[Kg, cols] = W_g^T x gy_g: W_g^T packed once; threads take pieces of
//          whole images (col2im of an image must stay on one thread), B panels gathered from
//          gy, then col2im per image from the piece's gcol buffer.
//          Small images (P < 64, Cg >= 8): the transposed GEMM gy^T x W' with a channels-last
//          col2im (backward_data_small below).
// Backward weight: conv2d_packed_wgrad.cpp. Threads pull work items one at a time (run_pulled).
// Every C element gets sgemm's fused chain in a fixed order whatever the thread count or the
// panel it falls in, so results are bitwise identical at 1 and 2 threads.
#include <cmath>
#include <cstring>
#include <vector>

#include "ops/conv2d/conv2d_packed.h"
#include "ops/gemm/gemm.h"

namespace fv {
namespace {

using namespace conv_packed;  // NOLINT

const KernelSet<ConvKernels> kConv = FV_KERNEL_SET(ConvKernels, conv2d_kernels);

// Images per work piece (whole images: col2im of an image stays on one thread): at most
// max_cols columns (or one image), minimising (padding of the columns to whole tiles of `tile`)
// x (the busiest thread's images / the even share) at this thread count. Speed only: the
// pieces never change the bits of backward data.
int64_t piece_images(int64_t N, int64_t P, int64_t tile, int64_t max_cols) {
  const double T = static_cast<double>(num_threads());
  int64_t best = 1;
  double best_cost = 1e300;
  for (int64_t nb = 1; nb <= N && (nb == 1 || nb * P <= max_cols); ++nb) {
    const double waste = static_cast<double>(round_up(nb * P, tile)) / static_cast<double>(nb * P);
    const double per_thread = std::ceil(static_cast<double>(ceil_div(N, nb)) / T) * nb;
    const double cost = waste * per_thread / (static_cast<double>(N) / T > 1 ? N / T : 1.0);
    if (cost <= best_cost * (1 - 1e-9)) {
      best = nb;
      best_cost = cost;
    } else if (cost <= best_cost * (1 + 1e-9)) {
      best = nb;  // ties: fewer, larger pieces
    }
  }
  return best;
}

// Packs W_g (trans: W_g^T) of every group, one sgemm_packed_a_size block per group.
std::vector<float> pack_weights(const ConvGeom& g, const float* w, bool trans, int64_t* stride) {
  const int64_t Og = g.Og(), Kg = g.Kg();
  const int64_t sz = trans ? sgemm_packed_a_size(Kg, Og) : sgemm_packed_a_size(Og, Kg);
  std::vector<float> a(g.groups * sz);
  for (int64_t grp = 0; grp < g.groups; ++grp) {
    if (trans) {
      sgemm_pack_a(true, Kg, Og, w + grp * Og * Kg, Kg, a.data() + grp * sz);
    } else {
      sgemm_pack_a(false, Og, Kg, w + grp * Og * Kg, Kg, a.data() + grp * sz);
    }
  }
  *stride = sz;
  return a;
}

void backward_data_small(const ConvGeom& g, const float* gy, const float* w, float* gx);

}  // namespace

bool conv2d_packed_ok(const ConvGeom& g) {
  const int64_t lim = int64_t(1) << 30;  // int32 index maps, with margin for the tap offsets
  return g.N * g.C * g.H * g.W < lim && g.N * g.O * g.P() < lim;
}

void conv2d_forward_packed(const ConvGeom& g, const float* x, const float* w, const float* bias,
                           bool relu, float* y) {
  const ConvKernels& k = kConv.cpu();
  const GemmPacking pk = sgemm_packing();
  const int64_t NR = pk.nr, KC = pk.kc, Og = g.Og(), Kg = g.Kg(), P = g.P(), HW = g.H * g.W;
  const int64_t cols = g.N * P, Mp = round_up(Og, pk.mr);
  int64_t astride = 0;
  const std::vector<float> apack = pack_weights(g, w, false, &astride);
  const TapMaps taps = tap_maps(g);
  const bool pad = has_padding(g), runs = !pad && g.sw == 1 && g.OW >= 8;  // else gathers
  run_pulled(ceil_div(cols, NR), [&](const Puller& pull) {
    Scratch bp(0, KC * NR + 64), cbuf(1, Og * NR);
    std::vector<int32_t> cb(NR), ch(NR), cw(NR);
    Runs rn;
    for (int64_t q; (q = pull()) >= 0;) {
      const int64_t c0 = q * NR, nc = min64(NR, cols - c0);
      const int64_t nruns = runs ? col_runs(g, true, c0, nc, &rn) : 0;
      if (!runs) x_col_maps(g, c0, nc, cb.data(), ch.data(), cw.data());
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        GemmEpilogue ep;
        if (bias != nullptr) {
          ep.bias_kind = GemmEpilogue::Bias::per_row;
          ep.bias = bias + grp * Og;
        }
        ep.relu = relu;
        const float* xg = x + grp * g.Cg() * HW;
        for (int64_t pc = 0; pc < Kg; pc += KC) {
          const int64_t kc = min64(KC, Kg - pc);
          if (runs) {
            k.copy_panel(xg, taps.off.data() + pc, kc, rn.lo.data(), rn.hi.data(), rn.rel.data(),
                         nruns, NR, bp.get());
          } else {
            k.gather_panel(xg, taps.off.data() + pc, pad ? taps.ih.data() + pc : nullptr,
                           taps.iw.data() + pc, kc, cb.data(), ch.data(), cw.data(), nc, NR,
                           static_cast<int32_t>(g.H), static_cast<int32_t>(g.W), bp.get());
          }
          sgemm_packed_block(Og, nc, kc, apack.data() + grp * astride + Mp * pc, bp.get(), pc > 0,
                             pc + kc == Kg, cbuf.get(), NR, ep);
        }
        // [Og, nc] -> the images' planes (a panel may straddle images).
        for (int64_t j = 0; j < nc;) {
          const int64_t col = c0 + j, img = col / P, p = col % P, len = min64(nc - j, P - p);
          float* dst = y + (img * g.O + grp * Og) * P + p;
          for (int64_t o = 0; o < Og; ++o) {
            std::memcpy(dst + o * P, cbuf.get() + o * NR + j, sizeof(float) * len);
          }
          j += len;
        }
      }
    }
  });
}

void conv2d_backward_data_packed(const ConvGeom& g, const float* gy, const float* w, float* gx) {
  if (g.P() < 64 && g.Cg() >= 8) return backward_data_small(g, gy, w, gx);
  const ConvKernels& k = kConv.cpu();
  const GemmPacking pk = sgemm_packing();
  const int64_t NR = pk.nr, KC = pk.kc, Og = g.Og(), Kg = g.Kg(), P = g.P(), HW = g.H * g.W;
  const int64_t Mp = round_up(Kg, pk.mr);
  int64_t astride = 0;
  const std::vector<float> apack = pack_weights(g, w, true, &astride);
  const int64_t nbp = piece_images(g.N, P, NR, 768);
  const int64_t ldc = round_up(nbp * P, NR);
  std::vector<int32_t> orow(Og);
  for (int64_t o = 0; o < Og; ++o) orow[o] = static_cast<int32_t>(o * P);
  run_pulled(ceil_div(g.N, nbp), [&](const Puller& pull) {
    Scratch bp(0, KC * NR + 64), gcol(1, Kg * ldc);  // every element read is written first
    Runs rn;
    for (int64_t piece; (piece = pull()) >= 0;) {
      const int64_t s0 = piece * nbp, cnt = min64(nbp, g.N - s0), ncols = cnt * P;
      std::memset(gx + s0 * g.C * HW, 0, sizeof(float) * cnt * g.C * HW);
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        for (int64_t c0 = 0; c0 < ncols; c0 += NR) {
          const int64_t nc = min64(NR, ncols - c0);
          const int64_t nruns = col_runs(g, false, s0 * P + c0, nc, &rn);
          for (int64_t pc = 0; pc < Og; pc += KC) {
            const int64_t kc = min64(KC, Og - pc);
            k.copy_panel(gy + grp * Og * P, orow.data() + pc, kc, rn.lo.data(), rn.hi.data(),
                         rn.rel.data(), nruns, NR, bp.get());
            sgemm_packed_block(Kg, nc, kc, apack.data() + grp * astride + Mp * pc, bp.get(),
                               pc > 0, pc + kc == Og, gcol.get() + c0, ldc);
          }
        }
        for (int64_t t = 0; t < cnt; ++t) {
          k.col2im(&g, gcol.get() + t * P, ldc, gx + ((s0 + t) * g.C + grp * g.Cg()) * HW);
        }
      }
    }
  });
}

namespace {

// Backward data for small images (P < 64, Cg >= 8), transposed: gcol^T[cols, Kg'] = gy^T x W',
// with the taps reordered k' = (i*kw + j)*Cg + c, so each column's row holds, per tap, Cg
// contiguous values that add straight into a channels-last gx buffer (col2im of a 5x5 image
// otherwise is thousands of short masked row operations). A = gy^T gathered per MR columns,
// B = W' packed once per call. Each gx element sums its contributions in (n, oh, ow) column
// order from 0 on one thread, then the buffer is transposed to NCHW.
void backward_data_small(const ConvGeom& g, const float* gy, const float* w, float* gx) {
  const ConvKernels& k = kConv.cpu();
  const GemmPacking pk = sgemm_packing();
  const int64_t NR = pk.nr, MR = pk.mr, KC = pk.kc, Og = g.Og(), Kg = g.Kg(), Cg = g.Cg();
  const int64_t P = g.P(), HW = g.H * g.W, taps = g.kh * g.kw, Kgp = round_up(Kg, NR);
  const int64_t bsize = round_up(Og, KC) / KC * KC * Kgp;  // packed W' of one group
  Scratch bpack(5, g.groups * bsize + 64);
  {
    std::vector<float> wp(Og * Kg);
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const float* wg = w + grp * Og * Kg;
      for (int64_t o = 0; o < Og; ++o) {
        for (int64_t c = 0; c < Cg; ++c) {
          for (int64_t t = 0; t < taps; ++t) wp[o * Kg + t * Cg + c] = wg[o * Kg + c * taps + t];
        }
      }
      for (int64_t pc = 0; pc < Og; pc += KC) {
        sgemm_pack_b(false, min64(KC, Og - pc), Kg, wp.data() + pc * Kg, Kg,
                     bpack.get() + grp * bsize + pc * Kgp);
      }
    }
  }
  const int64_t nbp = piece_images(g.N, P, MR, 384);  // rows of gcol^T per piece
  const int64_t rows = nbp * P, Mp = round_up(rows, MR);
  std::vector<int32_t> orow(Og);
  for (int64_t o = 0; o < Og; ++o) orow[o] = static_cast<int32_t>(o * P);
  run_pulled(ceil_div(g.N, nbp), [&](const Puller& pull) {
    Scratch apack(0, Mp * KC + 64), cbuf(1, rows * Kg), gxcl(2, nbp * HW * Cg);
    std::vector<int32_t> cb(rows);
    for (int64_t piece; (piece = pull()) >= 0;) {
      const int64_t s0 = piece * nbp, cnt = min64(nbp, g.N - s0), ncols = cnt * P;
      gy_col_maps(g, s0 * P, ncols, cb.data());
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        for (int64_t pc = 0; pc < Og; pc += KC) {
          const int64_t kc = min64(KC, Og - pc);
          for (int64_t i0 = 0; i0 < ncols; i0 += MR) {
            k.gather_panel(gy + grp * Og * P, orow.data() + pc, nullptr, nullptr, kc,
                           cb.data() + i0, nullptr, nullptr, min64(MR, ncols - i0), MR, 0, 0,
                           apack.get() + i0 * kc);
          }
          sgemm_packed_block(ncols, Kg, kc, apack.get(), bpack.get() + grp * bsize + pc * Kgp,
                             pc > 0, pc + kc == Og, cbuf.get(), Kg);
        }
        std::memset(gxcl.get(), 0, sizeof(float) * cnt * HW * Cg);
        for (int64_t col = 0; col < ncols; ++col) {
          const int64_t t = col / P, oh = (col % P) / g.OW, ow = col % g.OW;
          const float* src = cbuf.get() + col * Kg;
          for (int64_t i = 0; i < g.kh; ++i) {
            const int64_t ih = oh * g.sh - g.pt + i * g.dh;
            if (ih < 0 || ih >= g.H) continue;
            for (int64_t j = 0; j < g.kw; ++j) {
              const int64_t iw = ow * g.sw - g.pl + j * g.dw;
              if (iw < 0 || iw >= g.W) continue;
              float* dst = gxcl.get() + ((t * g.H + ih) * g.W + iw) * Cg;
              const float* sv = src + (i * g.kw + j) * Cg;
              for (int64_t c = 0; c < Cg; ++c) dst[c] += sv[c];
            }
          }
        }
        for (int64_t t = 0; t < cnt; ++t) {
          float* gxt = gx + ((s0 + t) * g.C + grp * Cg) * HW;
          const float* src = gxcl.get() + t * HW * Cg;
          for (int64_t c = 0; c < Cg; ++c) {
            for (int64_t q = 0; q < HW; ++q) gxt[c * HW + q] = src[q * Cg + c];
          }
        }
      }
    }
  });
}

}  // namespace

}  // namespace fv
