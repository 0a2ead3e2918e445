// Winograd F(2x2, 3x3) and F(4x4, 3x3) driver (the maths: winograd.h, winograd4_inl.h): which
// shapes take which, the weight transforms, blocking over tiles, threads and the per-element
// GEMMs (16 of them for F(2x2), 36 for F(4x4); "16" below reads "E").
//
// Forward (and the data gradient, a forward conv of gy): the tiles of the whole batch are
// cut into blocks of T (a fixed count per shape); a thread takes a block, transforms its
// input patches (V: 16 x C x T), runs the 16 GEMMs M_e = U_e x V_e and transforms M back
// into the outputs. V and M stay in the thread's L2. Every tile is computed the same way in
// any block, so the bits depend on neither the thread count nor the order.
// Weight gradient: the batch is cut into FIXED chunks of images (chunk_images: kChunk, or
// more where images have few tiles; from the shape only); each chunk sums its
// tiles' dU_e = Dy_e x V_e^T over its blocks in order (sgemm's beta = 1 continues each
// element's chain), the chunk results are summed in chunk order, then dU -> dg (4x4 -> 3x3).
// Both gradients wanted, both F(4x4), the data gradient as the adjoint: one pass computes
// them together (conv2d_backward_winograd), transforming gy once, with the same bits.
#include "ops/conv2d/winograd.h"

#include <algorithm>
#include <atomic>
#include <new>
#include <optional>

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

const KernelSet<WinogradKernels> kWino2 = FV_KERNEL_SET(WinogradKernels, winograd_kernels);
const KernelSet<WinogradKernels> kWino4 = FV_KERNEL_SET(WinogradKernels, winograd4_kernels);

// One tile size: m x m outputs per tile from (m + 2) x (m + 2) inputs, E = (m + 2)^2 elements.
struct Variant {
  int m, E;
  const KernelSet<WinogradKernels>* kernels;
};
const Variant kF2{2, 16, &kWino2};
const Variant kF4{4, 36, &kWino4};

std::atomic<int> g_algo{static_cast<int>(ConvAlgo::auto_select)};

// A call-wide buffer (the weight gradient's chunk sums, big transformed weights) from
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

constexpr int64_t kChunk = kWinogradChunk;  // images per weight-gradient chunk (determinism)
// Tiles a weight-gradient chunk holds at least (its GEMMs' depth): chunk_images.
constexpr int64_t kMinChunkTiles = 32;
constexpr int64_t kBlockFloats = 160 * 1024;  // V + M of one block: ~640 KB, inside L2

// The shapes Winograd F(2x2, 3x3) computes at all: the data gradient's padding is 2 - p.
bool applies(const ConvGeom& g) {
  return g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 &&
         g.groups == 1 && g.pt <= 2 && g.pb <= 2 && g.pl <= 2 && g.pr <= 2;
}

// Multiplies per output of F(m x m) against im2col's 9: (m + 2)^2 per m x m tile, where tiles
// overhanging the output's edge compute outputs that are dropped.
double mult_ratio(int m, int64_t OH, int64_t OW) {
  const double tiles = static_cast<double>(ceil_div(OH, m) * ceil_div(OW, m));
  return (m + 2) * (m + 2) * tiles / (9.0 * static_cast<double>(OH * OW));
}

// Whether F(2x2) pays for a conv of in_ch -> out_ch channels with OH x OW outputs: its
// multiply ratio must be well below 1, the channel counts big enough that the GEMMs, not the
// transforms, dominate, and the output wide and tall enough that tile rows fill a good part
// of a vector. Measured (bench/bench_conv.py --algo, 2 threads, AVX-512): 32->64 on 13x13
// (ratio 0.53) gains in all three passes; 64->64 on 5x5 (3x3 outputs, ratio 0.79; data
// gradient 5x5, ratio 0.64) loses 2-3x.
bool pays2(int64_t in_ch, int64_t out_ch, int64_t OH, int64_t OW) {
  return in_ch >= 16 && out_ch >= 16 && OH >= 8 && OW >= 8 && mult_ratio(2, OH, OW) <= 0.6;
}

// F(4x4)'s transforms address windows through int32 offsets that span up to 16 images of the
// tensors they read (x and gy): those must fit.
bool fits4(const ConvGeom& g) {
  const int64_t limit = (int64_t{1} << 31) / 16 - 64;
  return g.C * g.H * g.W < limit && g.O * g.OH * g.OW < limit;
}

// F(4x4)'s adjoint data gradient takes blocks of whole images (its windows overlap across
// tiles): only while an image has at most this many tiles (44x44 outputs).
constexpr int64_t kMaxAdjointTiles = 121;

