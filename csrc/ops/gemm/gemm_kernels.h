// sgemm per-ISA pieces: packing routines and the register-tile micro-kernel (gemm.h is the
// public interface; gemm.cpp the non-ISA driver that blocks, threads and calls these).
//
// Packed layouts (both zero-padded to whole panels, 64-byte aligned by the driver):
//   A block (mc x kc) -> ceil(mc/mr) micro-panels, each kc x mr, k-major: P[k*mr + i]
//   B panel (kc x nc) -> ceil(nc/nr) micro-panels, each kc x nr, k-major: P[k*nr + j]
//
// Arithmetic contract (what makes every path bitwise identical at one ISA): the kernel keeps
// one accumulator per C element, starts it from C (tile.load_c) or from 0, and runs
// s = s + a[k]*b[k] over k in ascending order (one fused multiply-add on the SIMD levels,
// a rounded multiply then a rounded add on scalar). Since the chain continues from C across
// K blocks, the result does not depend on KC/MC/NC, on the thread count or on where the
// element falls in a tile. On the last K block (tile.last) it adds the bias then applies relu.
#pragma once

#include <cstdint>

#include "core/dispatch.h"

namespace fv {

struct GemmTile {
  int mr;                    // valid rows of this tile, 1..kernels.mr
  int nr;                    // valid columns, 1..kernels.nr
  bool load_c;               // accumulate onto C (beta = 1 or a later K block); else start at 0
  bool last;                 // last K block: apply the epilogue before the store
  const float* bias_row;     // bias[tile row] (already offset to the tile) or null
  const float* bias_col;     // bias[tile col] (already offset) or null
  bool relu;
};

// Where the micro-kernel reads its operands from.
//   A packed: a is a micro-panel (stride mr per k). A direct: element (i, k) at a[i*a_rs + k*a_ks],
//   rows >= tile.mr are never read.
//   B packed: b is a micro-panel (stride nr per k). B direct: element (k, j) at b[k*b_ks + j],
//   columns >= tile.nr are never read.
struct GemmOperands {
  const float* a;
  int64_t a_rs, a_ks;
  bool a_packed;
  const float* b;
  int64_t b_ks;
  bool b_packed;
};

struct GemmKernels {
  int mr, nr;          // register tile
  int kc, mc, nc;      // cache blocking (mc a multiple of mr, nc of nr)
  // Packs op(A)[0:mc, 0:kc]: a points at op(A)[0][0]; trans: element (i, k) at a[k*lda + i],
  // else at a[i*lda + k]. May write up to 64 floats past the packed block (the driver adds slack).
  void (*pack_a)(bool trans, const float* a, int64_t lda, int64_t mc, int64_t kc, float* dst);
  // Packs op(B)[0:kc, 0:nc]: trans: element (k, j) at b[j*ldb + k], else at b[k*ldb + j].
  void (*pack_b)(bool trans, const float* b, int64_t ldb, int64_t kc, int64_t nc, float* dst);
  // One tile of C (c points at its top-left element, row stride ldc) over kc steps of k.
  void (*kernel)(int64_t kc, const GemmOperands& op, float* c, int64_t ldc, const GemmTile& tile);
};

FV_DECLARE_KERNELS(GemmKernels, gemm_kernels);

}  // namespace fv
