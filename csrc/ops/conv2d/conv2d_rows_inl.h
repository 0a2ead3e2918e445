// Row geometry shared by the im2col/col2im loops of every conv2d variant file. Included by
// ISA files too: everything here has internal linkage (anonymous namespace), so each file
// gets its own copy built with its own flags (see csrc/README.md, rule 3).
#pragma once

#include <cstdint>

namespace fv {
namespace {

// Output columns [lo, hi) whose input column ow*s + off lies inside [0, W).
inline void valid_range(int64_t off, int64_t s, int64_t W, int64_t OW, int64_t* lo, int64_t* hi) {
  int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
  int64_t h = W - 1 - off >= 0 ? (W - 1 - off) / s + 1 : 0;
  if (h > OW) h = OW;
  if (l > h) l = h;
  *lo = l;
  *hi = h;
}

}  // namespace
}  // namespace fv
