// Winograd F(2x2, 3x3) driver (the maths: winograd.h): which shapes take it, the weight
// transforms, blocking over tiles, threads and the per-element GEMMs.
//
// Forward (and the data gradient, a forward conv of gy): the tiles of the whole batch are
// cut into blocks of T (a fixed count per shape); a thread takes a block, transforms its
// input patches (V: 16 x C x T), runs the 16 GEMMs M_e = U_e x V_e and transforms M back
// into the outputs. V and M stay in the thread's L2. Every tile is computed the same way in
// any block, so the bits depend on neither the thread count nor the order.
// Weight gradient: the batch is cut into FIXED chunks of kChunk images; each chunk sums its
// tiles' dU_e = Dy_e x V_e^T over its blocks in order (sgemm's beta = 1 continues each
// element's chain), the chunk results are summed in chunk order, then dU -> dg (4x4 -> 3x3).
#include "ops/conv2d/winograd.h"

#include <atomic>
#include <new>

#include "core/buffer_cache.h"
#include "core/parallel.h"
#include "ops/conv2d/conv2d_packed.h"
#include "ops/gemm/gemm.h"

namespace fv {
namespace {

using conv_packed::ceil_div;
using conv_packed::min64;
using conv_packed::round_up;
using conv_packed::Scratch;

const KernelSet<WinogradKernels> kWino = FV_KERNEL_SET(WinogradKernels, winograd_kernels);

std::atomic<int> g_algo{static_cast<int>(ConvAlgo::auto_select)};

// A call-wide buffer (transformed and packed weights, the weight gradient's chunk sums) from
// the caching allocator: reused warm from call to call like the outputs, and given back by
// fastvision.empty_cache() (a thread's grow-only Scratch would keep a big layer's buffer
// for good).
class CallBuffer {
 public:
  explicit CallBuffer(int64_t n)
      : p_(static_cast<float*>(cache_alloc(static_cast<size_t>(n > 0 ? n : 1) * sizeof(float)))) {
    if (p_ == nullptr) throw std::bad_alloc();
  }
  ~CallBuffer() { cache_free(p_); }
  CallBuffer(const CallBuffer&) = delete;
  CallBuffer& operator=(const CallBuffer&) = delete;
  float* get() const { return p_; }

