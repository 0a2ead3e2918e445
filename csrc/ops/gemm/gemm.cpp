// sgemm driver (non-ISA): BLIS-style blocking, packing, threads; the ISA files provide the
// packing routines and the register-tile micro-kernel (gemm_kernels.h).
//
// Blocked path, two ways to share the work between threads (run_blocked picks one):
//   row split (run_split_m; large problems): for each column block of C (jc, at most NC
//     wide, blocks of equal width) and KC-deep block of K (pc): pack the B panel
//     op(B)[pc:pc+kc, jc:jc+nc] once, shared by all threads; then threads take pieces of ~64
//     rows of C, each packing its rows of A into a thread-local buffer;
//   column split (run_split_n; short M: conv with few output channels and many pixels, small
//     Linear layers): threads take pieces of up to 8 NR-wide column panels and run every K
//     block for them, packing their own B and the (small) A: one parallel region in all.
//   Inside a piece: for each B micro-panel, for each A micro-panel, one micro-kernel call.
//   Edge tiles go through the same kernel (zero-padded panels, masked C access, fewer
//   accumulator rows/columns). The epilogue (bias, relu) is fused into the last K block's
//   store.
// Pieces are handed out by run_stealing: each thread owns a contiguous share and a thread that
// finishes early takes pieces from the back of the others' (the machine is shared, so one
// thread may be descheduled for a while).
// Small path (M*N*K below ~64^3): one thread, A read in place and B too unless transposed, so
// tiny Linear calls pay no packing or thread wake-up.
//
// Every path gives each C element the same sequential fused chain over k starting from C or 0
// (see gemm_kernels.h), so results are bitwise identical whatever the path, blocking, tile
// position or thread count (at one ISA).
#include "ops/gemm/gemm.h"

#include <atomic>
#include <cstdlib>
#include <functional>
#include <new>
#include <vector>

#include "core/parallel.h"
#include "ops/gemm/gemm_kernels.h"

namespace fv {
namespace {

const KernelSet<GemmKernels> kGemm = FV_KERNEL_SET(GemmKernels, gemm_kernels);

constexpr double kSmallWork = 64.0 * 64.0 * 64.0;  // M*N*K below this: the small path
constexpr int64_t kSlack = 64;                     // floats past a packed block (see pack_a)
// FMAs per thread worth waking another for (1 core does ~50 GFMA/s). Pool workers poll for
// ~200 us after a job (core/parallel.cpp), so back-to-back calls find them awake: measured,
// the 64x576->64 Linear (2.4M FMAs) went from 49 to 33 us forward and 97 to 58 us backward
// on two threads instead of one; a wake-up from sleep costs ~20-50 us.
constexpr int64_t kMinChunkWork = int64_t(1) << 19;
constexpr double kSplitRowsWork = 32.0 * (1 << 20);  // M*N*KC for the row split (see run_blocked)

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

// Runs fn(begin, end) over pieces of at most `chunk` covering [0, n) on up to `max_threads` threads. Each thread
// owns a contiguous static share and takes `chunk`-sized pieces from its front; a thread that
// runs out takes pieces from the back of the others' shares, so one thread slowed by other
// load on a shared machine does not hold the whole call up. Which thread runs a piece never
// changes its arithmetic. Nested inside a parallel region, the calling thread runs it all.
void run_stealing(int64_t n, int64_t chunk, int max_threads,
                  const std::function<void(int64_t, int64_t)>& fn) {
  const int T = max_threads < 1 ? 1 : max_threads;
  // Serially too, pieces are at most `chunk` long (callers size buffers by it); shares are
  // packed as 32-bit halves, so a (theoretical) n >= 2^32 also runs here.
  if (T == 1 || n <= chunk || n > static_cast<int64_t>(0xffffffffu)) {
    for (int64_t lo = 0; lo < n; lo += chunk) fn(lo, min64(lo + chunk, n));
    return;
  }
  // (front, back) of each share packed in one word, updated with compare-and-swap.
  std::vector<std::atomic<uint64_t>> share(T);
  for (int t = 0; t < T; ++t) {
    const uint64_t f = static_cast<uint64_t>(n * t / T), b = static_cast<uint64_t>(n * (t + 1) / T);
    share[t].store(b << 32 | f, std::memory_order_relaxed);
  }
  auto take = [&](int t, bool from_front, int64_t* lo, int64_t* hi) {
    uint64_t v = share[t].load(std::memory_order_acquire);
    for (;;) {
      const int64_t f = static_cast<int64_t>(v & 0xffffffffu), b = static_cast<int64_t>(v >> 32);
      if (f >= b) return false;
      const int64_t k = min64(chunk, b - f);
      const uint64_t next = from_front ? (static_cast<uint64_t>(b) << 32 | static_cast<uint64_t>(f + k))
                                       : (static_cast<uint64_t>(b - k) << 32 | static_cast<uint64_t>(f));
      if (share[t].compare_exchange_weak(v, next, std::memory_order_acq_rel)) {
        *lo = from_front ? f : b - k;
        *hi = from_front ? f + k : b;
        return true;
      }
    }
  };
  parallel_for(T, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      int64_t lo, hi;
      while (take(static_cast<int>(t), true, &lo, &hi)) fn(lo, hi);
      for (int d = 1; d < T; ++d) {
        while (take(static_cast<int>((t + d) % T), false, &lo, &hi)) fn(lo, hi);
      }
    }
  });
}

