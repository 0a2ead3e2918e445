// sgemm driver (non-ISA): BLIS-style blocking, packing, threads; the ISA files provide the
// packing routines and the register-tile micro-kernel (gemm_kernels.h).
//
// Blocked path, for each NC-wide column block of C (jc) and KC-deep block of K (pc):
//   1. pack the B panel op(B)[pc:pc+kc, jc:jc+nc] once, shared by all threads
//      (parallel_for over its NR-wide micro-panels);
//   2. parallel_for over C: normally over MR-row tiles of M (each thread packs its own
//      MC x KC blocks of A into a thread-local L2-sized buffer); when M is short and N long
//      (conv: few output channels, many pixels) over NR-wide micro-panels of B instead, each
//      thread packing all of the (small) A block itself;
//   3. inside: for each packed A block, for each B micro-panel (L1), for each A micro-panel
//      (L2): one micro-kernel call. Edge tiles go through the same kernel (zero-padded panels,
//      masked C access). The epilogue (bias, relu) is applied in the last K block's store.
// Small path (M*N*K below ~64^3): one thread, A read in place and B too unless transposed, so
// tiny Linear calls pay no packing or thread wake-up.
//
// Every path gives each C element the same sequential fused chain over k starting from C or 0
// (see gemm_kernels.h), so results are bitwise identical whatever the path, blocking, tile
// position or thread count (at one ISA).
#include "ops/gemm/gemm.h"

#include <cstdlib>
#include <new>

#include "core/parallel.h"
#include "ops/gemm/gemm_kernels.h"

namespace fv {
namespace {

const KernelSet<GemmKernels> kGemm = FV_KERNEL_SET(GemmKernels, gemm_kernels);

constexpr double kSmallWork = 64.0 * 64.0 * 64.0;  // M*N*K below this: the small path
constexpr int64_t kSlack = 64;                     // floats past a packed block (see pack_a)
constexpr int64_t kMinChunkWork = int64_t(1) << 18;  // FMAs worth waking a second thread for

// A 64-byte aligned float buffer that only grows; one per thread, reused across calls.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(p_); }
  float* get(int64_t n) {
    if (n > cap_) {
      std::free(p_);
      p_ = nullptr;
      cap_ = 0;
      void* q = nullptr;
      if (posix_memalign(&q, 64, static_cast<size_t>(n) * sizeof(float)) != 0) throw std::bad_alloc();
      p_ = static_cast<float*>(q);
      cap_ = n;
    }
    return p_;
  }

