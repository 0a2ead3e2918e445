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

}  // namespace fv