// Whether F(4x4)'s data gradient runs as the forward's adjoint (over the forward's tiles,
// 4x4 blocks of gy) rather than as a forward conv of gy (over 4x4 blocks of gx): where that
// needs clearly fewer tiles. Its output step adds overlapping windows, so it costs more per
// tile. Measured (2 threads, AVX-512): reference conv2, 9 tiles per image against 16, 0.89 ms
// against 1.13; 16->32 on 28x28 (49 against 49) 2.08 against 1.58.
bool use_adjoint(const ConvGeom& g) {
  const int64_t adjoint = ceil_div(g.OH, 4) * ceil_div(g.OW, 4);
  const int64_t conv = ceil_div(g.H, 4) * ceil_div(g.W, 4);
  return adjoint <= kMaxAdjointTiles && 4 * adjoint <= 3 * conv;
}

// Which pass a choice is for: they differ in what F(4x4) needs to pay.
enum class Pass { forward, data, weight };

// Whether F(4x4) pays, measured per pass against F(2x2) and im2col (2 threads, AVX-512 and
// AVX2; where F(2x2) pays, F(4x4) measured 1.1-1.5x faster than it unless said):
//   forward, data: channels >= 16 and a multiply ratio <= 0.6, as for F(2x2) but with no size
//     floor: 64->64 on 5x5 (3x3 outputs, ratio 0.44) runs 1.4x faster forward than im2col
//     (AVX2 1.2x). The data gradient's ratio is over the tiles it runs on: as the adjoint,
//     the forward's (64->64 on 5x5: 0.44, 1.09x faster than im2col, AVX2 1.06x); as a conv
//     of gy, gx's (5x5: 0.64; that ran 1.9x slower).
//   weight: the 36 planes of O x C sums a chunk accumulates into must stay in L2
//     (kBlockFloats): 128->128 on 8x8 (2.4 MB) ran 1.24x slower than F(2x2), 64->64 (590 KB)
//     1.08x faster. Outputs under 8x8 have few tiles per image: with chunks of kChunk images
//     the chunk GEMMs' depth was 8 tiles on 5x5 inputs and F(4x4) lost (64->64 on 5x5: 1.2x
//     slower than im2col). Chunks of at least kMinChunkTiles tiles (chunk_images) turned
//     that round with AVX2 (AMD Zen 3, 2 threads, against auto's im2col, in-process):
//     64->64 on 5x5, batch 64: weight gradient 0.79x, both gradients (the fused pass) 0.86x,
//     the reference model's training step -0.34 / -0.38 ms (tools/ab_step.py); batch 32 (one
//     chunk): 0.90x; batch 128 / 256: 0.77x / 0.60x; 6x6, 8x8, 9x9 inputs: 0.45-0.52x;
//     32->32 and 16->16: 0.45-0.50x. Batch 16 (16 tiles: less than a chunk) ran 1.4-1.7x
//     slower: small outputs want a whole chunk. Not measured with AVX-512: there the floor
//     stays (outputs of at least 8x8).
bool pays4(Pass pass, const ConvGeom& g, int64_t in_ch, int64_t out_ch, int64_t OH, int64_t OW) {
  if (pass == Pass::data && use_adjoint(g)) {
    OH = g.OH;
    OW = g.OW;
  }
  if (!fits4(g) || in_ch < 16 || out_ch < 16 || mult_ratio(4, OH, OW) > 0.6) return false;
  if (pass != Pass::weight) return true;
  if (36 * g.O * g.C > kBlockFloats) return false;
  if (OH >= 8 && OW >= 8) return true;
  return active_isa() != Isa::avx512 && g.N * ceil_div(OH, 4) * ceil_div(OW, 4) >= kMinChunkTiles;
}

// Which tile size a pass runs with (null: not Winograd): forced, or auto: F(4x4) where it
// pays, else F(2x2) where that pays. Without AVX-512, auto's F(2x2) also wants the conv to
// have at least min_c_avx2 input channels (g.C): the gradients' measured break-even there
// (see data_variant, weight_variant). The F(4x4) rules hold with AVX2 as measured, except the
// weight gradient's floor (16 -> 32 channels on 28x28: the same speed as im2col).
const Variant* chosen(Pass pass, const ConvGeom& g, int64_t in_ch, int64_t out_ch, int64_t OH,
                      int64_t OW, int64_t min_c_avx2 = 0) {
  if (!applies(g)) return nullptr;
  const ConvAlgo a = conv_algo();
  if (a == ConvAlgo::winograd) return &kF2;
  if (a == ConvAlgo::winograd4) return fits4(g) ? &kF4 : &kF2;
  if (a != ConvAlgo::auto_select) return nullptr;
  const bool avx2_floor = g.C < min_c_avx2 && active_isa() != Isa::avx512;
  if (pays4(pass, g, in_ch, out_ch, OH, OW) && !(pass == Pass::weight && avx2_floor)) {
    return &kF4;
  }
  if (avx2_floor || !pays2(in_ch, out_ch, OH, OW)) return nullptr;
  return &kF2;
}

