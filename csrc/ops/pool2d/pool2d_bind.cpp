// pool2d bindings (see pool2d.h): validate, allocate, release the GIL, split the N*C planes
// over threads, call the table. Inputs are NCHW, or CHW (one image, as torch); the output
// keeps the input's rank.
#include "ops/pool2d/pool2d.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <vector>

#include <pybind11/stl.h>

#include "core/array.h"
#include "core/parallel.h"

namespace fv {
namespace {

const KernelSet<Pool2dKernels> kPool = FV_KERNEL_SET(Pool2dKernels, pool2d_kernels);
constexpr int64_t kGrainElems = 1 << 14;  // below ~16k floats of work a second thread costs more

using Pair = std::vector<int64_t>;

struct Params {
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
  bool ceil_mode;
};

Pair pair_arg(const char* op, const char* arg, const Pair& v) {
  if (v.size() != 2) throw_value_error(op, ": ", arg, " must have 2 elements, got ", v.size());
  return v;
}

Params check_params(const char* op, const Pair& k_in, const Pair& s_in, const Pair& p_in,
                    const Pair& d_in, bool ceil_mode) {
  const Pair k = pair_arg(op, "kernel_size", k_in), s = pair_arg(op, "stride", s_in);
  const Pair p = pair_arg(op, "padding", p_in), d = pair_arg(op, "dilation", d_in);
  for (int i = 0; i < 2; ++i) {
    check_positive(op, "kernel_size", i, k[i]);
    check_positive(op, "stride", i, s[i]);
    check_non_negative(op, "padding", i, p[i]);
    check_positive(op, "dilation", i, d[i]);
    if (p[i] > k[i] / 2) {
      throw_value_error(op, ": padding[", i, "] must be <= kernel_size[", i, "] / 2 = ", k[i] / 2,
                        ", got ", p[i]);
    }
  }
  return Params{k[0], k[1], s[0], s[1], p[0], p[1], d[0], d[1], ceil_mode};
}

// torch's pooling_output_shape: floor (or ceil) division, and with ceil_mode the last window
// must start inside the input or its left padding.
int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  const int64_t num = in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  int64_t out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

// The plane geometry of input spatial size (H, W); ValueError when the output is empty.
Pool2dGeom geometry(const char* op, int64_t H, int64_t W, const Params& q) {
  Pool2dGeom g{H, W, 0, 0, q.kh, q.kw, q.sh, q.sw, q.ph, q.pw, q.dh, q.dw};
  g.OH = out_size(H, q.kh, q.sh, q.ph, q.dh, q.ceil_mode);
  g.OW = out_size(W, q.kw, q.sw, q.pw, q.dw, q.ceil_mode);
  if (g.OH < 1 || g.OW < 1) {
    throw_value_error(op, ": output size must be >= 1, got (", g.OH, ", ", g.OW,
                      ") from input size (", H, ", ", W, ")");
  }
  return g;
}

// (N, C, H, W) of a 3-D or 4-D shape; C, H and W must be >= 1 (N may be 0, as torch).
void split_shape(const char* op, const char* arg, const Shape& s, int64_t* planes, int64_t* H,
                 int64_t* W) {
  if (s.size() != 3 && s.size() != 4) {
    throw_value_error(op, ": ", arg, " must be 4-D (N, C, H, W) or 3-D (C, H, W), got ", s.size(),
                      "-D shape ", shape_str(s));
  }
  for (size_t i = s.size() - 3; i < s.size(); ++i) {
    if (s[i] < 1) throw_value_error(op, ": ", arg, " must have C, H, W >= 1, got shape ", shape_str(s));
  }
  if (s.size() == 4 && s[0] < 0) throw_value_error(op, ": ", arg, " must have N >= 0, got shape ", shape_str(s));
  *planes = checked_mul(op, "N * C", s.size() == 4 ? s[0] : 1, s[s.size() - 3]);
  *H = s[s.size() - 2];
  *W = s[s.size() - 1];
}

Shape out_shape(const Shape& in, const Pool2dGeom& g) {
  Shape o = in;
  o[o.size() - 2] = g.OH;
  o[o.size() - 1] = g.OW;
  return o;
}

// The vector paths keep plane offsets in int32 lanes; bigger planes take the scalar table.
const Pool2dKernels& kernels_for(const Pool2dGeom& g) {
  int64_t span;
  if (__builtin_mul_overflow(g.H + g.dh + 1, g.W, &span) || span > INT32_MAX) return *kPool.scalar;
  return kPool.cpu();
}

int64_t grain(const Pool2dGeom& g) {
  const int64_t per_plane = g.H * g.W + g.OH * g.OW;
  return per_plane >= kGrainElems ? 1 : kGrainElems / per_plane;
}

py::object max_pool2d(const py::handle& x_obj, const Pair& k, const Pair& s, const Pair& p,
                      const Pair& d, bool ceil_mode, bool return_indices) {
  const char* op = "max_pool2d";
  auto x = f32_input(op, "x", x_obj, -1);
  int64_t planes, H, W;
  split_shape(op, "x", shape_of(x), &planes, &H, &W);
  const Pool2dGeom g = geometry(op, H, W, check_params(op, k, s, p, d, ceil_mode));
  const Shape os = out_shape(shape_of(x), g);
  auto y = f32_empty(op, os);
  py::array_t<int64_t> idx;
  if (return_indices) idx = i64_empty(op, os);
  const float* xp = x.data();
  float* yp = y.mutable_data();
  int64_t* ip = return_indices ? idx.mutable_data() : nullptr;
  const Pool2dKernels& kern = kernels_for(g);
  {
    py::gil_scoped_release nogil;
    const int64_t in_n = H * W, out_n = g.OH * g.OW;
    parallel_for(planes, grain(g), [&](int64_t b, int64_t e) {
      kern.max_forward(xp + b * in_n, yp + b * out_n, ip == nullptr ? nullptr : ip + b * out_n, e - b, g);
    });
  }
  if (return_indices) return py::make_tuple(y, idx);
  return std::move(y);
}

py::array_t<float> max_pool2d_backward(const py::handle& gy_obj, const py::handle& idx_obj,
                                       const Shape& input_shape) {
  const char* op = "max_pool2d_backward";
  auto gy = f32_input(op, "grad_y", gy_obj, -1);
  auto idx = i64_input(op, "indices", idx_obj, -1);
  int64_t planes, H, W;
  split_shape(op, "input_shape", input_shape, &planes, &H, &W);
  const Shape gs = shape_of(gy);
  if (shape_of(idx) != gs) {
    throw_value_error(op, ": indices shape ", shape_str(shape_of(idx)), " must equal grad_y shape ",
                      shape_str(gs));
  }
  if (gs.size() != input_shape.size() ||
      !std::equal(gs.begin(), gs.end() - 2, input_shape.begin()) || gs.back() < 1 || gs[gs.size() - 2] < 1) {
    throw_value_error(op, ": grad_y shape ", shape_str(gs), " must be input_shape ",
                      shape_str(input_shape), " with non-empty (H_out, W_out) in place of (H, W)");
  }
  Pool2dGeom g{H, W, gs[gs.size() - 2], gs.back(), 1, 1, 1, 1, 0, 0, 1, 1};
  const Pool2dKernels& kern = kernels_for(g);
  const int64_t in_n = checked_mul(op, "H * W", H, W), out_n = g.OH * g.OW;
  const int64_t* ip = idx.data();
  // Every index must lie in its plane before anything is allocated or written. The same pass
  // tells whether each lies in its own 2x2 block (then the kernel may store instead of add).
  std::atomic<bool> out_of_range{false}, foreign{false};
  {
    py::gil_scoped_release nogil;
    parallel_for(planes, grain(g), [&](int64_t b, int64_t e) {
      const int r = kern.check_indices(ip + b * out_n, e - b, g);
      if (r == kOutOfRange) out_of_range.store(true);
      if (r != kOwnBlocks) foreign.store(true);
    });
  }
  if (out_of_range.load()) {
    int64_t bad = 0;
    while (ip[bad] >= 0 && ip[bad] < in_n) ++bad;
    throw_value_error(op, ": indices[", bad, "] must be in [0, H*W = ", in_n, "), got ", ip[bad]);
  }
  const bool own_blocks = !foreign.load();
  auto gx = f32_empty(op, input_shape);
  const float* gyp = gy.data();
  float* gxp = gx.mutable_data();
  py::gil_scoped_release nogil;
  parallel_for(planes, grain(g), [&](int64_t b, int64_t e) {
    kern.max_backward(gyp + b * out_n, ip + b * out_n, gxp + b * in_n, e - b, g, own_blocks);
  });
  return gx;
}

// 2x2 stride-2 max pooling (floor mode) with uint8 window codes (pool2d.h, max_forward_2x2).
py::tuple max_pool2d_2x2(const py::handle& x_obj) {
  const char* op = "max_pool2d_2x2";
  auto x = f32_input(op, "x", x_obj, -1);
  int64_t planes, H, W;
  split_shape(op, "x", shape_of(x), &planes, &H, &W);
  const Pool2dGeom g = pool2x2_geometry(op, H, W);
  const Shape os = out_shape(shape_of(x), g);
  auto y = f32_empty(op, os);
  auto code = u8_empty(op, os);  // the caching allocator, as the other outputs
  const float* xp = x.data();
  float* yp = y.mutable_data();
  uint8_t* cp = code.mutable_data();
  {
    py::gil_scoped_release nogil;
    max_forward_2x2_planes(xp, yp, cp, planes, g);
  }
  return py::make_tuple(y, code);
}

py::array_t<float> max_pool2d_2x2_backward(const py::handle& gy_obj, const py::handle& code_obj,
                                           const Shape& input_shape, const py::handle& relu_obj) {
  const char* op = "max_pool2d_2x2_backward";
  auto gy = f32_input(op, "grad_y", gy_obj, -1);
  auto code = u8_input(op, "codes", code_obj, -1);
  int64_t planes, H, W;
  split_shape(op, "input_shape", input_shape, &planes, &H, &W);
  const Pool2dGeom g = pool2x2_geometry(op, H, W);
  const Shape want = out_shape(input_shape, g), gs = shape_of(gy);
  if (gs != want) {
    throw_value_error(op, ": grad_y shape ", shape_str(gs), " must equal the pooled shape ",
                      shape_str(want), " of input_shape ", shape_str(input_shape));
  }
  if (shape_of(code) != gs) {
    throw_value_error(op, ": codes shape ", shape_str(shape_of(code)),
                      " must equal grad_y shape ", shape_str(gs));
  }
  py::array_t<float> relu_y;
  if (!relu_obj.is_none()) {
    relu_y = f32_input(op, "relu_y", relu_obj, -1);
    if (shape_of(relu_y) != gs) {
      throw_value_error(op, ": relu_y shape ", shape_str(shape_of(relu_y)),
                        " must equal grad_y shape ", shape_str(gs));
    }
  }
  const uint8_t* cp = code.data();
  check_pool_codes(op, cp, static_cast<int64_t>(code.size()));
  auto gx = f32_empty(op, input_shape);
  const float* gyp = gy.data();
  const float* rp = relu_obj.is_none() ? nullptr : relu_y.data();
  float* gxp = gx.mutable_data();
  {
    py::gil_scoped_release nogil;
    max_backward_2x2_planes(gyp, cp, rp, gxp, planes, g);
  }
  return gx;
}

py::array_t<float> avg_pool2d(const py::handle& x_obj, const Pair& k, const Pair& s, const Pair& p,
                              bool ceil_mode, bool count_include_pad) {
  const char* op = "avg_pool2d";
  auto x = f32_input(op, "x", x_obj, -1);
  int64_t planes, H, W;
  split_shape(op, "x", shape_of(x), &planes, &H, &W);
  const Pool2dGeom g = geometry(op, H, W, check_params(op, k, s, p, Pair{1, 1}, ceil_mode));
  auto y = f32_empty(op, out_shape(shape_of(x), g));
  const float* xp = x.data();
  float* yp = y.mutable_data();
  const Pool2dKernels& kern = kernels_for(g);
  py::gil_scoped_release nogil;
  const int64_t in_n = H * W, out_n = g.OH * g.OW;
  parallel_for(planes, grain(g), [&](int64_t b, int64_t e) {
    kern.avg_forward(xp + b * in_n, yp + b * out_n, e - b, g, count_include_pad);
  });
  return y;
}

py::array_t<float> avg_pool2d_backward(const py::handle& gy_obj, const Shape& input_shape,
                                       const Pair& k, const Pair& s, const Pair& p, bool ceil_mode,
                                       bool count_include_pad) {
  const char* op = "avg_pool2d_backward";
  auto gy = f32_input(op, "grad_y", gy_obj, -1);
  int64_t planes, H, W;
  split_shape(op, "input_shape", input_shape, &planes, &H, &W);
  const Pool2dGeom g = geometry(op, H, W, check_params(op, k, s, p, Pair{1, 1}, ceil_mode));
  const Shape want = out_shape(input_shape, g);
  if (shape_of(gy) != want) {
    throw_value_error(op, ": grad_y shape ", shape_str(shape_of(gy)), " must equal the output shape ",
                      shape_str(want));
  }
  auto gx = f32_empty(op, input_shape);
  const float* gyp = gy.data();
  float* gxp = gx.mutable_data();
  const Pool2dKernels& kern = kernels_for(g);
  py::gil_scoped_release nogil;
  const int64_t in_n = H * W, out_n = g.OH * g.OW;
  parallel_for(planes, grain(g), [&](int64_t b, int64_t e) {
    kern.avg_backward(gyp + b * out_n, gxp + b * in_n, e - b, g, count_include_pad);
  });
  return gx;
}

}  // namespace

Pool2dGeom pool2x2_geometry(const char* op, int64_t H, int64_t W) {
  return geometry(op, H, W, Params{2, 2, 2, 2, 0, 0, 1, 1, false});
}

void check_pool_codes(const char* op, const uint8_t* code, int64_t n) {
  // An OR over the codes (no early exit), kept in a byte: with an unsigned accumulator GCC
  // widened every code to 32 bits first (perf: ~3% of conv1's fused backward).
  uint8_t any = 0;
  for (int64_t i = 0; i < n; ++i) any = static_cast<uint8_t>(any | code[i]);
  if (any > 3) {
    int64_t bad = 0;
    while (code[bad] <= 3) ++bad;
    throw_value_error(op, ": codes[", bad, "] must be in [0, 4), got ", int{code[bad]});
  }
}

void max_forward_2x2_planes(const float* x, float* y, uint8_t* code, int64_t planes,
                            const Pool2dGeom& g) {
  const Pool2dKernels& kern = kernels_for(g);
  const int64_t in_n = g.H * g.W, out_n = g.OH * g.OW;
  parallel_for(planes, grain(g), [&](int64_t b, int64_t e) {
    kern.max_forward_2x2(x + b * in_n, y + b * out_n, code + b * out_n, e - b, g);
  });
}

void max_backward_2x2_planes(const float* gy, const uint8_t* code, const float* relu_y, float* gx,
                             int64_t planes, const Pool2dGeom& g) {
  const Pool2dKernels& kern = kernels_for(g);
  const int64_t in_n = g.H * g.W, out_n = g.OH * g.OW;
  parallel_for(planes, grain(g), [&](int64_t b, int64_t e) {
    kern.max_backward_2x2(gy + b * out_n, code + b * out_n,
                          relu_y == nullptr ? nullptr : relu_y + b * out_n, gx + b * in_n, e - b, g);
  });
}

void bind_pool2d(py::module_& m) {
  m.def("max_pool2d", &max_pool2d, py::arg("x"), py::arg("kernel_size"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("ceil_mode"), py::arg("return_indices"));
  m.def("max_pool2d_backward", &max_pool2d_backward, py::arg("grad_y"), py::arg("indices"),
        py::arg("input_shape"));
  m.def("max_pool2d_2x2", &max_pool2d_2x2, py::arg("x"));
  m.def("max_pool2d_2x2_backward", &max_pool2d_2x2_backward, py::arg("grad_y"), py::arg("codes"),
        py::arg("input_shape"), py::arg("relu_y") = py::none());
  m.def("avg_pool2d", &avg_pool2d, py::arg("x"), py::arg("kernel_size"), py::arg("stride"),
        py::arg("padding"), py::arg("ceil_mode"), py::arg("count_include_pad"));
  m.def("avg_pool2d_backward", &avg_pool2d_backward, py::arg("grad_y"), py::arg("input_shape"),
        py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"),
        py::arg("count_include_pad"));
}

}  // namespace fv
