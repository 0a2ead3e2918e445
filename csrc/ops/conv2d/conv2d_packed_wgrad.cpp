// conv2d packed-GEMM weight gradient (non-ISA driver; see conv2d_packed.cpp for the column
// and index-map conventions):
//   gW_g[Og, Kg] = gy_g[Og, cols] x col^T, reduced over the columns of FIXED chunks of images
//   (from the shape only), each chunk into its own buffer, the buffers then summed in chunk
//   order: bitwise identical at any thread count. Work items = (chunk, group, range of gW
//   column panels), pulled by the threads.
//   Images of >= 64 pixels: the K blocks follow the images (one image's pixels, at most KC),
//     so A packs straight from gy and B from the image's im2col with the GEMM's transposes.
//   Smaller images: a K block spans images; B = col^T built by copy_panel (runs of kw taps;
//     no padding, dw == 1) or gather_panel; A = gy^T packed once per call for every (chunk,
//     group) before the items run: gy's planes copied into gy^T rows (runs of P), packed by
//     sgemm_pack_a. (Gathered per item in MR-row micro-panels, A took ~16% of the reference
//     conv3's weight gradient on AMD Zen 3, where a vgatherdps costs ~11 cycles; each chunk's
//     A was also packed once per item, i.e. per range of gW panels.)
//   Either way each gW element runs one fused chain over the chunk's columns in order.
#include <cstring>
#include <vector>

#include "ops/conv2d/conv2d_packed.h"
#include "ops/gemm/gemm.h"

