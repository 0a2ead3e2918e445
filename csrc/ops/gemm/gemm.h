// sgemm: the fp32 matrix multiply every other op builds on (linear, conv forward/backward).
//
//   C[M x N] = beta * C + op(A) * op(B), then the epilogue (bias, relu), all row-major:
//   op(A) is M x K: A[m*lda + k], or with trans_a A is K x M: A[k*lda + m]
//   op(B) is K x N: B[k*ldb + n], or with trans_b B is N x K: B[n*ldb + k]
//   beta is 0 (C is write-only: NaN/garbage in C never propagates) or 1 (accumulate).
//
// Threads: called outside a parallel region it splits the work over the pool itself; called
// from inside one (e.g. conv splitting over the batch) it runs on the calling thread.
// Determinism: each C element's K-sum runs in one fixed order that depends on neither the
// thread count nor on where the element falls in a tile, so results are bitwise identical at
// any thread count (at one ISA).
#pragma once

#include <cstdint>

namespace fv {

struct GemmEpilogue {
  enum class Bias { none, per_row, per_col };
  Bias bias_kind = Bias::none;
  const float* bias = nullptr;  // length M (per_row) or N (per_col)
  bool relu = false;            // y = max(y, 0) after the bias
};

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
           const GemmEpilogue& epilogue = GemmEpilogue{});

// Pre-packed operands, for callers that build the packed panels themselves (conv writes its
// im2col straight into packed B panels and packs its weights once per call). The layouts are
// the micro-kernel's (gemm_kernels.h) at the active ISA:
//   packed A (sgemm_pack_a): K cut into blocks of kc (the last one shorter); block b starts at
//     apack + round_up(M, mr) * b * kc and holds ceil(M/mr) micro-panels, each kc_b x mr,
//     k-major: P[k*mr + i] (rows past M are 0).
//   packed B block: ceil(nc/nr) micro-panels, each kc_b x nr, k-major: P[k*nr + j], 64-byte
//     aligned (the kernel loads it with aligned loads); columns past nc are computed, never
//     stored.
// sgemm_packed_block runs ONE K block on the calling thread (no threads of its own): the caller
// loops over the K blocks in order with load_c = (beta == 1 || not the first block) and
// last = (last block), which gives every C element exactly sgemm's fused chain, so the result
// is bitwise sgemm's whatever the caller's split of the columns over threads.
struct GemmPacking {
  int mr, nr, kc;
};
GemmPacking sgemm_packing();
int64_t sgemm_packed_a_size(int64_t M, int64_t K);  // floats, slack for pack_a included
void sgemm_pack_a(bool trans_a, int64_t M, int64_t K, const float* A, int64_t lda, float* apack);
// Packs op(B)[0:kc_b, 0:nc] (trans: element (k, j) at B[j*ldb + k], else B[k*ldb + j]) as one
// packed B block; bpack 64-byte aligned, kc_b * round_up(nc, nr) + 64 floats.
void sgemm_pack_b(bool trans_b, int64_t kc_b, int64_t nc, const float* B, int64_t ldb,
                  float* bpack);
// One K block packed from an operand held as row-major panels of pw columns (the packed B
// layout Winograd's transforms write, read here as the other GEMM's operand): element (r, t)
// of an R x T matrix X at X[(t / pw) * ps + r * pw + t % pw]. With K = T (the depth), X's
// columns [0, kb) (kb <= kc; X points at the block's first panel):
//   sgemm_pack_a_panels: op(A) = X (M = R rows) as one block of packed A (ceil(M/mr)
//     micro-panels of kb x mr; sgemm_packed_a_size(M, kb) floats);
//   sgemm_pack_b_panels: op(B) = X^T (nc = R columns) as one packed B block (64-byte aligned,
//     kb * round_up(nc, nr) floats).
// So C = X1 x X2^T, both X's in panels, runs as sgemm_packed_block (a depth past kc: block by
// block, X advanced by kc / pw panels each, where pw divides kc).
void sgemm_pack_a_panels(int64_t M, int64_t kb, const float* X, int64_t pw, int64_t ps,
                         float* a_block);
void sgemm_pack_b_panels(int64_t kb, int64_t nc, const float* X, int64_t pw, int64_t ps,
                         float* b_block);
// C[0:M, 0:nc] (row stride ldc) = (load_c ? C : 0) + A_block x B_block, then the epilogue if
// last (bias offsets: per_row bias[m], per_col bias[n] with n counted from this C's column 0).
// a_block = the block's start inside apack; b_block = the packed B block; kc_b its depth.
void sgemm_packed_block(int64_t M, int64_t nc, int64_t kc_b, const float* a_block,
                        const float* b_block, bool load_c, bool last, float* C, int64_t ldc,
                        const GemmEpilogue& epilogue = GemmEpilogue{});

}  // namespace fv
