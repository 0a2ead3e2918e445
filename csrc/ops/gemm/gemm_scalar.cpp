// sgemm pieces, scalar reference and fallback (see gemm_kernels.h for layouts and the
// arithmetic contract). Register tile 4 x 8; s = s + a*b as a rounded multiply then a
// rounded add (the build uses -ffp-contract=off, so the compiler never fuses them).
#include "ops/gemm/gemm_kernels.h"

namespace fv {
namespace {

constexpr int MR = 4;
constexpr int NR = 8;

void pack_a(bool trans, const float* a, int64_t lda, int64_t mc, int64_t kc, float* dst) {
  for (int64_t i0 = 0; i0 < mc; i0 += MR, dst += kc * MR) {
    const int64_t h = mc - i0 < MR ? mc - i0 : MR;
    for (int64_t k = 0; k < kc; ++k) {
      for (int64_t i = 0; i < MR; ++i) {
        float v = 0.0f;
        if (i < h) v = trans ? a[k * lda + i0 + i] : a[(i0 + i) * lda + k];
        dst[k * MR + i] = v;
      }
    }
  }
}

void pack_b(bool trans, const float* b, int64_t ldb, int64_t kc, int64_t nc, float* dst) {
  for (int64_t j0 = 0; j0 < nc; j0 += NR, dst += kc * NR) {
    const int64_t w = nc - j0 < NR ? nc - j0 : NR;
    for (int64_t k = 0; k < kc; ++k) {
      for (int64_t j = 0; j < NR; ++j) {
        float v = 0.0f;
        if (j < w) v = trans ? b[(j0 + j) * ldb + k] : b[k * ldb + j0 + j];
        dst[k * NR + j] = v;
      }
    }
  }
}

void kernel(int64_t kc, const GemmOperands& op, float* c, int64_t ldc, const GemmTile& t) {
  float acc[MR][NR] = {};
  if (t.load_c) {
    for (int i = 0; i < t.mr; ++i)
      for (int j = 0; j < t.nr; ++j) acc[i][j] = c[i * ldc + j];
  }
  // Out-of-tile rows/columns read row/column 0 of the operand (always valid) and are dropped.
  int64_t arow[MR];
  for (int i = 0; i < MR; ++i) arow[i] = op.a_packed ? i : (i < t.mr ? i : 0) * op.a_rs;
  const int64_t a_ks = op.a_packed ? MR : op.a_ks;
  const int64_t b_ks = op.b_packed ? NR : op.b_ks;
  const int ncols = op.b_packed ? NR : t.nr;
  for (int64_t k = 0; k < kc; ++k) {
    const float* ak = op.a + k * a_ks;
    const float* bk = op.b + k * b_ks;
    for (int i = 0; i < MR; ++i) {
      const float av = ak[arow[i]];
      for (int j = 0; j < ncols; ++j) acc[i][j] = acc[i][j] + av * bk[j];
    }
  }
  if (t.last) {
    for (int i = 0; i < t.mr; ++i) {
      for (int j = 0; j < t.nr; ++j) {
        float v = acc[i][j];
        if (t.bias_row != nullptr) v = v + t.bias_row[i];
        if (t.bias_col != nullptr) v = v + t.bias_col[j];
        if (t.relu) v = v < 0.0f ? 0.0f : v;  // NaN stays NaN, as torch.relu
        acc[i][j] = v;
      }
    }
  }
  for (int i = 0; i < t.mr; ++i)
    for (int j = 0; j < t.nr; ++j) c[i * ldc + j] = acc[i][j];
}

}  // namespace

extern const GemmKernels gemm_kernels_scalar = {MR, NR, 256, 128, 2048, &pack_a, &pack_b, &kernel};

}  // namespace fv