const Variant* forward_variant(const ConvGeom& g) {
  return chosen(Pass::forward, g, g.C, g.O, g.OH, g.OW);
}
// The data gradient transforms more tiles (H x W outputs, a 2-wide border of gy) over more
// channels (O in, C out) than the forward does, and its GEMMs have the conv's C input
// channels as rows. F(2x2), measured on the reference conv2 (64 -> 32 channels, 13x13, 2
// threads): with AVX-512 its whole backward pass is ~7% faster than im2col data + Winograd
// weight gradients; with AVX2 12% slower. So auto's F(2x2) wants AVX-512, or >= 64 input
// channels. (Small integers come out the same on every ISA either way, so the ISA never
// changes their bits.)
const Variant* data_variant(const ConvGeom& g) {
  return chosen(Pass::data, g, g.O, g.C, g.H, g.W, 64);
}
// Weight gradient: with AVX2, F(2x2) on 16 -> 32 channels on 28x28 measured 0.80x im2col's
// speed (32 -> 64 on 13x13: 1.2x faster); with AVX-512 both gain (1.8x, 2x). So without
// AVX-512 auto wants >= 32 input channels.
const Variant* weight_variant(const ConvGeom& g) {
  return chosen(Pass::weight, g, g.C, g.O, g.OH, g.OW, 32);
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

// F(4x4) blocks: any tile count (its transforms read window by window), a multiple of the
// widest GEMM column panel (32), as many as keep V and M within kBlockFloats, at least 32.
int64_t block_tiles4(const WinoGeom& wg) {
  const int64_t fit = kBlockFloats / (36 * (wg.C + wg.O)) / 32 * 32;
  return fit < 32 ? 32 : (fit > 128 ? 128 : fit);
}

int64_t block_tiles(const Variant& v, const WinoGeom& wg) {
  return v.m == 4 ? block_tiles4(wg) : block_tiles(wg);
}

// The 1-D step of the weight gradient's last transform, per tile size: G^T u (m + 2 -> 3),
// the adjoint of the weight transform's G g (winograd_weights_inl.h). One fixed order of
// operations in this baseline-ISA file, so the weight gradients have the same bits on every
// ISA.
template <int m>
struct WeightSteps;

// F(2x2): G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1] (exact halvings).
template <>
struct WeightSteps<2> {
  static void gt(const float* u, float* r) {
    r[0] = u[0] + (u[1] + u[2]) * 0.5f;
    r[1] = (u[1] - u[2]) * 0.5f;
    r[2] = (u[1] + u[2]) * 0.5f + u[3];
  }
  static constexpr float kScale = 1.0f;  // dg = G^T dU G (x / 1 is exact)
};

// F(4x4): the integer G' of winograd4_inl.h; dg = G'^T dU G' / 576.
template <>
struct WeightSteps<4> {
  static void gt(const float* u, float* r) {
    const float s12 = u[1] + u[2], s34 = u[3] + u[4];
    r[0] = (u[0] - s12) + s34;
    r[1] = (u[2] - u[1]) + 2.0f * (u[3] - u[4]);
    r[2] = (4.0f * s34 - s12) + u[5];
  }
  static constexpr float kScale = 576.0f;
};

// Kernels are taken kLanes at a time, lane-inner, so the compiler can vectorise the steps
// across kernels (this file is built for the baseline ISA: SSE2's 4 lanes on x86-64).
constexpr int kLanes = 16;

// Transformed weights up to this size (floats: 4 MB, F(4x4)'s 36 planes of up to ~170 x 170
// filters; the reference conv3's take 0.6 MB) get one copy per thread, in the thread's
// scratch; bigger ones one shared copy (a thread's scratch is never given back, and their
// GEMMs do more work per weight).
constexpr int64_t kLocalWeightFloats = int64_t{1} << 20;

// The E transformed weight matrices U_e of the conv's w (O x C x 3 x 3) for `mode`, each in
// sgemm's packed A layout (P rows: O forward, C for the data gradient), a_size floats apart,
// written directly by the ISA's weight_transform. Up to kLocalWeightFloats, each thread that
// runs a pass's GEMMs makes its own copy (for_thread(), on its first work item) in its
// scratch, where it stays from call to call, instead of the threads splitting one shared
// copy: the GEMMs read U over and over, and reading what the other core wrote is slow when
// this machine's two vCPUs sit in different core complexes (a cross-core handoff ~490 ns
// instead of ~155). Measured on the reference model's training step (per-step interleaved
// A/B): 0.16-0.36 ms per step faster then, within 0.02 ms otherwise (each thread transforms
// all of U). A per-thread copy from the caching allocator measured 0.1-0.5 ms SLOWER than the
// shared one: its blocks move between the threads, so the transform's writes fetch lines
// from the other core. The same bits every way: one transform, whichever thread runs it.
class PackedWeights {
 public:
  PackedWeights(const Variant& v, const float* w, int64_t O, int64_t C, WinoWeights mode)
      : k_(v.kernels->cpu()), w_(w), O_(O), C_(C), mode_(mode),
        rows_(mode == WinoWeights::forward ? O : C),
        depth_(mode == WinoWeights::forward ? C : O),
        a_size_(sgemm_packed_a_size(rows_, depth_)), floats_(v.E * a_size_) {
    if (floats_ > kLocalWeightFloats) {
      float* U = shared_.emplace(floats_).get();
      parallel_for(items(), 16, [&](int64_t b, int64_t e) { transform(b, e, U); });
    }
  }
  // U_e is at for_thread() + e * a_size(): the shared copy, or this thread's (made by the
  // first call of the pass, in scratch slot 3; call it inside the pass's worker only).
  const float* for_thread() const {
    if (shared_) return shared_->get();
    const Scratch mine(3, floats_);
    transform(0, items(), mine.get());
    return mine.get();
  }
  int64_t a_size() const { return a_size_; }

 private:
  int64_t items() const { return ceil_div(rows_, sgemm_packing().mr) * depth_; }
  void transform(int64_t i0, int64_t i1, float* U) const {
    const GemmPacking pk = sgemm_packing();
    k_.weight_transform(w_, O_, C_, mode_, pk.mr, pk.kc, a_size_, i0, i1, U);
  }

  const WinogradKernels& k_;
  const float* w_;
  int64_t O_, C_;
  WinoWeights mode_;
  int64_t rows_, depth_, a_size_, floats_;
  std::optional<CallBuffer> shared_;  // none when each thread has its own
};

// Pads a plane stride off multiples of 1 KB by 16 floats (64 B), so the 16 planes fall in
// different L1 sets instead of all in one.
int64_t pad_plane(int64_t es) { return es % 256 == 0 ? es + 16 : es; }

// Row-major planes of `rows` rows of ld tiles.
WinoLayout row_major(int64_t rows, int64_t ld) { return WinoLayout{ld, 0, ld, pad_plane(rows * ld)}; }

// The GEMM's packed B panels of C rows (sgemm_packed_block's layout, one K block: C <= kc).
WinoLayout b_panels(int64_t C, int64_t T, int64_t nr) {
  return WinoLayout{nr, C * nr, nr, pad_plane(round_up(T, nr) * C)};
}

// The GEMM micro-kernels compute whole vectors of a packed B panel's columns, also past the
// block's last tile (those sums are dropped), so those columns must hold finite, normal
// values: stale scratch there held denormals, and every FMA over one takes a slow microcode
// path (an assist on Intel: 14% of the reference model's training step on the Intel Xeon
// this was measured on). F(4x4)'s transforms write zeros up to their vector width
// themselves (winograd.h); F(2x2)'s chunks do not line up with vectors, so its last partial
// panel is zeroed here, in each of the E planes' C rows: [cnt % nr, nr).
void zero_panel_tail(float* V, const WinoLayout& lay, int E, int64_t C, int64_t cnt) {
  const int64_t used = cnt % lay.panel_w;
  if (used == 0) return;
  const int64_t panel = cnt / lay.panel_w;
  for (int e = 0; e < E; ++e) {
    for (int64_t c = 0; c < C; ++c) {
      float* row = V + e * lay.es + panel * lay.panel_stride + c * lay.c_stride;
      std::fill(row + used, row + lay.panel_w, 0.0f);
    }
  }
}

// Images per block of the adjoint passes (blocks are whole images: their windows overlap
// across tiles), over `span` images cut into such blocks (the whole batch, or the fused pass's
// weight-gradient chunk). A block's tiles are its GEMMs' columns, which the micro-kernels
// compute in steps of half a panel (their narrow edge tiles), so a block just past a step
// computes up to a step of columns for nothing. Of the blocks up to twice the forward's tile
// budget, this takes the one that computes the fewest columns over the span, of ties the one
// nearest the budget (a single block would leave the other threads idle). Measured on the
// reference conv2 (9 tiles per image, 2 threads, AVX-512): the budget's 3 images (27 tiles,
// 32 columns) against 7 (63, 64): data gradient 0.84 against 0.78 ms, both gradients (fused,
// chunks of 8 images) 1.64 against 1.50; 14 images (126 tiles) 0.85.
int64_t adjoint_block_images(const WinoGeom& wg, int64_t span) {
  const int64_t per = wg.TH * wg.TW, step = sgemm_packing().nr / 2;
  const int64_t budget = block_tiles4(wg), most = 2 * budget / per;
  auto off_budget = [&](int64_t b) {
    return b * per > budget ? b * per - budget : budget - b * per;
  };
  int64_t best = 1, best_cols = -1;
  for (int64_t b = 1; b <= (most < span ? most : span); ++b) {
    const int64_t cols = span / b * round_up(b * per, step) + round_up(span % b * per, step);
    if (best_cols < 0 || cols < best_cols ||
        (cols == best_cols && off_budget(b) < off_budget(best))) {
      best = b;
      best_cols = cols;
    }
  }
  return best;
}

// Where the forward's output goes instead of y (run_forward's pool): relu'd, then 2x2-pooled.
struct PooledOut {
  float* pooled;
  uint8_t* codes;
};

// The Winograd conv of `in` (N x wg.C x H x W) with the transformed weights U into out (or,
// with pool, relu'd and 2x2-pooled into pool's arrays: F(4x4) only); or, adjoint (F(4x4)
// only), the data gradient of the conv wg describes: `in` is gy (N x wg.O x OH x OW) over the
// same tiles, U holds U^T (C x O per element), out is gx (N x wg.C x H x W).
// U comes packed (PackedWeights). When the GEMM depth (the transform's channels)
// fits one K block, the input transform writes its values straight in the packed B layout and
// sgemm_packed_block reads them there; otherwise they are row-major and each K block is
// packed from them.

void run_forward(const Variant& var, const WinoGeom& wg, const float* in, const PackedWeights& U,
                 const float* bias, bool relu, float* out, bool adjoint = false,
                 const PooledOut* pool = nullptr) {
  const WinogradKernels& k = var.kernels->cpu();
  const int E = var.E;
  const int64_t C = adjoint ? wg.O : wg.C, O = adjoint ? wg.C : wg.O;  // GEMM depth, rows
  const int64_t total = wg.N * wg.TH * wg.TW;
  const int64_t T =
      adjoint ? adjoint_block_images(wg, wg.N) * wg.TH * wg.TW : block_tiles(var, wg);
  const int64_t ldt = round_up(T, 16);
  const GemmPacking pk = sgemm_packing();
  const int64_t kc = pk.kc;
  const bool packed = C <= kc;
  const WinoLayout lay_v = packed ? b_panels(C, T, pk.nr) : row_major(C, ldt);
  const WinoLayout lay_m = row_major(O, ldt);
  const int64_t b_size = packed ? 0 : kc * round_up(T, pk.nr) + 64;
  conv_packed::run_pulled(ceil_div(total, T), [&](const conv_packed::Puller& pull) {
    const Scratch V(0, E * lay_v.es + 64), M(1, E * lay_m.es), B(2, b_size);
    const float* u = nullptr;  // made on this thread's first block
    for (int64_t b = pull(); b >= 0; b = pull()) {
      if (u == nullptr) u = U.for_thread();
      const int64_t t0 = b * T, cnt = min64(T, total - t0);
      if (adjoint) {
        k.dy_transform(&wg, in, t0, cnt, V.get(), &lay_v);
      } else {
        k.input_transform(&wg, in, t0, cnt, V.get(), &lay_v);
      }
      if (packed && var.m == 2) zero_panel_tail(V.get(), lay_v, E, C, cnt);
      for (int e = 0; e < E; ++e) {
        const float* ue = u + e * U.a_size();
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
      if (adjoint) {
        k.adjoint_output_transform(&wg, M.get(), ldt, lay_m.es, t0, cnt, out);
      } else if (pool != nullptr) {
        k.output_transform_pool2x2(&wg, M.get(), ldt, lay_m.es, t0, cnt, bias, pool->pooled,
                                   pool->codes);
      } else {
        k.output_transform(&wg, M.get(), ldt, lay_m.es, t0, cnt, bias, relu, out);
      }
    }
  });
}

WinoGeom make_wino(const Variant& v, int64_t N, int64_t C, int64_t H, int64_t W, int64_t O,
                   int64_t OH, int64_t OW, int64_t pt, int64_t pl) {
  return WinoGeom{N, C, H, W, O, OH, OW, pt, pl, ceil_div(OH, v.m), ceil_div(OW, v.m)};
}

// Images per weight-gradient chunk: kChunk, or a multiple of it where images have few
// tiles, so that a chunk holds at least kMinChunkTiles tiles (the depth of its GEMMs).
int64_t chunk_images(const WinoGeom& wg) {
  const int64_t per = wg.TH * wg.TW, want = ceil_div(kMinChunkTiles, per);
  return want <= kChunk ? kChunk : round_up(want, kChunk);
}

// dg[oc] = G^T dU[.][oc] G (F(4x4): G'^T dU G' / 576) for the O*C kernels; dU holds the E
// planes of O*C sums. kLanes kernels at a time.
template <int m>
void weight_gradient_from_t(const float* dU, int64_t OC, float* gw) {
  constexpr int n = m + 2;
  using S = WeightSteps<m>;
  parallel_for(ceil_div(OC, kLanes), 4, [&](int64_t b, int64_t e) {
    for (int64_t blk = b; blk < e; ++blk) {
      const int64_t oc0 = blk * kLanes;
      const int nl = static_cast<int>(min64(kLanes, OC - oc0));
      float u[n][n][kLanes] = {};
      for (int i = 0; i < n * n; ++i) {
        for (int l = 0; l < nl; ++l) u[i / n][i % n][l] = dU[i * OC + oc0 + l];
      }
      float t[3][n][kLanes];  // G^T u, column by column
      for (int j = 0; j < n; ++j) {
        for (int l = 0; l < kLanes; ++l) {
          float col[n], r[3];
          for (int i = 0; i < n; ++i) col[i] = u[i][j][l];
          S::gt(col, r);
          for (int i = 0; i < 3; ++i) t[i][j][l] = r[i];
        }
      }
      float g[3][3][kLanes];
      for (int i = 0; i < 3; ++i) {
        for (int l = 0; l < kLanes; ++l) {
          float row[n], r[3];
          for (int j = 0; j < n; ++j) row[j] = t[i][j][l];
          S::gt(row, r);
          for (int j = 0; j < 3; ++j) g[i][j][l] = r[j] / S::kScale;
        }
      }
      for (int l = 0; l < nl; ++l) {
        for (int i = 0; i < 9; ++i) gw[(oc0 + l) * 9 + i] = g[i / 3][i % 3][l];
      }
    }
  });
}

void weight_gradient_from(const Variant& v, const float* dU, int64_t OC, float* gw) {
  if (v.m == 4) {
    weight_gradient_from_t<4>(dU, OC, gw);
  } else {
    weight_gradient_from_t<2>(dU, OC, gw);
  }
}

// Chunks summed in chunk order into chunk 0's buffer, then dg = G^T dU G per (o, c).
void sum_chunks_to_weight_gradient(const Variant& v, float* dU, int64_t n_chunks, int64_t usize,
                                   int64_t OC, float* gw) {
  conv_packed::sum_chunks(dU, n_chunks, usize, dU);
  weight_gradient_from(v, dU, OC, gw);
}
}  // namespace

void set_conv_algo(ConvAlgo a) { g_algo.store(static_cast<int>(a)); }
ConvAlgo conv_algo() { return static_cast<ConvAlgo>(g_algo.load()); }

bool winograd_forward_ok(const ConvGeom& g) { return forward_variant(g) != nullptr; }
bool winograd_backward_data_ok(const ConvGeom& g) { return data_variant(g) != nullptr; }
bool winograd_backward_weight_ok(const ConvGeom& g) { return weight_variant(g) != nullptr; }

void conv2d_forward_winograd(const ConvGeom& g, const float* x, const float* w,
                             const float* bias, bool relu, float* y) {
  const Variant& v = *forward_variant(g);
  const PackedWeights U(v, w, g.O, g.C, WinoWeights::forward);
  run_forward(v, make_wino(v, g.N, g.C, g.H, g.W, g.O, g.OH, g.OW, g.pt, g.pl), x, U, bias, relu,
              y);
}

bool winograd_relu_pool2x2_ok(const ConvGeom& g) {
  const Variant* v = forward_variant(g);
  return v != nullptr && v->kernels->cpu().output_transform_pool2x2 != nullptr && g.OH >= 2 &&
         g.OW >= 2;
}

void conv2d_relu_pool2x2_winograd(const ConvGeom& g, const float* x, const float* w,
                                  const float* bias, float* pooled, uint8_t* codes) {
  const Variant& v = *forward_variant(g);
  const PackedWeights U(v, w, g.O, g.C, WinoWeights::forward);
  const PooledOut pool{pooled, codes};
  run_forward(v, make_wino(v, g.N, g.C, g.H, g.W, g.O, g.OH, g.OW, g.pt, g.pl), x, U, bias, true,
              nullptr, false, &pool);
}

void conv2d_backward_data_winograd(const ConvGeom& g, const float* gy, const float* w,
                                   float* gx) {
  const Variant& v = *data_variant(g);
  if (v.m == 4 && use_adjoint(g)) {
    // gx = the adjoint of the forward, over the forward's tiles: for the reference conv2
    // 9 tiles per image instead of the 16 that cover gx (13x13) as a forward conv of gy.
    const PackedWeights U(v, w, g.O, g.C, WinoWeights::data_adjoint);
    run_forward(v, make_wino(v, g.N, g.C, g.H, g.W, g.O, g.OH, g.OW, g.pt, g.pl), gy, U, nullptr,
                false, gx, true);
    return;
  }
  const PackedWeights U(v, w, g.O, g.C, WinoWeights::data_conv);
  // gx = gy (padded by 2 - p on each side) correlated with the rotated, transposed kernels.
  run_forward(v, make_wino(v, g.N, g.O, g.OH, g.OW, g.C, g.H, g.W, 2 - g.pt, 2 - g.pl), gy, U,
              nullptr, false, gx);
}

void conv2d_backward_weight_winograd(const ConvGeom& g, const float* gy, const float* x,
                                     float* gw) {
  const Variant& v = *weight_variant(g);
  const WinogradKernels& k = v.kernels->cpu();
  const int E = v.E;
  const WinoGeom wg = make_wino(v, g.N, g.C, g.H, g.W, g.O, g.OH, g.OW, g.pt, g.pl);
  const int64_t C = g.C, O = g.O, per_image = wg.TH * wg.TW;
  const int64_t chunk = chunk_images(wg), n_chunks = ceil_div(g.N, chunk), usize = E * O * C;
  const int64_t T = block_tiles(v, wg), ldt = round_up(T, 16);
  const WinoLayout lay_v = row_major(C, ldt), lay_d = row_major(O, ldt);
  const CallBuffer dU(n_chunks * usize);
  conv_packed::run_pulled(n_chunks, [&](const conv_packed::Puller& pull) {
    const Scratch V(0, E * lay_v.es), D(1, E * lay_d.es);
    for (int64_t ch = pull(); ch >= 0; ch = pull()) {
      const int64_t first = ch * chunk * per_image;
      const int64_t end = min64(g.N, (ch + 1) * chunk) * per_image;
      float* dUc = dU.get() + ch * usize;
      for (int64_t t0 = first; t0 < end; t0 += T) {
        const int64_t cnt = min64(T, end - t0);
        k.input_transform(&wg, x, t0, cnt, V.get(), &lay_v);
        k.dy_transform(&wg, gy, t0, cnt, D.get(), &lay_d);
        for (int e = 0; e < E; ++e) {
          sgemm(false, true, O, C, cnt, D.get() + e * lay_d.es, ldt, V.get() + e * lay_v.es, ldt,
                t0 == first ? 0.0f : 1.0f, dUc + e * O * C, C);
        }
      }
    }
  });
  sum_chunks_to_weight_gradient(v, dU.get(), n_chunks, usize, O * C, gw);
}

namespace {
// The fused pass's blocks: whole images, up to a weight-gradient chunk.
int64_t fused_block_images(const WinoGeom& wg) {
  return adjoint_block_images(wg, min64(wg.N, chunk_images(wg)));
}
}  // namespace

// Both GEMMs take one K block: the data GEMM's depth O, the weight GEMM's the block's tiles
// (at most 2 * 128 or one image's 121 tiles: within kc, 256 or more, on every ISA).
bool winograd_backward_fused_ok(const ConvGeom& g) {
  if (data_variant(g) != &kF4 || weight_variant(g) != &kF4 || !use_adjoint(g)) return false;
  const WinoGeom wg = make_wino(kF4, g.N, g.C, g.H, g.W, g.O, g.OH, g.OW, g.pt, g.pl);
  const int64_t kc = sgemm_packing().kc;
  return g.O <= kc && fused_block_images(wg) * wg.TH * wg.TW <= kc;
}

// Both gradients in one pass over the forward's tiles: per block of whole images, gy's tiles
// are transformed once (D = A' dy A'^T) and feed both the data gradient's GEMMs (U^T x D, then
// the adjoint's output step) and the weight gradient's (D x V^T, V = the block's input
// transform), element by element while D_e is in L1. Apart, each pass transformed gy itself
// (~25% of either pass on the reference conv2), but together the buffers (D, M, V, U^T and
// the chunk's sums) outgrow L2 and the transforms and GEMMs slow down: measured on the
// reference conv2 (2 threads, AVX-512, interleaved A/B) 1.78 against 1.84 ms, only ~3%.
// D is in the packed B layout the data GEMM reads (its depth O fits one K block): panels of
// nr tiles, row-major within. The weight GEMM packs its operands from those panels (D as A, V,
// laid out the same way, as B^T: sgemm_pack_{a,b}_panels) with all of the block's tiles as
// one K block, so each element's O x C sums are loaded and stored once per block instead of
// once per panel (one sgemm per panel, K = nr, reloaded the chunk's 36 planes of sums, ~300 KB
// on the reference conv2, 3-4 times per block). Measured on the reference model's training
// step (AVX2, Zen 3, 2 threads, interleaved per step): 0.11-0.14 ms per step faster.
// Chunks, and the order of tiles within a chunk, are those of conv2d_backward_weight_winograd,
// and sgemm's chain runs on across blocks (load_c), so gw has the same bits as there; gx is
// the adjoint pass's.
namespace {
// conv2d_backward_winograd's pass: gy is read from the tensor, or (gy_of) made a block of
// whole images at a time into this thread's scratch (slot 4), where the dy transform reads
// it as the block's first images.
void backward_fused(const ConvGeom& g, const float* gy, const ImagesGrad* gy_of, const float* x,
                    const float* w, float* gx, float* gw) {
  const Variant& v = kF4;
  const WinogradKernels& k = v.kernels->cpu();
  const int E = v.E;
  const WinoGeom wg = make_wino(v, g.N, g.C, g.H, g.W, g.O, g.OH, g.OW, g.pt, g.pl);
  const int64_t C = g.C, O = g.O, per_image = wg.TH * wg.TW;
  const int64_t block_images = fused_block_images(wg);
  const int64_t T = block_images * per_image, ldt = round_up(T, 16);
  const GemmPacking pk = sgemm_packing();
  const int64_t nr = pk.nr;
  const WinoLayout lay_d = b_panels(O, T, nr), lay_v = b_panels(C, T, nr);
  const WinoLayout lay_m = row_major(C, ldt);
  const PackedWeights U(v, w, O, C, WinoWeights::data_adjoint);
  const int64_t chunk = chunk_images(wg), n_chunks = ceil_div(g.N, chunk), usize = E * O * C;
  const CallBuffer dU(n_chunks * usize);
  conv_packed::run_pulled(n_chunks, [&](const conv_packed::Puller& pull) {
    const Scratch D(0, E * lay_d.es + 64), M(1, E * lay_m.es), V(2, E * lay_v.es);
    const Scratch G(4, gy_of != nullptr ? block_images * O * g.OH * g.OW : 0);
    const Scratch Ap(5, sgemm_packed_a_size(O, T)), Bp(6, round_up(C, nr) * T);
    const float* u = nullptr;  // made on this thread's first chunk
    for (int64_t ch = pull(); ch >= 0; ch = pull()) {
      if (u == nullptr) u = U.for_thread();
      const int64_t n_end = min64(g.N, (ch + 1) * chunk);
      float* dUc = dU.get() + ch * usize;
      for (int64_t n0 = ch * chunk; n0 < n_end; n0 += block_images) {
        const int64_t images = min64(block_images, n_end - n0);
        const int64_t t0 = n0 * per_image, cnt = images * per_image;
        if (gy_of != nullptr) {
          (*gy_of)(n0, images, G.get());
          k.dy_transform(&wg, G.get(), 0, cnt, D.get(), &lay_d);
        } else {
          k.dy_transform(&wg, gy, t0, cnt, D.get(), &lay_d);
        }
        k.input_transform(&wg, x, t0, cnt, V.get(), &lay_v);
        for (int e = 0; e < E; ++e) {  // both GEMMs of element e while its D is in L1
          const float* de = D.get() + e * lay_d.es;
          sgemm_packed_block(C, cnt, O, u + e * U.a_size(), de, false, true,
                             M.get() + e * lay_m.es, ldt);
          const float* ve = V.get() + e * lay_v.es;
          sgemm_pack_a_panels(O, cnt, de, nr, lay_d.panel_stride, Ap.get());
          sgemm_pack_b_panels(cnt, C, ve, nr, lay_v.panel_stride, Bp.get());
          sgemm_packed_block(O, C, cnt, Ap.get(), Bp.get(), n0 > ch * chunk, true,
                             dUc + e * O * C, C);
        }
        k.adjoint_output_transform(&wg, M.get(), ldt, lay_m.es, t0, cnt, gx);
      }
    }
  });
  sum_chunks_to_weight_gradient(v, dU.get(), n_chunks, usize, O * C, gw);
}

}  // namespace

void conv2d_backward_winograd(const ConvGeom& g, const float* gy, const float* x, const float* w,
                              float* gx, float* gw) {
  backward_fused(g, gy, nullptr, x, w, gx, gw);
}

void conv2d_backward_winograd(const ConvGeom& g, const ImagesGrad& gy_of, const float* x,
                              const float* w, float* gx, float* gw) {
  backward_fused(g, nullptr, &gy_of, x, w, gx, gw);
}

}  // namespace fv