// Rows [m0, m1) of C against packed B micro-panels [q0, q1) (bpack holds micro-panel q at
// q * NR * kc; its columns start at C column jc + q * NR and the panel is nc wide).
void compute_block(const GemmKernels& kr, const Problem& p, int64_t pc, int64_t kc, int64_t jc,
                   int64_t nc, const float* bpack, int64_t m0, int64_t m1, int64_t q0, int64_t q1) {
  const int64_t MR = kr.mr, NR = kr.nr, MC = kr.mc;
  const bool load_c = p.accumulate || pc > 0, last = pc + kc == p.K;
  float* apack = t_pack_a.get(MC * kr.kc + kSlack);
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
}

// Threads split the rows and share each packed B panel: two parallel regions per K block
// (pack, compute), worth it when M is large.
void run_split_m(const GemmKernels& kr, const Problem& p, int threads) {
  const int64_t MR = kr.mr, NR = kr.nr, KC = kr.kc;
  // Column blocks of equal width (a multiple of NR), at most NC wide.
  const int64_t nblocks = (p.N + kr.nc - 1) / kr.nc;
  const int64_t NC = round_up((p.N + nblocks - 1) / nblocks, NR);
  float* bpack = t_pack_b.get(KC * NC + kSlack);
  const int64_t mtiles = (p.M + MR - 1) / MR;
  // Pieces of ~64 rows: small enough to rebalance, large enough to reuse each B micro-panel
  // over several A micro-panels.
  const int64_t chunk = min64((64 + MR - 1) / MR, (mtiles + threads - 1) / threads);
  for (int64_t jc = 0; jc < p.N; jc += NC) {
    const int64_t nc = min64(NC, p.N - jc);
    const int64_t npanels = (nc + NR - 1) / NR;
    for (int64_t pc = 0; pc < p.K; pc += KC) {
      const int64_t kc = min64(KC, p.K - pc);
      const float* bsrc = p.trans_b ? p.B + jc * p.ldb + pc : p.B + pc * p.ldb + jc;
      run_stealing(npanels, 4, threads, [&](int64_t p0, int64_t p1) {
        const int64_t j0 = p0 * NR;
        kr.pack_b(p.trans_b, bsrc + (p.trans_b ? j0 * p.ldb : j0), p.ldb, kc,
                  min64(p1 * NR, nc) - j0, bpack + j0 * kc);
      });
      run_stealing(mtiles, chunk, threads, [&](int64_t t0, int64_t t1) {
        compute_block(kr, p, pc, kc, jc, nc, bpack, t0 * MR, min64(t1 * MR, p.M), 0, npanels);
      });
    }
  }
}

// Threads split the columns: each piece of up to 8 B micro-panels packs its own B and (small)
// A for every K block, so the whole call is one parallel region. For short M (conv: few
// output channels, many pixels; small Linear layers), where region start-up would dominate.
void run_split_n(const GemmKernels& kr, const Problem& p, int threads) {
  const int64_t NR = kr.nr, KC = kr.kc;
  const int64_t npanels = (p.N + NR - 1) / NR;
  const int64_t chunk = min64(8, (npanels + threads - 1) / threads);
  run_stealing(npanels, chunk, threads, [&](int64_t q0, int64_t q1) {
    const int64_t jc = q0 * NR, nc = min64(q1 * NR, p.N) - jc;
    float* bpack = t_pack_b.get(KC * chunk * NR + kSlack);
    for (int64_t pc = 0; pc < p.K; pc += KC) {
      const int64_t kc = min64(KC, p.K - pc);
      const float* bsrc = p.trans_b ? p.B + jc * p.ldb + pc : p.B + pc * p.ldb + jc;
      kr.pack_b(p.trans_b, bsrc, p.ldb, kc, nc, bpack);
      compute_block(kr, p, pc, kc, jc, nc, bpack, 0, p.M, 0, q1 - q0);
    }
  });
}