 private:
  float* p_;
};

constexpr int64_t kChunk = 8;              // images per weight-gradient chunk (determinism)
constexpr int64_t kBlockFloats = 160 * 1024;  // V + M of one block: ~640 KB, inside L2

// The shapes Winograd F(2x2, 3x3) computes at all: the data gradient's padding is 2 - p.
bool applies(const ConvGeom& g) {
  return g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 &&
         g.groups == 1 && g.pt <= 2 && g.pb <= 2 && g.pl <= 2 && g.pr <= 2;
}

// Whether Winograd pays for a conv of in_ch -> out_ch channels with OH x OW outputs: its
// multiplies per output, 16 per 2x2 tile over im2col's 9 (tiles overhanging an odd edge
// compute outputs that are dropped), must be well below 1, the channel counts big enough
// that the GEMMs, not the transforms, dominate, and the output wide and tall enough that tile
// rows fill a good part of a vector. Measured (bench/bench_conv.py --algo, 2 threads,
// AVX-512): 32->64 on 13x13 (ratio 0.53) gains in all three passes; 64->64 on 5x5 (3x3
// outputs, ratio 0.79; data gradient 5x5, ratio 0.64) loses 2-3x.
bool pays(int64_t in_ch, int64_t out_ch, int64_t OH, int64_t OW) {
  const double ratio = 16.0 * static_cast<double>(ceil_div(OH, 2) * ceil_div(OW, 2)) /
                       (9.0 * static_cast<double>(OH * OW));
  return in_ch >= 16 && out_ch >= 16 && OH >= 8 && OW >= 8 && ratio <= 0.6;
}

// Whether a pass runs as Winograd: forced, or auto and it pays. Without AVX-512, auto also
// wants the conv to have at least min_c_avx2 input channels (g.C): the gradients' measured
// break-even there (see winograd_backward_*_ok).
bool chosen(const ConvGeom& g, int64_t in_ch, int64_t out_ch, int64_t OH, int64_t OW,
            int64_t min_c_avx2 = 0) {
  if (!applies(g)) return false;
  const ConvAlgo a = conv_algo();
  if (a == ConvAlgo::winograd) return true;
  if (a != ConvAlgo::auto_select) return false;
  if (g.C < min_c_avx2 && active_isa() != Isa::avx512) return false;
  return pays(in_ch, out_ch, OH, OW);
}

// Tiles per block: whole tile rows (the transforms work row by row), as many as keep V
// (16 x C x T) and M (16 x O x T) within kBlockFloats, at least one row; preferably a row
// count that makes T a multiple of 32 (the GEMM's column panel: a partial panel wastes lanes).
int64_t block_tiles(const WinoGeom& wg) {
  const int64_t max_rows = kBlockFloats / (16 * (wg.C + wg.O)) / wg.TW;
  if (max_rows <= 1) return wg.TW;
  for (int64_t align = 32; align >= 8; align /= 2) {
    for (int64_t r = max_rows; r >= (max_rows + 1) / 2; --r) {
      if (r * wg.TW % align == 0) return r * wg.TW;
    }
  }
  return max_rows * wg.TW;
}

// One 1-D step of G g (3 -> 4): exact (halvings), the same order for every element.
inline void g3(float g0, float g1, float g2, float* r) {
  r[0] = g0;
  r[1] = ((g0 + g1) + g2) * 0.5f;
  r[2] = ((g0 - g1) + g2) * 0.5f;
  r[3] = g2;
}

// One 1-D step of G^T u (4 -> 3), the adjoint of g3.
inline void gt4(float u0, float u1, float u2, float u3, float* r) {
  r[0] = u0 + (u1 + u2) * 0.5f;
  r[1] = (u1 - u2) * 0.5f;
  r[2] = (u1 + u2) * 0.5f + u3;
}

// U[e][p][q] = (G k G^T)[e] for the 3x3 kernel k of output p and input q of the Winograd
// conv; k = w[p][q] (forward), or w[q][p] rotated by 180 degrees (data gradient: outputs are
// the conv's input channels).
void transform_weights(const float* w, int64_t O, int64_t C, bool data_grad, float* U) {
  const int64_t P = data_grad ? C : O, Q = data_grad ? O : C;
  parallel_for(P, 8, [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {
      for (int64_t q = 0; q < Q; ++q) {
        float k[3][3];
        const float* src = data_grad ? w + (q * C + p) * 9 : w + (p * C + q) * 9;
        for (int i = 0; i < 3; ++i) {
          for (int j = 0; j < 3; ++j) k[i][j] = data_grad ? src[(2 - i) * 3 + (2 - j)] : src[i * 3 + j];
        }
        float t[4][3];  // G k: column by column
        for (int j = 0; j < 3; ++j) {
          float r[4];
          g3(k[0][j], k[1][j], k[2][j], r);
          for (int i = 0; i < 4; ++i) t[i][j] = r[i];
        }
        for (int i = 0; i < 4; ++i) {
          float r[4];
          g3(t[i][0], t[i][1], t[i][2], r);
          for (int j = 0; j < 4; ++j) U[((i * 4 + j) * P + p) * Q + q] = r[j];
        }
      }
    }
  });
}

// Pads a plane stride off multiples of 1 KB by 16 floats (64 B), so the 16 planes fall in
// different L1 sets instead of all in one.
int64_t pad_plane(int64_t es) { return es % 256 == 0 ? es + 16 : es; }

// Row-major planes of `rows` rows of ld tiles.
WinoLayout row_major(int64_t rows, int64_t ld) { return WinoLayout{ld, 0, ld, pad_plane(rows * ld)}; }

// The GEMM's packed B panels of C rows (sgemm_packed_block's layout, one K block: C <= kc).
WinoLayout b_panels(int64_t C, int64_t T, int64_t nr) {
  return WinoLayout{nr, C * nr, nr, pad_plane(round_up(T, nr) * C)};
}

// The Winograd conv of `in` (N x wg.C x H x W) with the transformed weights U into out.
// U_e is packed once per call (sgemm_pack_a). When the C channels fit one GEMM K block, the
// input transform writes V straight in the packed B layout and sgemm_packed_block reads it
// there; otherwise V is row-major and each K block is packed from it.
void run_forward(const WinoGeom& wg, const float* in, const float* U, const float* bias,
                 bool relu, float* out) {
  const WinogradKernels& k = kWino.cpu();
  const int64_t C = wg.C, O = wg.O;
  const int64_t total = wg.N * wg.TH * wg.TW;
  const int64_t T = block_tiles(wg), ldt = round_up(T, 16);
  const GemmPacking pk = sgemm_packing();
  const int64_t kc = pk.kc;
  const bool packed = C <= kc;
  const WinoLayout lay_v = packed ? b_panels(C, T, pk.nr) : row_major(C, ldt);
  const WinoLayout lay_m = row_major(O, ldt);
  const int64_t a_size = sgemm_packed_a_size(O, C);
  const int64_t b_size = packed ? 0 : kc * round_up(T, pk.nr) + 64;
  const CallBuffer Upack(16 * a_size);
  parallel_for(16, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) sgemm_pack_a(false, O, C, U + i * O * C, C, Upack.get() + i * a_size);
  });
  conv_packed::run_pulled(ceil_div(total, T), [&](const conv_packed::Puller& pull) {
    const Scratch V(0, 16 * lay_v.es + 64), M(1, 16 * lay_m.es), B(2, b_size);
    for (int64_t b = pull(); b >= 0; b = pull()) {
      const int64_t t0 = b * T, cnt = min64(T, total - t0);
      k.input_transform(&wg, in, t0, cnt, V.get(), &lay_v);
      for (int e = 0; e < 16; ++e) {
        const float* ue = Upack.get() + e * a_size;
        float* me = M.get() + e * lay_m.es;
        if (packed) {
          sgemm_packed_block(O, cnt, C, ue, V.get() + e * lay_v.es, false, true, me, ldt);
          continue;
        }
        for (int64_t pc = 0; pc < C; pc += kc) {
          const int64_t kb = min64(kc, C - pc);
          sgemm_pack_b(false, kb, cnt, V.get() + e * lay_v.es + pc * ldt, ldt, B.get());
          sgemm_packed_block(O, cnt, kb, ue + round_up(O, pk.mr) * pc, B.get(), pc > 0,
                             pc + kb == C, me, ldt);
        }
      }
      k.output_transform(&wg, M.get(), ldt, lay_m.es, t0, cnt, bias, relu, out);
    }
  });
}

