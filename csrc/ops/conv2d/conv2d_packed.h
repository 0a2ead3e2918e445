// Shared pieces of the conv2d drivers (conv2d_packed.cpp: forward and backward data;
// conv2d_packed_wgrad.cpp: weight gradient; winograd.cpp and conv2d.cpp use the scratch
// buffers, the work distribution and the chunk sums): index maps, runs, scratch buffers, work
// distribution, chunk sums. Non-ISA; included by driver files only.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <new>
#include <stdexcept>
#include <vector>

#include "core/parallel.h"
#include "ops/conv2d/conv2d.h"

namespace fv {
namespace conv_packed {

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t v, int64_t m) { return ceil_div(v, m) * m; }

// Scratch floats, 64-byte aligned (the micro-kernel loads packed B panels with aligned
// loads), uninitialised: slot `slot` of the calling thread's grow-only buffers, kept across
// calls (a fresh allocation of a few hundred KB per call page-faults every time). The pool's
// threads persist, so after the first call no allocation happens at all. Within one thread
// each live buffer needs its own slot (0..6) for the pass it lives in: workers use 0..3 and
// the calling thread 4..6 for call-wide buffers, except where a pass has no call-wide buffer
// (the fused Winograd backward's workers use 4..6 too).
class Scratch {
 public:
  Scratch(int slot, int64_t n) : p_(get_slot(slot, n)) {}
  float* get() const { return p_; }

 private:
  struct Buf {
    float* p = nullptr;
    int64_t cap = 0;
    ~Buf() { std::free(p); }
  };
  static float* get_slot(int slot, int64_t n) {
    thread_local Buf bufs[7];
    Buf& b = bufs[slot];
    if (n > b.cap) {
      std::free(b.p);
      b.p = nullptr;
      b.cap = 0;
      void* q = nullptr;
      if (posix_memalign(&q, 64, static_cast<size_t>(n > 0 ? n : 1) * sizeof(float)) != 0) {
        throw std::bad_alloc();
      }
      b.p = static_cast<float*>(q);
      b.cap = n;
    }
    return b.p;
  }
  float* p_;
};

// Hands the items [0, n) out one at a time to the pool's threads. Thread t first takes items
// from the front of its own share [n t / T, n (t + 1) / T), then from the back of the other
// shares: a thread slowed by other load on this shared machine just takes fewer, and
// otherwise each thread keeps the same part of the batch from layer to layer, as the static
// splits of parallel_for do (the items are in batch order). The two vCPUs here often sit on
// different L3 caches (a cache line there and back ~300 ns, against ~60 ns on a shared L3);
// with items handed out in turn, about half of what one layer's threads wrote was read by the
// other thread in the next layer. Training step of the reference CNN, interleaved in-process
// A/B (2 threads, AVX-512): 6.8 -> 6.0 ms in such phases, unchanged (~4.5 ms) otherwise.
// What an item computes never depends on the thread that runs it (nor on the order), so the
// bits do not either.
class PullShares {
 public:
  PullShares(int64_t n, int T) : T_(T), share_(T) {
    for (int t = 0; t < T; ++t) {
      const uint64_t f = static_cast<uint64_t>(n * t / T), b = static_cast<uint64_t>(n * (t + 1) / T);
      share_[t].store(b << 32 | f, std::memory_order_relaxed);
    }
  }
  // Thread t's next item, or -1 when none is left.
  int64_t next(int t) {
    int64_t i;
    if (take(t, true, &i)) return i;
    for (int d = 1; d < T_; ++d) {
      if (take((t + d) % T_, false, &i)) return i;
    }
    return -1;
  }

 private:
  // One item from the front or the back of share s; (front, back) are packed in one word, so
  // items are counted in 32 bits (run_pulled checks n).
  bool take(int s, bool front, int64_t* i) {
    uint64_t v = share_[s].load(std::memory_order_acquire);
    for (;;) {
      const uint64_t f = v & 0xffffffffu, b = v >> 32;
      if (f >= b) return false;
      const uint64_t nv = front ? (b << 32 | (f + 1)) : ((b - 1) << 32 | f);
      if (share_[s].compare_exchange_weak(v, nv, std::memory_order_acq_rel)) {
        *i = static_cast<int64_t>(front ? f : b - 1);
        return true;
      }
    }
  }

  int T_;
  std::vector<std::atomic<uint64_t>> share_;
};

// What a worker calls for its next item (-1: none left).
class Puller {
 public:
  Puller(PullShares* s, int t) : s_(s), t_(t) {}
  int64_t operator()() const { return s_->next(t_); }

