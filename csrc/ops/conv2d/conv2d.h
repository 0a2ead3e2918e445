// conv2d: 2-D convolution (cross-correlation, as torch.nn.functional.conv2d), NCHW activations,
// OIHW weights (O, C/groups, kh, kw), optional bias and fused relu; and its backward.
//
//   y[n, o, oh, ow] = bias[o] + sum_{c in group(o), i, j}
//                     w[o, c - g*Cg, i, j] * x[n, c, oh*sh - pt + i*dh, ow*sw - pl + j*dw]
//   (taps outside the input read as 0; padding may be asymmetric: top/bottom, left/right,
//   which padding='same' with an even kernel needs).
//
// Files:
//   conv2d.h            geometry, the ISA kernel table and the driver entry points
//   conv2d_scalar.cpp / conv2d_avx2.cpp / conv2d_avx512.cpp
//                       im2col / col2im (masked row copies) and the direct
//                       single-input-channel kernel (first layer, depthwise)
//   conv2d.cpp          driver: im2col / col2im + fv::sgemm, threading, fixed-chunk reductions
//   conv2d_packed.cpp / conv2d_packed_wgrad.cpp / conv2d_packed.h
//                       the im2col shapes' main path: im2col (and gy) written straight into
//                       the GEMM's packed panels, sgemm_packed_block, one GEMM per batch
//   winograd.h / winograd.cpp / winograd_{scalar,avx2,avx512}.cpp / winograd_inl.h
//                       Winograd F(2x2, 3x3) for 3x3 stride-1 layers (fastvision.set_conv_algorithm)
//   conv2d_bind.cpp     pybind11: validation, allocation, GIL release
// Tests: tests/test_conv.py against tests/reference/conv.py.
#pragma once

#include <cstdint>
#include <functional>

#include "core/dispatch.h"