WinoGeom make_wino(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t OH,
                   int64_t OW, int64_t pt, int64_t pl) {
  return WinoGeom{N, C, H, W, O, OH, OW, pt, pl, ceil_div(OH, 2), ceil_div(OW, 2)};
}

}  // namespace

void set_conv_algo(ConvAlgo a) { g_algo.store(static_cast<int>(a)); }
ConvAlgo conv_algo() { return static_cast<ConvAlgo>(g_algo.load()); }

bool winograd_forward_ok(const ConvGeom& g) { return chosen(g, g.C, g.O, g.OH, g.OW); }
// The data gradient transforms more tiles (H x W outputs, a 2-wide border of gy) over more
// channels (O in, C out) than the forward does, and its GEMMs have the conv's C input
// channels as rows. Measured on the reference conv2 (64 -> 32 channels, 13x13, 2 threads):
// with AVX-512 Winograd's whole backward pass is ~7% faster than im2col data + Winograd weight
// gradients; with AVX2 12% slower. So auto takes it with AVX-512, or with >= 64 input
// channels. (Small integers come out exact either way, so the ISA never changes them.)
bool winograd_backward_data_ok(const ConvGeom& g) { return chosen(g, g.O, g.C, g.H, g.W, 64); }

// Weight gradient: with AVX2, 16 -> 32 channels on 28x28 measured 0.80x im2col's speed
// (32 -> 64 on 13x13: 1.2x faster); with AVX-512 both gain (1.8x, 2x). So without AVX-512
// auto wants >= 32 input channels.
bool winograd_backward_weight_ok(const ConvGeom& g) {
  return chosen(g, g.C, g.O, g.OH, g.OW, 32);
}

