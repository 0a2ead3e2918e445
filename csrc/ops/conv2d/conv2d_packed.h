// Shared pieces of the conv2d packed-GEMM drivers (conv2d_packed.cpp: forward and backward
// data; conv2d_packed_wgrad.cpp: weight gradient): index maps, runs, scratch buffers, work
// distribution. Non-ISA; included by those two driver files only.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <new>
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
// each live buffer needs its own slot: workers use 0..3, the calling thread's call-wide
// buffers 4..5.
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
    thread_local Buf bufs[6];
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

// Hands the items [0, n) out one at a time to the pool's threads: on this shared machine a
// thread slowed by other load just takes fewer. What an item computes never depends on the
// thread that runs it (nor on the order), so the bits do not either.
class Puller {
 public:
  explicit Puller(int64_t n) : n_(n) {}
  int64_t operator()() const {  // the next item, or -1
    const int64_t i = next_.fetch_add(1, std::memory_order_relaxed);
    return i < n_ ? i : -1;
  }

 private:
  int64_t n_;
  mutable std::atomic<int64_t> next_{0};
};

// worker(pull) runs once on each thread (its scratch buffers made once), pulling items.
inline void run_pulled(int64_t n, const std::function<void(const Puller&)>& worker) {
  const Puller pull(n);
  const int64_t T = n < num_threads() ? n : num_threads();
  parallel_for(T, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) worker(pull);
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
