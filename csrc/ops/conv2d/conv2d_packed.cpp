// conv2d packed-GEMM paths (non-ISA driver): the im2col matrix is never materialised; the
// ISA gather_panel writes it (or gy) straight into the GEMM's packed micro-panels, and
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
// Backward weight  gW_g[Og, Kg] = gy_g[Og, cols] x col^T: the batch is cut into FIXED chunks of
//          images (from the shape only), each chunk's reduction (its columns, in order, K block
//          after K block with the chain continuing from C) goes to its own buffer, then the
//          buffers are summed in chunk order. Work items = (chunk, group, range of gW column
//          panels); A = gy^T packed per item and K block, B = col^T gathered per panel.
// Every C element gets sgemm's fused chain in a fixed order whatever the thread count or the
// panel it falls in, so results are bitwise identical at 1 and 2 threads.
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "core/parallel.h"
#include "ops/conv2d/conv2d.h"
#include "ops/gemm/gemm.h"

namespace fv {
namespace {

const KernelSet<ConvKernels> kConv = FV_KERNEL_SET(ConvKernels, conv2d_kernels);

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t v, int64_t m) { return ceil_div(v, m) * m; }

// 64-byte aligned floats (the micro-kernel loads packed B panels with aligned loads).
class Aligned {
 public:
  explicit Aligned(int64_t n) {
    void* q = nullptr;
    if (posix_memalign(&q, 64, static_cast<size_t>(n > 0 ? n : 1) * sizeof(float)) != 0) {
      throw std::bad_alloc();
    }
    p_ = static_cast<float*>(q);
  }
  Aligned(const Aligned&) = delete;
  Aligned& operator=(const Aligned&) = delete;
  ~Aligned() { std::free(p_); }
  float* get() const { return p_; }

 private:
  float* p_;
};

// Hands the items [0, n) out one at a time to the pool's threads: on this shared machine a
// thread slowed by other load just takes fewer. What an item computes never depends on the
// thread that runs it (nor on the order), so the bits do not either.
class Puller {
 public:
  explicit Puller(int64_t n) : n_(n) {}
  int64_t operator()() const {  // the next item, or -1
    const int64_t i = next_.fetch_add(1, std::memory_order_relaxed);
    return i < n_ ? i : -1;
  }

 private:
  int64_t n_;
  mutable std::atomic<int64_t> next_{0};
};

// worker(pull) runs once on each thread (its scratch buffers made once), pulling items.
void run_pulled(int64_t n, const std::function<void(const Puller&)>& worker) {
  const Puller pull(n);
  const int64_t T = n < num_threads() ? n : num_threads();
  parallel_for(T, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) worker(pull);
  });
}

bool has_padding(const ConvGeom& g) { return g.pt > 0 || g.pb > 0 || g.pl > 0 || g.pr > 0; }

struct TapMaps {
  std::vector<int32_t> off, ih, iw;
};

TapMaps tap_maps(const ConvGeom& g) {
  TapMaps t;
  for (int64_t c = 0; c < g.Cg(); ++c) {
    for (int64_t i = 0; i < g.kh; ++i) {
      for (int64_t j = 0; j < g.kw; ++j) {
        t.off.push_back(static_cast<int32_t>(c * g.H * g.W + i * g.dh * g.W + j * g.dw));
        t.ih.push_back(static_cast<int32_t>(i * g.dh));
        t.iw.push_back(static_cast<int32_t>(j * g.dw));
      }
    }
  }
  return t;
}

// x maps of columns [c0, c0 + n).
void x_col_maps(const ConvGeom& g, int64_t c0, int64_t n, int32_t* base, int32_t* ih,
                int32_t* iw) {
  const int64_t P = g.P();
  for (int64_t q = 0; q < n; ++q) {
    const int64_t col = c0 + q, img = col / P, p = col % P;
    const int64_t h0 = (p / g.OW) * g.sh - g.pt, w0 = (p % g.OW) * g.sw - g.pl;
    base[q] = static_cast<int32_t>(img * g.C * g.H * g.W + h0 * g.W + w0);
    ih[q] = static_cast<int32_t>(h0);
    iw[q] = static_cast<int32_t>(w0);
  }
}