void conv2d_forward_winograd(const ConvGeom& g, const float* x, const float* w,
                             const float* bias, bool relu, float* y) {
  const CallBuffer U(16 * g.O * g.C);
  transform_weights(w, g.O, g.C, false, U.get());
  run_forward(make_wino(g.N, g.C, g.H, g.W, g.O, g.OH, g.OW, g.pt, g.pl), x, U.get(), bias,
              relu, y);
}

void conv2d_backward_data_winograd(const ConvGeom& g, const float* gy, const float* w,
                                   float* gx) {
  const CallBuffer U(16 * g.C * g.O);
  transform_weights(w, g.O, g.C, true, U.get());
  // gx = gy (padded by 2 - p on each side) correlated with the rotated, transposed kernels.
  run_forward(make_wino(g.N, g.O, g.OH, g.OW, g.C, g.H, g.W, 2 - g.pt, 2 - g.pl), gy, U.get(),
              nullptr, false, gx);
}

void conv2d_backward_weight_winograd(const ConvGeom& g, const float* gy, const float* x,
                                     float* gw) {
  const WinogradKernels& k = kWino.cpu();
  const WinoGeom wg = make_wino(g.N, g.C, g.H, g.W, g.O, g.OH, g.OW, g.pt, g.pl);
  const int64_t C = g.C, O = g.O, per_image = wg.TH * wg.TW;
  const int64_t n_chunks = ceil_div(g.N, kChunk), usize = 16 * O * C;
  const int64_t T = block_tiles(wg), ldt = round_up(T, 16);
  const WinoLayout lay_v = row_major(C, ldt), lay_d = row_major(O, ldt);
  const CallBuffer dU(n_chunks * usize);
  conv_packed::run_pulled(n_chunks, [&](const conv_packed::Puller& pull) {
    const Scratch V(0, 16 * lay_v.es), D(1, 16 * lay_d.es);
    for (int64_t ch = pull(); ch >= 0; ch = pull()) {
      const int64_t first = ch * kChunk * per_image;
      const int64_t end = min64(g.N, (ch + 1) * kChunk) * per_image;
      float* dUc = dU.get() + ch * usize;
      for (int64_t t0 = first; t0 < end; t0 += T) {
        const int64_t cnt = min64(T, end - t0);
        k.input_transform(&wg, x, t0, cnt, V.get(), &lay_v);
        k.dy_transform(&wg, gy, t0, cnt, D.get(), &lay_d);
        for (int e = 0; e < 16; ++e) {
          sgemm(false, true, O, C, cnt, D.get() + e * lay_d.es, ldt, V.get() + e * lay_v.es, ldt,
                t0 == first ? 0.0f : 1.0f, dUc + e * O * C, C);
        }
      }
    }
  });
  // Chunks summed in chunk order into chunk 0's buffer (element by element, so any split over
  // threads gives the same bits), then dg = G^T dU G per (o, c).
  float* sum = dU.get();
  parallel_for(usize, 4096, [&](int64_t b, int64_t e) {
    for (int64_t ch = 1; ch < n_chunks; ++ch) {
      const float* part = dU.get() + ch * usize;
      for (int64_t i = b; i < e; ++i) sum[i] += part[i];
    }
  });
  parallel_for(O * C, 64, [&](int64_t b, int64_t e) {
    for (int64_t oc = b; oc < e; ++oc) {
      float u[4][4];
      for (int i = 0; i < 16; ++i) u[i / 4][i % 4] = sum[i * O * C + oc];
      float t[3][4];  // G^T u: column by column
      for (int j = 0; j < 4; ++j) {
        float r[3];
        gt4(u[0][j], u[1][j], u[2][j], u[3][j], r);
        for (int i = 0; i < 3; ++i) t[i][j] = r[i];
      }
      for (int i = 0; i < 3; ++i) {
        float r[3];
        gt4(t[i][0], t[i][1], t[i][2], t[i][3], r);
        for (int j = 0; j < 3; ++j) gw[oc * 9 + i * 3 + j] = r[j];
      }
    }
  });
}

}  // namespace fv
