// Winograd convolution, F(2x2, 3x3) and F(4x4, 3x3): 3x3, stride 1, dilation 1, groups 1
// (Lavin & Gray 2015). F(2x2, 3x3) is described here; F(4x4, 3x3) is the same scheme with 6x6
// input patches, 4x4 output tiles and 36 tile elements (36 multiplies per 16 outputs instead of
// 144: 4x fewer than im2col), with integer-scaled matrices (winograd4_inl.h).
//
// Each 2x2 block of outputs ("tile") is computed from the 4x4 input patch under it:
//   y_tile = A^T [ sum_c U[c] (.) V[c] ] A,   U = G g G^T (4x4 per (o, c)),  V = B^T d B,
// so per tile element e = 4a + b (16 of them) the channel sum is a GEMM
//   M_e[O x T] = U_e[O x C] x V_e[C x T]   over a block of T tiles,
// 16 multiply-adds per tile and (o, c) pair instead of 4 outputs x 9 taps = 36: 2.25x fewer
// than im2col (less where an odd output size leaves tiles overhanging the edge).
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   (adds only)
//   G   = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]       (halves: exact in binary)
//   A^T = [1 1 1 0; 0 1 -1 -1]                       (adds only)
// The backward passes are the same machinery:
//   data:   gx = conv of gy (padding 2 - p) with the flipped, transposed weights; or, F(4x4)
//           where that takes fewer tiles, the forward's adjoint over the forward's tiles:
//           gx(window) += B [ sum_o U^T (.) (A dy A^T) ] B^T, overlapping windows added;
//   weight: dg = G^T [ sum_tiles V_t (.) (A dy_t A^T) ] G, i.e. per element e the GEMM
//           dU_e[O x C] = Dy_e[O x T] x V_e[C x T]^T over all tiles (dy of overhanging
//           outputs is 0), then the 4x4 -> 3x3 transform.
//
// Numerics: the transforms are adds, subtracts and exact halvings done in one fixed order
// in every ISA file (no FMA, -ffp-contract=off), so they give the same bits everywhere; the
// GEMMs are sgemm's. With small integers every step is exact, so results are exact on every
// ISA. In general the error is a small multiple of im2col's (tests/tolerances.py).
//
// Files: winograd.cpp (driver: selection, weight transforms, blocking, threads, GEMMs),
// winograd_{scalar,avx2,avx512}.cpp (the tile transforms, from winograd_inl.h for F(2x2)
// and winograd4_inl.h for F(4x4); the weight transforms of both, from winograd_weights_inl.h).
#pragma once

#include <cstdint>

#include "core/dispatch.h"
#include "ops/conv2d/conv2d.h"