void run_blocked(const GemmKernels& kr, const Problem& p) {
  // The thread count decides only how work is split, never the arithmetic.
  const double work = static_cast<double>(p.M) * static_cast<double>(p.N) * static_cast<double>(p.K);
  const double most = work / static_cast<double>(kMinChunkWork);
  const int threads = most < num_threads() ? (most < 1 ? 1 : static_cast<int>(most)) : num_threads();
  // Split the rows (one shared B panel, but two parallel regions per K block, ~20-50 us of
  // wake-ups each) when each K block holds plenty of work; else split the columns (one
  // region; each piece packs the A it needs) unless there are too few column panels.
  auto balance = [&](int64_t units) {
    const int64_t per = (units + threads - 1) / threads;
    return static_cast<double>(units) / static_cast<double>(per * threads);
  };
  const int64_t mtiles = (p.M + kr.mr - 1) / kr.mr, npanels = (p.N + kr.nr - 1) / kr.nr;
  const double block_work = static_cast<double>(p.M) * static_cast<double>(p.N) *
                            static_cast<double>(p.K < kr.kc ? p.K : kr.kc);
  const bool rows_big = mtiles >= 8 * threads && block_work >= kSplitRowsWork;
  const bool cols_ok = npanels >= threads && balance(npanels) >= 0.8;
  const bool split_m = rows_big || (!cols_ok && mtiles > npanels);
  if (split_m) {
    run_split_m(kr, p, threads);
  } else {
    run_split_n(kr, p, threads);
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

GemmPacking sgemm_packing() {
  const GemmKernels& kr = kGemm.cpu();
  return GemmPacking{kr.mr, kr.nr, kr.kc};
}

int64_t sgemm_packed_a_size(int64_t M, int64_t K) {
  const GemmKernels& kr = kGemm.cpu();
  return round_up(M, kr.mr) * K + kSlack;
}

void sgemm_pack_a(bool trans_a, int64_t M, int64_t K, const float* A, int64_t lda, float* apack) {
  const GemmKernels& kr = kGemm.cpu();
  const int64_t Mp = round_up(M, kr.mr);
  for (int64_t pc = 0; pc < K; pc += kr.kc) {
    const int64_t kc = min64(kr.kc, K - pc);
    // pack_a may write up to kSlack floats past a block: the next block overwrites them.
    kr.pack_a(trans_a, trans_a ? A + pc * lda : A + pc, lda, M, kc, apack + Mp * pc);
  }
}

void sgemm_pack_b(bool trans_b, int64_t kc_b, int64_t nc, const float* B, int64_t ldb,
                  float* bpack) {
  kGemm.cpu().pack_b(trans_b, B, ldb, kc_b, nc, bpack);
}

void sgemm_pack_a_panels(int64_t M, int64_t kb, const float* X, int64_t pw, int64_t ps,
                         float* a_block) {
  const GemmKernels& kr = kGemm.cpu();
  // A piece per (micro-panel, panel), in ascending memory order: the floats pack_a may write
  // past a piece land where a later piece writes (or in the slack past the block).
  for (int64_t i0 = 0; i0 < M; i0 += kr.mr) {
    for (int64_t k0 = 0; k0 < kb; k0 += pw) {
      kr.pack_a(false, X + k0 / pw * ps + i0 * pw, pw, min64(kr.mr, M - i0), min64(pw, kb - k0),
                a_block + i0 * kb + k0 * kr.mr);
    }
  }
}

void sgemm_pack_b_panels(int64_t kb, int64_t nc, const float* X, int64_t pw, int64_t ps,
                         float* b_block) {
  const GemmKernels& kr = kGemm.cpu();
  for (int64_t j0 = 0; j0 < nc; j0 += kr.nr) {
    for (int64_t k0 = 0; k0 < kb; k0 += pw) {
      kr.pack_b(true, X + k0 / pw * ps + j0 * pw, pw, min64(pw, kb - k0), min64(kr.nr, nc - j0),
                b_block + j0 * kb + k0 * kr.nr);
    }
  }
}

void sgemm_packed_block(int64_t M, int64_t nc, int64_t kc_b, const float* a_block,
                        const float* b_block, bool load_c, bool last, float* C, int64_t ldc,
                        const GemmEpilogue& ep) {
  const GemmKernels& kr = kGemm.cpu();
  const int64_t MR = kr.mr, NR = kr.nr;
  const Problem p{false, false, M, nc, kc_b, nullptr, 0, nullptr, 0, load_c, C, ldc, &ep};
  GemmOperands op;
  op.a_rs = op.a_ks = op.b_ks = 0;
  op.a_packed = op.b_packed = true;
  for (int64_t j = 0; j < nc; j += NR) {
    op.b = b_block + j * kc_b;
    for (int64_t ir = 0; ir < M; ir += MR) {
      op.a = a_block + ir * kc_b;
      const GemmTile t = make_tile(p, ir, j, min64(MR, M - ir), min64(NR, nc - j), load_c, last);
      kr.kernel(kc_b, op, C + ir * ldc + j, ldc, t);
    }
  }
}

}  // namespace fv