 private:
  PullShares* s_;
  int t_;
};

// worker(pull) runs once on each thread (its scratch buffers made once), pulling items.
inline void run_pulled(int64_t n, const std::function<void(const Puller&)>& worker) {
  if (n <= 0) return;
  if (n > static_cast<int64_t>(0xffffffffu)) throw std::length_error("run_pulled: too many items");
  const int T = static_cast<int>(n < num_threads() ? n : num_threads());
  PullShares shares(n, T);
  parallel_for(T, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) worker(Puller(&shares, static_cast<int>(t)));
  });
}

// out[i] = chunk 0's [i] + chunk 1's [i] + ... in chunk order (chunks `size` floats apart),
// element by element, so any split of the elements over threads gives the same bits: the
// weight gradients' fixed chunks summed. out may be chunk 0 itself. A run of kRun elements
// is summed chunk by chunk into a local array, so the inner loop over elements vectorises
// and the chunks' adds do not form one long dependency chain per element (element by
// element, the reference conv2's 8 x 74k floats took ~5% of its backward pass).
inline void sum_chunks(const float* chunks, int64_t n_chunks, int64_t size, float* out) {
  constexpr int64_t kRun = 64;
  parallel_for(size, 4096, [&](int64_t b, int64_t e) {
    for (int64_t i0 = b; i0 < e; i0 += kRun) {
      const int64_t len = e - i0 < kRun ? e - i0 : kRun;
      float s[kRun];
      for (int64_t j = 0; j < len; ++j) s[j] = chunks[i0 + j];
      for (int64_t c = 1; c < n_chunks; ++c) {
        const float* src = chunks + c * size + i0;
        for (int64_t j = 0; j < len; ++j) s[j] += src[j];
      }
      for (int64_t j = 0; j < len; ++j) out[i0 + j] = s[j];
    }
  });
}

inline bool has_padding(const ConvGeom& g) { return g.pt > 0 || g.pb > 0 || g.pl > 0 || g.pr > 0; }

struct TapMaps {
  std::vector<int32_t> off, ih, iw;
};

inline TapMaps tap_maps(const ConvGeom& g) {
  TapMaps t;
  for (int64_t c = 0; c < g.Cg(); ++c) {
    for (int64_t i = 0; i < g.kh; ++i) {
      for (int64_t j = 0; j < g.kw; ++j) {
        t.off.push_back(static_cast<int32_t>(c * g.H * g.W + i * g.dh * g.W + j * g.dw));
        t.ih.push_back(static_cast<int32_t>(i * g.dh));
        t.iw.push_back(static_cast<int32_t>(j * g.dw));
      }
    }
  }
  return t;
}

// x maps of columns [c0, c0 + n).
inline void x_col_maps(const ConvGeom& g, int64_t c0, int64_t n, int32_t* base, int32_t* ih,
                int32_t* iw) {
  const int64_t P = g.P();
  for (int64_t q = 0; q < n; ++q) {
    const int64_t col = c0 + q, img = col / P, p = col % P;
    const int64_t h0 = (p / g.OW) * g.sh - g.pt, w0 = (p % g.OW) * g.sw - g.pl;
    base[q] = static_cast<int32_t>(img * g.C * g.H * g.W + h0 * g.W + w0);
    ih[q] = static_cast<int32_t>(h0);
    iw[q] = static_cast<int32_t>(w0);
  }
}

// gy offsets of columns [c0, c0 + n): n*O*P + p.
inline void gy_col_maps(const ConvGeom& g, int64_t c0, int64_t n, int32_t* base) {
  const int64_t P = g.P();
  for (int64_t q = 0; q < n; ++q) {
    const int64_t col = c0 + q;
    base[q] = static_cast<int32_t>((col / P) * g.O * P + col % P);
  }
}

// Runs of columns [c0, c0 + n) that read consecutive source elements: for x (im2col, column
// stride 1, no padding) a run stays within one output row; for gy (x_maps false) within one
// image. Returns the run count; lo/hi/rel as copy_panel takes them (lane b reads base + b).
struct Runs {
  std::vector<int32_t> lo, hi, rel;
};

inline int64_t col_runs(const ConvGeom& g, bool x_maps, int64_t c0, int64_t n, Runs* r) {
  const int64_t P = g.P();
  r->lo.clear();
  r->hi.clear();
  r->rel.clear();
  for (int64_t q = 0; q < n;) {
    const int64_t col = c0 + q, img = col / P, p = col % P;
    int64_t len = P - p, base = img * g.O * P + p;
    if (x_maps) {
      const int64_t oh = p / g.OW, ow = p % g.OW;
      len = g.OW - ow;
      base = img * g.C * g.H * g.W + (oh * g.sh - g.pt) * g.W + ow - g.pl;
    }
    if (len > n - q) len = n - q;
    r->lo.push_back(static_cast<int32_t>(q));
    r->hi.push_back(static_cast<int32_t>(q + len));
    r->rel.push_back(static_cast<int32_t>(base - q));
    q += len;
  }
  return static_cast<int64_t>(r->lo.size());
}

}  // namespace conv_packed
}  // namespace fv