 private:
  float* p_ = nullptr;
  int64_t cap_ = 0;
};

thread_local AlignedBuffer t_pack_a;  // this thread's A blocks
thread_local AlignedBuffer t_pack_b;  // the calling thread's shared B panel

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

struct Problem {
  bool trans_a, trans_b;
  int64_t M, N, K;
  const float* A;
  int64_t lda;
  const float* B;
  int64_t ldb;
  bool accumulate;  // beta == 1
  float* C;
  int64_t ldc;
  const GemmEpilogue* ep;
};

GemmTile make_tile(const Problem& p, int64_t m0, int64_t n0, int64_t mr, int64_t nr, bool load_c,
                   bool last) {
  GemmTile t;
  t.mr = static_cast<int>(mr);
  t.nr = static_cast<int>(nr);
  t.load_c = load_c;
  t.last = last;
  t.bias_row = p.ep->bias_kind == GemmEpilogue::Bias::per_row ? p.ep->bias + m0 : nullptr;
  t.bias_col = p.ep->bias_kind == GemmEpilogue::Bias::per_col ? p.ep->bias + n0 : nullptr;
  t.relu = p.ep->relu;
  return t;
}

// K == 0: C = beta*C + (empty sum), then the epilogue.
void run_empty_k(const Problem& p) {
  const GemmEpilogue& ep = *p.ep;
  for (int64_t m = 0; m < p.M; ++m) {
    for (int64_t n = 0; n < p.N; ++n) {
      float c = p.accumulate ? p.C[m * p.ldc + n] : 0.0f;
      if (ep.bias_kind == GemmEpilogue::Bias::per_row) c = c + ep.bias[m];
      if (ep.bias_kind == GemmEpilogue::Bias::per_col) c = c + ep.bias[n];
      if (ep.relu && c < 0.0f) c = 0.0f;
      p.C[m * p.ldc + n] = c;
    }
  }
}

void run_small(const GemmKernels& kr, const Problem& p) {
  const int64_t MR = kr.mr, NR = kr.nr, KC = kr.kc;
  float* bpack = p.trans_b ? t_pack_b.get(KC * round_up(p.N, NR) + kSlack) : nullptr;
  for (int64_t pc = 0; pc < p.K; pc += KC) {
    const int64_t kc = min64(KC, p.K - pc);
    const bool load_c = p.accumulate || pc > 0, last = pc + kc == p.K;
    if (p.trans_b) kr.pack_b(true, p.B + pc, p.ldb, kc, p.N, bpack);
    for (int64_t i0 = 0; i0 < p.M; i0 += MR) {
      GemmOperands op;
      op.a = p.trans_a ? p.A + pc * p.lda + i0 : p.A + i0 * p.lda + pc;
      op.a_rs = p.trans_a ? 1 : p.lda;
      op.a_ks = p.trans_a ? p.lda : 1;
      op.a_packed = false;
      op.b_ks = p.ldb;
      op.b_packed = p.trans_b;
      for (int64_t j0 = 0; j0 < p.N; j0 += NR) {
        op.b = p.trans_b ? bpack + j0 * kc : p.B + pc * p.ldb + j0;
        const GemmTile t = make_tile(p, i0, j0, min64(MR, p.M - i0), min64(NR, p.N - j0), load_c, last);
        kr.kernel(kc, op, p.C + i0 * p.ldc + j0, p.ldc, t);
      }
    }
  }
}

void run_blocked(const GemmKernels& kr, const Problem& p) {
  const int64_t MR = kr.mr, NR = kr.nr, KC = kr.kc, MC = kr.mc, NC = kr.nc;
  float* bpack = t_pack_b.get(KC * round_up(min64(p.N, NC), NR) + kSlack);
  const int64_t mtiles = (p.M + MR - 1) / MR;
  const int threads = num_threads();  // decides only how work is split, never the arithmetic
  for (int64_t jc = 0; jc < p.N; jc += NC) {
    const int64_t nc = min64(NC, p.N - jc);
    const int64_t npanels = (nc + NR - 1) / NR;
    // Short M, long N: split the B micro-panels between threads instead of the rows.
    const bool split_m = mtiles >= 4 * threads || mtiles >= npanels;
    for (int64_t pc = 0; pc < p.K; pc += KC) {
      const int64_t kc = min64(KC, p.K - pc);
      const bool load_c = p.accumulate || pc > 0, last = pc + kc == p.K;
      const float* bsrc = p.trans_b ? p.B + jc * p.ldb + pc : p.B + pc * p.ldb + jc;
      const int64_t pack_grain = 1 + (1 << 15) / (kc * NR);
      parallel_for(npanels, pack_grain, [&](int64_t p0, int64_t p1) {
        const int64_t j0 = p0 * NR;
        kr.pack_b(p.trans_b, bsrc + (p.trans_b ? j0 * p.ldb : j0), p.ldb, kc,
                  min64(p1 * NR, nc) - j0, bpack + j0 * kc);
      });
      // Rows [m0, m1) of C against B micro-panels [q0, q1) of this panel.
      auto compute = [&](int64_t m0, int64_t m1, int64_t q0, int64_t q1) {
        float* apack = t_pack_a.get(MC * KC + kSlack);
        for (int64_t ic = m0; ic < m1; ic += MC) {
          const int64_t mc = min64(MC, m1 - ic);
          const float* asrc = p.trans_a ? p.A + pc * p.lda + ic : p.A + ic * p.lda + pc;
          kr.pack_a(p.trans_a, asrc, p.lda, mc, kc, apack);
          GemmOperands op;
          op.a_rs = op.a_ks = op.b_ks = 0;
          op.a_packed = op.b_packed = true;
          for (int64_t q = q0; q < q1; ++q) {
            const int64_t j = q * NR, nr = min64(NR, nc - j);
            op.b = bpack + j * kc;
            for (int64_t ir = 0; ir < mc; ir += MR) {
              op.a = apack + ir * kc;
              const int64_t m = ic + ir, n = jc + j;
              const GemmTile t = make_tile(p, m, n, min64(MR, mc - ir), nr, load_c, last);
              kr.kernel(kc, op, p.C + m * p.ldc + n, p.ldc, t);
            }
          }
        }
      };
      if (split_m) {
        const int64_t grain = 1 + kMinChunkWork / (MR * nc * kc);
        parallel_for(mtiles, grain, [&](int64_t t0, int64_t t1) {
          compute(t0 * MR, min64(t1 * MR, p.M), 0, npanels);
        });
      } else {
        const int64_t grain = 1 + kMinChunkWork / (p.M * NR * kc);
        parallel_for(npanels, grain, [&](int64_t q0, int64_t q1) { compute(0, p.M, q0, q1); });
      }
    }
  }
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc,
           const GemmEpilogue& ep) {
  if (M <= 0 || N <= 0) return;
  const Problem p{trans_a, trans_b, M, N, K, A, lda, B, ldb, beta != 0.0f, C, ldc, &ep};
  if (K <= 0) {
    run_empty_k(p);
    return;
  }
  const GemmKernels& kr = kGemm.cpu();
  if (static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K) < kSmallWork) {
    run_small(kr, p);
  } else {
    run_blocked(kr, p);
  }
}

}  // namespace fv