namespace fv {

// All sizes of one convolution; filled and validated by conv2d_bind.cpp.
struct ConvGeom {
  int64_t N, C, H, W;         // input
  int64_t O, groups;          // output channels, groups (Cg = C / groups, Og = O / groups)
  int64_t kh, kw;             // kernel
  int64_t sh, sw;             // stride
  int64_t pt, pb, pl, pr;     // padding top, bottom, left, right
  int64_t dh, dw;             // dilation
  int64_t OH, OW;             // output
  int64_t Cg() const { return C / groups; }
  int64_t Og() const { return O / groups; }
  int64_t P() const { return OH * OW; }
  int64_t Kg() const { return Cg() * kh * kw; }  // GEMM reduction length per group
};

// The ISA files read ConvGeom's fields only (never its inline members, which would be
// compiled with their ISA flags and could be merged into other objects).
struct ConvKernels {
  // col[((c*kh + i)*kw + j)*ld + oh*OW + ow] = x[c, oh*sh - pt + i*dh, ow*sw - pl + j*dw]
  // (0 outside the input) for the C/groups channels starting at x (one group of one image).
  void (*im2col)(const ConvGeom* g, const float* x, float* col, int64_t ld);
  // Its adjoint: x[c, ih, iw] += col[...] over every tap that read (c, ih, iw), in the fixed
  // (c, i, j, oh, ow) order (so every ISA gives the same bits). x must be zeroed by the caller.
  void (*col2im)(const ConvGeom* g, const float* col, int64_t ld, float* x);
  // Direct convolution of ONE input channel, stride 1, dilation 1, no padding (the caller
  // pads): xp is Hp x Wp (row stride Wp), w is [O][kh*kw], bias is [O] or null.
  //   y[o*y_stride + oh*OW + ow] = relu?(bias[o] + sum_{i,j} w[o][i*kw+j] * xp[(oh+i)*Wp + ow+j])
  // Taps are summed in (i, j) order from 0, then the bias is added: every output element
  // takes the same path (SIMD tails are masked).
  void (*direct_c1)(const float* xp, int64_t Hp, int64_t Wp, const float* w, const float* bias,
                    int64_t O, int64_t kh, int64_t kw, int64_t OH, int64_t OW, bool relu,
                    float* y, int64_t y_stride);
  // Weight gradient of a 3x3 direct_c1 (one input channel, stride 1, dilation 1) for one
  // image: gw[o*9 + i*3 + j] += sum_{oh, ow} gy[o*P + oh*OW + ow] * xp[(oh+i)*Wp + ow+j],
  // P = OH*OW. (As a GEMM this is [O, P] x [P, 9]: N = 9 is too narrow for a GEMM kernel.)
  // Each (o, tap) sum runs in a fixed order per ISA, then is added to gw.
  void (*wgrad_c1_3x3)(const float* xp, int64_t Wp, const float* gy, int64_t O, int64_t OH,
                       int64_t OW, float* gw);
  // Data gradient of the same conv (padding pt / pl) for one image, H x W outputs:
  //   gx[h*W + x] = sum_{o, i, j} w[o*9 + i*3 + j] * gy[o*P + (h + pt - i)*OW + x + pl - j],
  // gy read as 0 outside OH x OW, each element's sum in a fixed order per ISA; gx is
  // overwritten. (As a GEMM this is [9, O] x [O, P] then col2im: M = 9 rows leave most of a
  // GEMM kernel idle.)
  // Null in the scalar table: there the GEMM path measured faster (2.5 against 3.4 ms on the
  // reference conv1's data gradient); AVX2 0.76 -> 0.44 ms, AVX-512 0.40 -> 0.18 ms.
  void (*dgrad_c1_3x3)(const float* gy, const float* w, int64_t O, int64_t OH, int64_t OW,
                       int64_t H, int64_t W, int64_t pt, int64_t pl, float* gx);
  // Bias gradient of one image: gb[r] += sum_p gy[r*P + p] for r < rows, each sum in a fixed
  // order per ISA (SIMD: several vector accumulators, a serial float sum is latency-bound).
  void (*row_sums)(const float* gy, int64_t rows, int64_t P, float* gb);
  // Builds one packed GEMM micro-panel straight from an activation tensor through index maps
  // made by the driver (im2col into packed B, gy into packed A or B; see conv2d.cpp):
  //   dst[a*nr + b] = valid(a, b) ? src[ra[a] + cb[b]] : 0   for a < na, b < nr,
  //   valid(a, b) = b < nb and (rh == null or ((unsigned)(rh[a] + ch[b]) < H and
  //                                            (unsigned)(rw[a] + cw[b]) < W)).
  // Invalid elements are never read. A pure copy: every ISA gives the same bits.
  void (*gather_panel)(const float* src, const int32_t* ra, const int32_t* rh, const int32_t* rw,
                       int64_t na, const int32_t* cb, const int32_t* ch, const int32_t* cw,
                       int64_t nb, int64_t nr, int32_t H, int32_t W, float* dst);
  // The same for maps contiguous over runs of b (stride-1 im2col rows without padding, gy rows):
  //   dst[a*nr + b] = src[ra[a] + rel[s] + b] for b in [lo[s], hi[s]) (run s; runs sorted and
  //   disjoint), 0 for the b < nr outside every run. Masked whole-vector copies: much cheaper
  //   than gathers, and the same bits.
  void (*copy_panel)(const float* src, const int32_t* ra, int64_t na, const int32_t* lo,
                     const int32_t* hi, const int32_t* rel, int64_t nruns, int64_t nr, float* dst);
  // direct_c1 for a 3x3 kernel with the relu on, followed by a 2x2 stride-2 max pool with
  // codes (max_pool2d_2x2's rule), in registers: the conv's rows are made two at a time and
  // never stored. For o < O, PH = OH / 2, PW = OW / 2:
  //   pooled[o*out_stride + ph*PW + pw], codes[same] = the max of the window rows 2ph, 2ph + 1,
  //   columns 2pw, 2pw + 1 of direct_c1's y, and which of the four won (first max, NaN wins).
  // The bits of direct_c1 then max_pool2d_2x2. OW <= kPoolFusedMaxOW; OH, OW >= 2. Null where
  // an ISA has none (the caller pools direct_c1's output planes instead).
  void (*direct_c1_relu_pool2x2)(const float* xp, int64_t Wp, const float* w, const float* bias,
                                 int64_t O, int64_t OH, int64_t OW, float* pooled,
                                 uint8_t* codes, int64_t out_stride);
};

// The widest conv output row direct_c1_relu_pool2x2 takes (two AVX-512 vectors).
constexpr int64_t kPoolFusedMaxOW = 32;

FV_DECLARE_KERNELS(ConvKernels, conv2d_kernels);

// Driver (conv2d.cpp). Pointers are to C-contiguous float32 arrays of the geometry's shapes;
// the caller has validated everything and released the GIL.
void conv2d_forward(const ConvGeom& g, const float* x, const float* w, const float* bias,
                    bool relu, float* y);
// The forward with each work unit's output planes handed to sink(plane0, planes, y) instead of
// written to a whole output: plane plane0 + i (n * O + channel) is y + i * OH * OW, in the
// calling thread's buffer, valid during the call. The fused conv + relu + 2x2 pool node pools
// conv1's output this way a few planes at a time, in cache, instead of writing and reading all
// of it. Where conv2d_forward_per_unit_ok (the direct path: one input channel per group,
// stride 1, dilation 1) the planes have conv2d_forward's bits.
using PlanesSink = std::function<void(int64_t plane0, int64_t planes, const float* y)>;
bool conv2d_forward_per_unit_ok(const ConvGeom& g);
void conv2d_forward_per_unit(const ConvGeom& g, const float* x, const float* w, const float* bias,
                             bool relu, const PlanesSink& sink);
// relu, then a 2x2 stride-2 max pool with codes, fused into the conv where its path can pool
// in registers: Winograd F(4x4)'s output transform (winograd_relu_pool2x2_ok: the reference
// conv2), or the direct path's kernel where the ISA has direct_c1_relu_pool2x2 and the shape
// fits it (a 3x3 per-unit conv, output rows of 2 .. kPoolFusedMaxOW: the reference conv1).
// pooled and codes are (N, O, OH / 2, OW / 2), with the bits of conv2d_forward (relu) then
// max_pool2d_2x2.
bool conv2d_relu_pool2x2_fused_ok(const ConvGeom& g);
void conv2d_relu_pool2x2_fused(const ConvGeom& g, const float* x, const float* w,
                               const float* bias, float* pooled, uint8_t* codes);
// Any of gx, gw, gb may be null (not wanted).
void conv2d_backward(const ConvGeom& g, const float* gy, const float* x, const float* w,
                     float* gx, float* gw, float* gb);

// The weight and bias gradients with gy supplied a few channels of one image at a time:
// gy_of(n, o0, o1, buf) returns channels [o0, o1) of image n's gy ((o1 - o0) x OH x OW), a
// pointer into a tensor or computed into buf (room for (o1 - o0) * OH * OW floats, the calling
// thread's). The fused conv + relu + 2x2 pool node computes conv1's gy (the largest
// activation) this way from the pooled gradient, in L1, instead of writing and reading all of
// it. Where conv2d_backward_per_image_ok (no data gradient; the weight gradient, if wanted,
// on the direct 3x3 path: conv2d_backward takes gy this way there too) the results have
// conv2d_backward's bits. gw or gb may be null.
using ImageGrad = std::function<const float*(int64_t n, int64_t o0, int64_t o1, float* buf)>;
bool conv2d_backward_per_image_ok(const ConvGeom& g, bool need_gx, bool need_gw);
void conv2d_backward_per_image(const ConvGeom& g, const ImageGrad& gy_of, const float* x,
                               float* gw, float* gb);

// All three gradients with gy supplied a block of whole images at a time: gy_of(n0, images,
// buf) writes gy of images [n0, n0 + images) (images x O x OH x OW) into buf (the calling
// thread's); each image is in exactly one call. The fused conv + relu + 2x2 pool node makes
// conv2's gy from the pooled gradient this way, in cache, instead of writing and reading all
// of it. Where conv2d_backward_blocks_ok (both gradients on the fused Winograd F(4x4) pass:
// the reference conv2) the results have conv2d_backward's bits. gb may be null.
using ImagesGrad = std::function<void(int64_t n0, int64_t images, float* buf)>;
bool conv2d_backward_blocks_ok(const ConvGeom& g, bool need_gx, bool need_gw);
void conv2d_backward_blocks(const ConvGeom& g, const ImagesGrad& gy_of, const float* x,
                            const float* w, float* gx, float* gw, float* gb);

// Packed-GEMM paths (conv2d_packed.cpp), used by the two above for the im2col shapes:
// the im2col matrix is gathered straight into the GEMM's packed panels.
bool conv2d_packed_ok(const ConvGeom& g);  // index maps fit int32
void conv2d_forward_packed(const ConvGeom& g, const float* x, const float* w, const float* bias,
                           bool relu, float* y);
void conv2d_backward_data_packed(const ConvGeom& g, const float* gy, const float* w, float* gx);
void conv2d_backward_weight_packed(const ConvGeom& g, const float* gy, const float* x, float* gw);

}  // namespace fv