// gy offsets of columns [c0, c0 + n): n*O*P + p.
void gy_col_maps(const ConvGeom& g, int64_t c0, int64_t n, int32_t* base) {
  const int64_t P = g.P();
  for (int64_t q = 0; q < n; ++q) {
    const int64_t col = c0 + q;
    base[q] = static_cast<int32_t>((col / P) * g.O * P + col % P);
  }
}

// Runs of columns [c0, c0 + n) that read consecutive source elements: for x (im2col, column
// stride 1, no padding) a run stays within one output row; for gy (x_maps false) within one
// image. Returns the run count; lo/hi/rel as copy_panel takes them (lane b reads base + b).
struct Runs {
  std::vector<int32_t> lo, hi, rel;
};

int64_t col_runs(const ConvGeom& g, bool x_maps, int64_t c0, int64_t n, Runs* r) {
  const int64_t P = g.P();
  r->lo.clear();
  r->hi.clear();
  r->rel.clear();
  for (int64_t q = 0; q < n;) {
    const int64_t col = c0 + q, img = col / P, p = col % P;
    int64_t len = P - p, base = img * g.O * P + p;
    if (x_maps) {
      const int64_t oh = p / g.OW, ow = p % g.OW;
      len = g.OW - ow;
      base = img * g.C * g.H * g.W + (oh * g.sh - g.pt) * g.W + ow - g.pl;
    }
    if (len > n - q) len = n - q;
    r->lo.push_back(static_cast<int32_t>(q));
    r->hi.push_back(static_cast<int32_t>(q + len));
    r->rel.push_back(static_cast<int32_t>(base - q));
    q += len;
  }
  return static_cast<int64_t>(r->lo.size());
}

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
    Aligned bp(KC * NR + 64);
    std::vector<float> cbuf(Og * NR);
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
                             pc + kc == Kg, cbuf.data(), NR, ep);
        }
        // [Og, nc] -> the images' planes (a panel may straddle images).
        for (int64_t j = 0; j < nc;) {
          const int64_t col = c0 + j, img = col / P, p = col % P, len = min64(nc - j, P - p);
          float* dst = y + (img * g.O + grp * Og) * P + p;
          for (int64_t o = 0; o < Og; ++o) {
            std::memcpy(dst + o * P, cbuf.data() + o * NR + j, sizeof(float) * len);
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
    Aligned bp(KC * NR + 64);
    std::vector<float> gcol(Kg * ldc);
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
                               pc > 0, pc + kc == Og, gcol.data() + c0, ldc);
          }
        }
        for (int64_t t = 0; t < cnt; ++t) {
          k.col2im(&g, gcol.data() + t * P, ldc, gx + ((s0 + t) * g.C + grp * g.Cg()) * HW);
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
  Aligned bpack(g.groups * bsize + 64);
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
    std::vector<float> apack(Mp * KC + 64), cbuf(rows * Kg), gxcl(nbp * HW * Cg);
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
                           apack.data() + i0 * kc);
          }
          sgemm_packed_block(ncols, Kg, kc, apack.data(), bpack.get() + grp * bsize + pc * Kgp,
                             pc > 0, pc + kc == Og, cbuf.data(), Kg);
        }
        std::memset(gxcl.data(), 0, sizeof(float) * cnt * HW * Cg);
        for (int64_t col = 0; col < ncols; ++col) {
          const int64_t t = col / P, oh = (col % P) / g.OW, ow = col % g.OW;
          const float* src = cbuf.data() + col * Kg;
          for (int64_t i = 0; i < g.kh; ++i) {
            const int64_t ih = oh * g.sh - g.pt + i * g.dh;
            if (ih < 0 || ih >= g.H) continue;
            for (int64_t j = 0; j < g.kw; ++j) {
              const int64_t iw = ow * g.sw - g.pl + j * g.dw;
              if (iw < 0 || iw >= g.W) continue;
              float* dst = gxcl.data() + ((t * g.H + ih) * g.W + iw) * Cg;
              const float* sv = src + (i * g.kw + j) * Cg;
              for (int64_t c = 0; c < Cg; ++c) dst[c] += sv[c];
            }
          }
        }
        for (int64_t t = 0; t < cnt; ++t) {
          float* gxt = gx + ((s0 + t) * g.C + grp * Cg) * HW;
          const float* src = gxcl.data() + t * HW * Cg;
          for (int64_t c = 0; c < Cg; ++c) {
            for (int64_t q = 0; q < HW; ++q) gxt[c * HW + q] = src[q * Cg + c];
          }
        }
      }
    }
  });
}

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
  std::vector<float> wbuf(n_chunks * wsize);
  std::vector<int32_t> orow(Og);
  for (int64_t o = 0; o < Og; ++o) orow[o] = static_cast<int32_t>(o * P);
  // Images of >= 64 pixels: K blocks follow the images (a block = one image's pixels, at most
  // KC), so A packs straight from gy and B from the image's im2col, both with the GEMM's
  // in-register transposes; the fused chain over the chunk's columns is the same either way.
  const bool per_image = P >= 64;
  run_pulled(n_chunks * g.groups * nranges, [&](const Puller& pull) {
    Aligned bp(KC * NR + 64);
    std::vector<float> apack(Mp * KC + 64);
    if (per_image) {
      std::vector<float> col(Kg * P);
      for (int64_t item; (item = pull()) >= 0;) {
        const int64_t r = item % nranges, cg = item / nranges;
        const int64_t grp = cg % g.groups, ch = cg / g.groups;
        const int64_t s0 = ch * cimg, s1 = min64(g.N, s0 + cimg);
        const int64_t q0 = r * per, q1 = min64(npw, q0 + per);
        float* wb = wbuf.data() + ch * wsize + grp * Og * Kg;
        for (int64_t n = s0; n < s1; ++n) {
          k.im2col(&g, x + (n * g.C + grp * g.Cg()) * HW, col.data(), P);
          const float* gyn = gy + (n * g.O + grp * Og) * P;
          for (int64_t pc = 0; pc < P; pc += KC) {
            const int64_t kc = min64(KC, P - pc);
            sgemm_pack_a(false, Og, kc, gyn + pc, P, apack.data());
            for (int64_t q = q0; q < q1; ++q) {
              const int64_t t0 = q * NR, nc = min64(NR, Kg - t0);
              sgemm_pack_b(true, kc, nc, col.data() + t0 * P + pc, P, bp.get());
              sgemm_packed_block(Og, nc, kc, apack.data(), bp.get(), n > s0 || pc > 0,
                                 n + 1 == s1 && pc + kc == P, wb + t0, Kg);
            }
          }
        }
      }
      return;
    }
    std::vector<int32_t> xb(cimg * P), xh(cimg * P), xw(cimg * P), gb(cimg * P);
    int64_t mapped = -1;  // chunk whose column maps are in xb/xh/xw/gb
    for (int64_t item; (item = pull()) >= 0;) {
      const int64_t r = item % nranges, cg = item / nranges;
      const int64_t grp = cg % g.groups, ch = cg / g.groups;
      const int64_t s0 = ch * cimg, ncols = min64(cimg, g.N - s0) * P;
      if (mapped != ch) {
        x_col_maps(g, s0 * P, ncols, xb.data(), xh.data(), xw.data());
        gy_col_maps(g, s0 * P, ncols, gb.data());
        mapped = ch;
      }
      const float* xg = x + grp * g.Cg() * HW;
      const float* gyg = gy + grp * Og * P;
      float* wb = wbuf.data() + ch * wsize + grp * Og * Kg;
      const int64_t q0 = r * per, q1 = min64(npw, q0 + per);
      for (int64_t pc = 0; pc < ncols; pc += KC) {
        const int64_t kc = min64(KC, ncols - pc);
        for (int64_t i0 = 0; i0 < Og; i0 += MR) {  // A = gy^T block, MR-row micro-panels
          k.gather_panel(gyg, gb.data() + pc, nullptr, nullptr, kc, orow.data() + i0, nullptr,
                         nullptr, min64(MR, Og - i0), MR, 0, 0, apack.data() + i0 * kc);
        }
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
          sgemm_packed_block(Og, nc, kc, apack.data(), bp.get(), pc > 0, pc + kc == ncols,
                             wb + t0, Kg);
        }
      }
    }
  });
  // Chunk buffers summed in chunk order, element by element.
  parallel_for(wsize, 4096, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float s = wbuf[i];
      for (int64_t c = 1; c < n_chunks; ++c) s += wbuf[c * wsize + i];
      gw[i] = s;
    }
  });
}

}  // namespace fv