namespace fv {

// Tile grid of one Winograd convolution (described for F(2x2); F(4x4)'s tiles are 4x4 outputs
// over 6x6 input patches: 4 and 6 in place of 2 and 4 below) over an NCHW tensor with `C` channels of H x W
// (the transform input) producing OH x OW outputs; tile t (global, over images) is
// (n, tr, tc) = (t / (TH*TW), t / TW % TH, t % TW); its input patch starts at
// (2 tr - pt, 2 tc - pl) (reads outside [0,H) x [0,W) are 0) and it covers outputs
// (2 tr + [0,2), 2 tc + [0,2)) (those outside [0,OH) x [0,OW) are dropped / read as 0).
struct WinoGeom {
  int64_t N, C, H, W;  // transform input (x forward, gy for the data gradient)
  int64_t O, OH, OW;   // outputs per image
  int64_t pt, pl;
  int64_t TH, TW;      // tiles per image: ceil(OH / 2) x ceil(OW / 2)
};

// Where a transform stores the value of element e, channel c, tile j (of the block):
//   dst + e*es + (j / panel_w)*panel_stride + c*c_stride + j % panel_w.
// Row-major planes (c rows of ld tiles): panel_w >= T, c_stride = ld. The GEMM's packed B
// panels (sgemm_packed_block reads them as they are): panel_w = nr, c_stride = nr,
// panel_stride = C*nr. es is padded off multiples of 1 KB: 16 planes at such a stride would
// share one L1 set.
struct WinoLayout {
  int64_t panel_w, panel_stride, c_stride, es;
};

// Which 3x3 kernels a weight transform takes, with p the Winograd GEMM's rows and q its depth.
enum class WinoWeights {
  forward,      // k[p][q] = w[p][q] (O x C)
  data_conv,    // k[p][q] = w[q][p] rotated by 180 degrees (C x O): the data gradient as a
                // forward conv of gy (its outputs are the conv's input channels)
  data_adjoint  // k[p][q] = w[q][p] (C x O): U^T, the data gradient as the forward's adjoint
};

struct WinogradKernels {
  // Blocks are whole tile rows: t0 and T multiples of TW.
  // V(e, c, j) = (B^T d B)[e] for tiles j in [0, T) from t0, every channel c < C.
  void (*input_transform)(const WinoGeom* g, const float* x, int64_t t0, int64_t T, float* V,
                          const WinoLayout* lay);
  // y[n, o, 2tr + a, 2tc + b] = relu?(bias[o] + (A^T M A)[a][b]) for the tiles of the block,
  // from M[e*es + o*ldm + j] (row-major planes); outputs past OH / OW are not written.
  void (*output_transform)(const WinoGeom* g, const float* M, int64_t ldm, int64_t es, int64_t t0,
                           int64_t T, const float* bias, bool relu, float* y);
  // D(e, o, j) = (A dy A^T)[e] for the tiles' 2x2 blocks of dy (N, O, OH, OW) (dy past
  // OH / OW reads as 0).
  void (*dy_transform)(const WinoGeom* g, const float* dy, int64_t t0, int64_t T, float* D,
                       const WinoLayout* lay);
  // F(4x4) only (F(2x2): null): the data gradient as the forward's adjoint, over the forward
  // geometry g's tiles in blocks of whole images (t0, T multiples of TH*TW): zeroes gx
  // (N, C, H, W) of the block's images, then adds each tile's B M B^T / 576 into its 6x6
  // window (parts outside [0,H) x [0,W) dropped), from M[e*es + c*ldm + j] (row-major planes).
  void (*adjoint_output_transform)(const WinoGeom* g, const float* M, int64_t ldm, int64_t es,
                                   int64_t t0, int64_t T, float* gx);
  // The transformed weights, each element's matrix U_e[p][q] = (G k[p][q] G^T)[e] (P x Q: O x C
  // forward, C x O for the data gradient) in sgemm's packed A layout (gemm.h: micro-panels of
  // mr rows, K blocks of kc, rows past P zero) at Upack + e*a_size. Writes the work items
  // [i0, i1) of (micro-panel, q) = (i / Q, i % Q), so threads can split any range.
  void (*weight_transform)(const float* w, int64_t O, int64_t C, WinoWeights mode, int64_t mr,
                           int64_t kc, int64_t a_size, int64_t i0, int64_t i1, float* Upack);
  // F(4x4) only (F(2x2): null): output_transform with relu, then a 2x2 stride-2 max pool
  // (floor mode) in registers: pooled and codes (N, O, OH / 2, OW / 2) get each window's max
  // and its position (0-3, max_pool2d_2x2's codes and rule); the conv's output is not written.
  void (*output_transform_pool2x2)(const WinoGeom* g, const float* M, int64_t ldm, int64_t es,
                                   int64_t t0, int64_t T, const float* bias, float* pooled,
                                   uint8_t* codes);
};

FV_DECLARE_KERNELS(WinogradKernels, winograd_kernels);
// F(4x4, 3x3): the same entry points with 36 tile elements (e = 6a + b), tiles of 4x4 outputs,
// M and the transforms in the integer-scaled form of winograd4_inl.h (the output transform
// scales by 1/576 last). Blocks need not be whole tile rows; layouts' panel_w must be a multiple of
// 16 (a chunk of lanes never crosses a panel). Its input and dy transforms also write 0 to the
// lanes past the block's last tile, up to the next multiple of the vector width: the GEMM
// micro-kernels read whole vectors of a packed panel (see zero_panel_tail in winograd.cpp).
FV_DECLARE_KERNELS(WinogradKernels, winograd4_kernels);

// Which convolution algorithm 3x3 stride-1 layers use (fastvision.set_conv_algorithm):
//   auto      Winograd where it needs clearly fewer multiplies and measured faster (big
//             enough channel counts, outputs that tile well; without AVX-512 the gradients
//             want more input channels: see winograd.cpp), im2col GEMM elsewhere;
//   gemm      never Winograd;
//   winograd  Winograd F(2x2, 3x3) wherever it applies (3x3, stride 1, dilation 1, groups 1,
//             padding <= 2);
//   winograd4 Winograd F(4x4, 3x3) wherever it applies (the same shapes, while the transforms'
//             int32 window offsets over 16 images fit), else F(2x2, 3x3).
enum class ConvAlgo { auto_select, gemm, winograd, winograd4 };
void set_conv_algo(ConvAlgo a);
ConvAlgo conv_algo();

// Whether each pass of this convolution takes a Winograd path (the shape and the setting
// decide, and auto's choice for the gradients the ISA too; never the thread count). Which
// tile size it takes is decided in winograd.cpp by the same rules.
bool winograd_forward_ok(const ConvGeom& g);
bool winograd_backward_data_ok(const ConvGeom& g);
bool winograd_backward_weight_ok(const ConvGeom& g);

void conv2d_forward_winograd(const ConvGeom& g, const float* x, const float* w,
                             const float* bias, bool relu, float* y);
// The forward with relu and a 2x2 stride-2 max pool (floor mode) done in the output
// transform, where the forward takes F(4x4) and its output has at least 2 x 2 elements:
// pooled and codes (N, O, OH / 2, OW / 2) get the bits of conv2d_forward_winograd (relu)
// followed by max_pool2d_2x2, and the conv's output is never written.
bool winograd_relu_pool2x2_ok(const ConvGeom& g);
void conv2d_relu_pool2x2_winograd(const ConvGeom& g, const float* x, const float* w,
                                  const float* bias, float* pooled, uint8_t* codes);
void conv2d_backward_data_winograd(const ConvGeom& g, const float* gy, const float* w, float* gx);
void conv2d_backward_weight_winograd(const ConvGeom& g, const float* gy, const float* x,
                                     float* gw);
// Both gradients in one pass (winograd.cpp), where both take F(4x4) and the data gradient the
// adjoint form: the same bits as the two calls above, gy transformed once instead of twice.
bool winograd_backward_fused_ok(const ConvGeom& g);
void conv2d_backward_winograd(const ConvGeom& g, const float* gy, const float* x, const float* w,
                              float* gx, float* gw);
// The same with gy never whole: gy_of(n0, images, buf) writes gy of images [n0, n0 + images)
// (images x O x OH x OW) into buf, on the thread that then transforms it. Each image is in
// exactly one call, and the images of each kWinogradChunk-image chunk (0-7, 8-15, ...) come
// in order on one thread (so gy_of may accumulate per-chunk sums, like the bias gradient's).
constexpr int64_t kWinogradChunk = 8;
void conv2d_backward_winograd(const ConvGeom& g, const ImagesGrad& gy_of, const float* x,
                              const float* w, float* gx, float* gw);

}  // namespace fv