namespace fv {
namespace {

using namespace conv_packed;  // NOLINT

const KernelSet<ConvKernels> kConv = FV_KERNEL_SET(ConvKernels, conv2d_kernels);

}  // namespace

void conv2d_backward_weight_packed(const ConvGeom& g, const float* gy, const float* x, float* gw) {
  const ConvKernels& k = kConv.cpu();
  const GemmPacking pk = sgemm_packing();
  const int64_t NR = pk.nr, MR = pk.mr, KC = pk.kc, Og = g.Og(), Kg = g.Kg(), P = g.P();
  const int64_t HW = g.H * g.W, wsize = g.O * Kg, Mp = round_up(Og, MR);
  // Fixed chunks (from the shape only: determinism) of <= ~1024 columns, image counts as equal
  // as can be (threads stay balanced), each reduced into its own buffer.
  const int64_t cimg = ceil_div(g.N, ceil_div(g.N * P, 1024));  // chunks as equal as can be
  const int64_t n_chunks = ceil_div(g.N, cimg);
  // gW column panels per item: ranges of at most 9 panels, of equal size.
  const int64_t npw = ceil_div(Kg, NR), nranges = ceil_div(npw, 9), per = ceil_div(npw, nranges);
  const TapMaps taps = tap_maps(g);
  const bool pad = has_padding(g);
  // Without padding and with dw == 1, a B row (one column's taps) is runs of kw consecutive x
  // elements: copy_panel, per panel of taps the same runs for every column.
  const bool runs = !pad && g.dw == 1;
  std::vector<Runs> truns(runs ? npw : 0);
  for (int64_t q = 0; q < (runs ? npw : 0); ++q) {
    const int64_t t0 = q * NR, nc = min64(NR, Kg - t0);
    for (int64_t t = 0; t < nc;) {
      const int64_t len = min64(g.kw - (t0 + t) % g.kw, nc - t);
      truns[q].lo.push_back(static_cast<int32_t>(t));
      truns[q].hi.push_back(static_cast<int32_t>(t + len));
      truns[q].rel.push_back(taps.off[t0 + t] - static_cast<int32_t>(t));
      t += len;
    }
  }
  // Not zeroed: every item's first K block stores (load_c false) all of its gW elements, and
  // the items cover every (chunk, group, panel).
  Scratch wbuf(4, n_chunks * wsize);
  // Images of >= 64 pixels: K blocks follow the images (a block = one image's pixels, at most
  // KC), so A packs straight from gy and B from the image's im2col, both with the GEMM's
  // in-register transposes; the fused chain over the chunk's columns is the same either way.
  const bool per_image = P >= 64;
  // Smaller images: gy^T (O x N*P, row-major) and from it each (chunk, group)'s packed A, at
  // apack_all + (chunk * groups + group) * asize.
  const int64_t NP = g.N * P, asize = per_image ? 0 : sgemm_packed_a_size(Og, cimg * P);
  Scratch gyt(5, per_image ? 0 : g.O * NP), apack_all(6, n_chunks * g.groups * asize);
  if (!per_image) {  // chunk by chunk: its images' gy^T columns, then its groups' packs
    parallel_for(n_chunks, 1, [&](int64_t ch0, int64_t ch1) {
      for (int64_t ch = ch0; ch < ch1; ++ch) {
        const int64_t s0 = ch * cimg, s1 = min64(g.N, s0 + cimg);
        for (int64_t n = s0; n < s1; ++n) {
          for (int64_t o = 0; o < g.O; ++o) {
            std::memcpy(gyt.get() + o * NP + n * P, gy + (n * g.O + o) * P, sizeof(float) * P);
          }
        }
        for (int64_t grp = 0; grp < g.groups; ++grp) {
          sgemm_pack_a(false, Og, (s1 - s0) * P, gyt.get() + grp * Og * NP + s0 * P, NP,
                       apack_all.get() + (ch * g.groups + grp) * asize);
        }
      }
    });
  }
  run_pulled(n_chunks * g.groups * nranges, [&](const Puller& pull) {
    Scratch bp(0, KC * NR + 64);  // written before read
    if (per_image) {
      Scratch apack(1, Mp * KC + 64);
      Scratch col(2, Kg * P);
      for (int64_t item; (item = pull()) >= 0;) {
        const int64_t r = item % nranges, cg = item / nranges;
        const int64_t grp = cg % g.groups, ch = cg / g.groups;
        const int64_t s0 = ch * cimg, s1 = min64(g.N, s0 + cimg);
        const int64_t q0 = r * per, q1 = min64(npw, q0 + per);
        float* wb = wbuf.get() + ch * wsize + grp * Og * Kg;
        for (int64_t n = s0; n < s1; ++n) {
          k.im2col(&g, x + (n * g.C + grp * g.Cg()) * HW, col.get(), P);
          const float* gyn = gy + (n * g.O + grp * Og) * P;
          for (int64_t pc = 0; pc < P; pc += KC) {
            const int64_t kc = min64(KC, P - pc);
            sgemm_pack_a(false, Og, kc, gyn + pc, P, apack.get());
            for (int64_t q = q0; q < q1; ++q) {
              const int64_t t0 = q * NR, nc = min64(NR, Kg - t0);
              sgemm_pack_b(true, kc, nc, col.get() + t0 * P + pc, P, bp.get());
              sgemm_packed_block(Og, nc, kc, apack.get(), bp.get(), n > s0 || pc > 0,
                                 n + 1 == s1 && pc + kc == P, wb + t0, Kg);
            }
          }
        }
      }
      return;
    }
    std::vector<int32_t> xb(cimg * P), xh(cimg * P), xw(cimg * P);
    int64_t mapped = -1;  // chunk whose column maps are in xb/xh/xw
    for (int64_t item; (item = pull()) >= 0;) {
      const int64_t r = item % nranges, cg = item / nranges;
      const int64_t grp = cg % g.groups, ch = cg / g.groups;
      const int64_t s0 = ch * cimg, ncols = min64(cimg, g.N - s0) * P;
      if (mapped != ch) {
        x_col_maps(g, s0 * P, ncols, xb.data(), xh.data(), xw.data());
        mapped = ch;
      }
      const float* xg = x + grp * g.Cg() * HW;
      const float* ap = apack_all.get() + (ch * g.groups + grp) * asize;
      float* wb = wbuf.get() + ch * wsize + grp * Og * Kg;
      const int64_t q0 = r * per, q1 = min64(npw, q0 + per);
      for (int64_t pc = 0; pc < ncols; pc += KC) {
        const int64_t kc = min64(KC, ncols - pc);
        const float* apc = ap + Mp * pc;  // K block pc / KC of the chunk's packed A
        for (int64_t q = q0; q < q1; ++q) {  // B = col^T panel: taps [q*NR, q*NR + nc)
          const int64_t t0 = q * NR, nc = min64(NR, Kg - t0);
          if (runs) {
            const Runs& tr = truns[q];
            k.copy_panel(xg, xb.data() + pc, kc, tr.lo.data(), tr.hi.data(), tr.rel.data(),
                         static_cast<int64_t>(tr.lo.size()), NR, bp.get());
          } else {
            k.gather_panel(xg, xb.data() + pc, pad ? xh.data() + pc : nullptr, xw.data() + pc,
                           kc, taps.off.data() + t0, taps.ih.data() + t0, taps.iw.data() + t0,
                           nc, NR, static_cast<int32_t>(g.H), static_cast<int32_t>(g.W),
                           bp.get());
          }
          sgemm_packed_block(Og, nc, kc, apc, bp.get(), pc > 0, pc + kc == ncols, wb + t0, Kg);
        }
      }
    }
  });
  sum_chunks(wbuf.get(), n_chunks, wsize, gw);
}

}  // namespace fv
