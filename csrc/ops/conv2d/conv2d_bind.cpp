// conv2d bindings: validate (ValueError / OverflowError / TypeError before anything is
// allocated), allocate, release the GIL, call the driver in conv2d.cpp.
//
//   _C.conv2d(x, w, bias=None, stride=(1,1), padding=(0,0), dilation=(1,1), groups=1)
//   _C.conv2d_relu(...)   same, relu fused into the GEMM epilogue / direct kernel
//   _C.conv2d_backward(grad_y, x, w, stride, padding, dilation, groups,
//                      need_input_grad, need_weight_grad, need_bias_grad) -> (gx, gw, gb)
//   _C.conv2d_relu_max_pool2d_2x2(x, w, bias, stride, padding, dilation, groups)
//                      -> (pooled, codes): max_pool2d_2x2(conv2d_relu(...)) in one op
//   _C.conv2d_max_pool2d_2x2_backward(grad_y, codes, relu_y, x, w, stride, padding, dilation,
//                      groups, need_...) -> (gx, gw, gb): through a 2x2 max pool's codes
//   _C.set_conv_algorithm("auto" | "gemm" | "winograd" | "winograd4"), _C.get_conv_algorithm()
// padding is (ph, pw) or (top, bottom, left, right); the latter serves padding='same' with
// even kernels in the Python wrapper.
#include <pybind11/stl.h>

#include <cstdlib>
#include <string>

#include "core/array.h"
#include "ops/conv2d/conv2d.h"
#include "ops/conv2d/winograd.h"
#include "ops/pool2d/pool2d.h"

namespace fv {
namespace {

using Ints = std::vector<int64_t>;

bool parse_conv_algo(const std::string& name, ConvAlgo* a) {
  if (name == "auto") *a = ConvAlgo::auto_select;
  else if (name == "gemm") *a = ConvAlgo::gemm;
  else if (name == "winograd") *a = ConvAlgo::winograd;
  else if (name == "winograd4") *a = ConvAlgo::winograd4;
  else return false;
  return true;
}

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// Checks every argument and returns the geometry; throws before any allocation.
ConvGeom make_geom(const char* op, const py::array_t<float>& x, const py::array_t<float>& w,
                   const Ints& stride, const Ints& padding, const Ints& dilation, int64_t groups) {
  if (stride.size() != 2) throw_value_error(op, ": stride must have 2 values, got ", stride.size());
  if (dilation.size() != 2)
    throw_value_error(op, ": dilation must have 2 values, got ", dilation.size());
  if (padding.size() != 2 && padding.size() != 4)
    throw_value_error(op, ": padding must have 2 or 4 values, got ", padding.size());
  for (int i = 0; i < 2; ++i) check_positive(op, "stride", i, stride[i]);
  for (size_t i = 0; i < padding.size(); ++i) {
    check_non_negative(op, "padding", static_cast<int>(i), padding[i]);
  }
  for (int i = 0; i < 2; ++i) check_positive(op, "dilation", i, dilation[i]);
  if (groups < 1) throw_value_error(op, ": groups must be >= 1, got ", groups);
  if (groups > kMaxHyperParam)
    throw_overflow_error(op, ": groups = ", groups, " exceeds the limit ", kMaxHyperParam);
  const Shape xs = shape_of(x), ws = shape_of(w);
  for (int i = 0; i < 4; ++i) {
    if (xs[i] < 1) throw_value_error(op, ": x.shape[", i, "] must be >= 1, got ", xs[i]);
    if (ws[i] < 1) throw_value_error(op, ": w.shape[", i, "] must be >= 1, got ", ws[i]);
  }
  if (ws[0] % groups != 0) {
    throw_value_error(op, ": w.shape[0] (out channels) must be divisible by groups = ", groups,
                      ", got ", ws[0]);
  }
  const int64_t c_want = checked_mul(op, "w.shape[1] * groups", ws[1], groups);
  if (xs[1] != c_want) {
    throw_value_error(op, ": x.shape[1] (channels) must equal w.shape[1] * groups = ", ws[1],
                      " * ", groups, " = ", c_want, ", got ", xs[1]);
  }
  ConvGeom g{};
  g.N = xs[0]; g.C = xs[1]; g.H = xs[2]; g.W = xs[3];
  g.O = ws[0]; g.groups = groups; g.kh = ws[2]; g.kw = ws[3];
  g.sh = stride[0]; g.sw = stride[1];
  g.dh = dilation[0]; g.dw = dilation[1];
  if (padding.size() == 2) {
    g.pt = g.pb = padding[0];
    g.pl = g.pr = padding[1];
  } else {
    g.pt = padding[0]; g.pb = padding[1]; g.pl = padding[2]; g.pr = padding[3];
  }
  const int64_t Hp = g.H + g.pt + g.pb, Wp = g.W + g.pl + g.pr;
  const int64_t ekh = checked_mul(op, "dilated kernel height", g.dh, g.kh - 1) + 1;
  const int64_t ekw = checked_mul(op, "dilated kernel width", g.dw, g.kw - 1) + 1;
  g.OH = floor_div(Hp - ekh, g.sh) + 1;
  g.OW = floor_div(Wp - ekw, g.sw) + 1;
  if (g.OH < 1 || g.OW < 1) {
    throw_value_error(op, ": output size (H_out, W_out) = (", g.OH, ", ", g.OW,
                      ") must be positive; input (", Hp, ", ", Wp,
                      ") is smaller than the dilated kernel (", ekh, ", ", ekw, ")");
  }
  // Sizes the driver indexes with: the col buffer, the outputs, the padded plane.
  const int64_t P = checked_mul(op, "H_out * W_out", g.OH, g.OW);
  const int64_t K = checked_mul(op, "w.shape[1] * kh * kw",
                                checked_mul(op, "w.shape[1] * kh", ws[1], g.kh), g.kw);
  checked_mul(op, "im2col buffer bytes", checked_mul(op, "im2col buffer size", K, P), 4);
  checked_mul(op, "output size", checked_mul(op, "output size", g.N, g.O), P);
  checked_mul(op, "padded input size", Hp, Wp);
  checked_mul(op, "weight size", g.O, K);
  return g;
}

// A forward op's inputs, checked, and its geometry.
struct ForwardArgs {
  ForwardArgs(const char* op, const py::handle& x_obj, const py::handle& w_obj,
              const py::object& b_obj, const Ints& stride, const Ints& padding,
              const Ints& dilation, int64_t groups)
      : x(f32_input(op, "x", x_obj, 4)), w(f32_input(op, "w", w_obj, 4)),
        has_bias(!b_obj.is_none()) {
    if (has_bias) b = f32_input(op, "bias", b_obj, 1);
    g = make_geom(op, x, w, stride, padding, dilation, groups);
    if (has_bias && b.shape(0) != g.O) {
      throw_value_error(op, ": bias must have shape (", g.O, ",) = (w.shape[0],), got ",
                        shape_str(shape_of(b)));
    }
  }
  const float* bias() const { return has_bias ? b.data() : nullptr; }
  py::array_t<float> x, w;
  bool has_bias;
  py::array_t<float> b;  // empty without a bias
  ConvGeom g{};
};

py::array_t<float> forward(const char* op, bool relu, const py::handle& x_obj,
                           const py::handle& w_obj, const py::object& b_obj, const Ints& stride,
                           const Ints& padding, const Ints& dilation, int64_t groups) {
  const ForwardArgs a(op, x_obj, w_obj, b_obj, stride, padding, dilation, groups);
  const ConvGeom& g = a.g;
  auto y = f32_empty(op, {g.N, g.O, g.OH, g.OW});
  const float *xp = a.x.data(), *wp = a.w.data(), *bp = a.bias();
  float* yp = y.mutable_data();
  {
    py::gil_scoped_release nogil;
    conv2d_forward(g, xp, wp, bp, relu, yp);
  }
  return y;
}

// max_pool2d_2x2(relu(conv2d(x, w, b))) -> (pooled, codes), the fused node's forward. Where
// conv2d_relu_pool2x2_fused_ok (conv1 on AVX-512: the direct kernel; conv2: Winograd F(4x4)'s
// output transform) the conv pools in registers and its output is never stored (nor
// allocated); else where conv2d_forward_per_unit_ok each unit's conv output is pooled while in
// cache instead of written whole and read back; otherwise it is made whole, then pooled.
// Every way the bits of conv2d_relu followed by max_pool2d_2x2.
py::tuple relu_pool2x2_forward(const py::handle& x_obj, const py::handle& w_obj,
                               const py::object& b_obj, const Ints& stride, const Ints& padding,
                               const Ints& dilation, int64_t groups) {
  const char* op = "conv2d_relu_max_pool2d_2x2";
  const ForwardArgs a(op, x_obj, w_obj, b_obj, stride, padding, dilation, groups);
  const ConvGeom& g = a.g;
  const Pool2dGeom pg = pool2x2_geometry(op, g.OH, g.OW);
  const bool fused = conv2d_relu_pool2x2_fused_ok(g);
  const bool per_unit = !fused && conv2d_forward_per_unit_ok(g);
  py::array_t<float> y_whole;
  if (!fused && !per_unit) y_whole = f32_empty(op, {g.N, g.O, g.OH, g.OW});
  auto pooled = f32_empty(op, {g.N, g.O, pg.OH, pg.OW});
  auto codes = u8_empty(op, {g.N, g.O, pg.OH, pg.OW});
  const float *xp = a.x.data(), *wp = a.w.data(), *bp = a.bias();
  float* pp = pooled.mutable_data();
  uint8_t* cp = codes.mutable_data();
  float* yp = fused || per_unit ? nullptr : y_whole.mutable_data();
  {
    py::gil_scoped_release nogil;
    const int64_t out_n = pg.OH * pg.OW;
    const PlanesSink pool = [&](int64_t plane0, int64_t planes, const float* y) {
      max_forward_2x2_planes(y, pp + plane0 * out_n, cp + plane0 * out_n, planes, pg);
    };
    if (fused) {
      conv2d_relu_pool2x2_fused(g, xp, wp, bp, pp, cp);
    } else if (per_unit) {
      conv2d_forward_per_unit(g, xp, wp, bp, true, pool);
    } else {
      conv2d_forward(g, xp, wp, bp, true, yp);
      pool(0, g.N * g.O, yp);
    }
  }
  return py::make_tuple(pooled, codes);
}

// The gradients a backward op returns: each a new array, or None where not wanted.
struct Grads {
  Grads(const char* op, const ConvGeom& g, bool need_gx, bool need_gw, bool need_gb) {
    if (need_gx) gxp = take(&gx, f32_empty(op, {g.N, g.C, g.H, g.W}));
    if (need_gw) gwp = take(&gw, f32_empty(op, {g.O, g.C / g.groups, g.kh, g.kw}));
    if (need_gb) gbp = take(&gb, f32_empty(op, {g.O}));
  }
  static float* take(py::object* slot, py::array_t<float> a) {
    float* p = a.mutable_data();
    *slot = std::move(a);
    return p;
  }
  py::tuple tuple() const { return py::make_tuple(gx, gw, gb); }
  py::object gx = py::none(), gw = py::none(), gb = py::none();
  float *gxp = nullptr, *gwp = nullptr, *gbp = nullptr;
};

py::tuple backward(const py::handle& gy_obj, const py::handle& x_obj, const py::handle& w_obj,
                   const Ints& stride, const Ints& padding, const Ints& dilation, int64_t groups,
                   bool need_gx, bool need_gw, bool need_gb) {
  const char* op = "conv2d_backward";
  auto gy = f32_input(op, "grad_y", gy_obj, 4);
  auto x = f32_input(op, "x", x_obj, 4);
  auto w = f32_input(op, "w", w_obj, 4);
  const ConvGeom g = make_geom(op, x, w, stride, padding, dilation, groups);
  const Shape want{g.N, g.O, g.OH, g.OW};
  if (shape_of(gy) != want) {
    throw_value_error(op, ": grad_y shape ", shape_str(shape_of(gy)),
                      " must equal the forward output shape ", shape_str(want));
  }
  Grads d(op, g, need_gx, need_gw, need_gb);
  const float *gyp = gy.data(), *xp = x.data(), *wp = w.data();
  {
    py::gil_scoped_release nogil;
    conv2d_backward(g, gyp, xp, wp, d.gxp, d.gwp, d.gbp);
  }
  return d.tuple();
}

// backward_through_pool2x2's work, without the GIL: gy_whole (N x O x OH x OW) is null on the
// per-image and per-block paths, else the buffer for the conv's whole gy.
void backward_through_pool2x2_nogil(const ConvGeom& g, const Pool2dGeom& pg, const float* gp,
                                    const uint8_t* cp, const float* rp, const float* xp,
                                    const float* wp, float* gy_whole, const Grads& d) {
  const int64_t pooled = pg.OH * pg.OW;
  auto pool_backward = [&](int64_t plane0, int64_t planes, float* out) {
    const int64_t at = plane0 * pooled;
    max_backward_2x2_planes(gp + at, cp + at, rp == nullptr ? nullptr : rp + at, out, planes, pg);
  };
  if (gy_whole == nullptr && conv2d_backward_blocks_ok(g, d.gxp != nullptr, d.gwp != nullptr)) {
    conv2d_backward_blocks(g, [&](int64_t n0, int64_t images, float* buf) {
      pool_backward(n0 * g.O, images * g.O, buf);
    }, xp, wp, d.gxp, d.gwp, d.gbp);
    return;
  }
  if (gy_whole == nullptr) {  // image n's planes o0 .. o1
    conv2d_backward_per_image(g, [&](int64_t n, int64_t o0, int64_t o1, float* buf) {
      pool_backward(n * g.O + o0, o1 - o0, buf);
      return static_cast<const float*>(buf);
    }, xp, d.gwp, d.gbp);
    return;
  }
  pool_backward(0, g.N * g.O, gy_whole);
  conv2d_backward(g, gy_whole, xp, wp, d.gxp, d.gwp, d.gbp);
}

// The gradients of max_pool2d_2x2(relu(conv2d(x, w, b))) (the fused node's backward) from the
// pooled gradient, the pool's codes and (optional) the pooled relu output, which masks it as
// max_pool2d_2x2_backward's relu_y does. Where conv2d_backward_per_image_ok, the conv's gy is
// made an image at a time into a per-thread buffer (conv1's: 86 KB instead of 5.5 MB written and
// read back); otherwise whole, then conv2d_backward. Either way the bits of
// max_pool2d_2x2_backward followed by conv2d_backward.
py::tuple backward_through_pool2x2(const py::handle& gy_obj, const py::handle& code_obj,
                                   const py::handle& relu_obj, const py::handle& x_obj,
                                   const py::handle& w_obj, const Ints& stride,
                                   const Ints& padding, const Ints& dilation, int64_t groups,
                                   bool need_gx, bool need_gw, bool need_gb) {
  const char* op = "conv2d_max_pool2d_2x2_backward";
  auto gp = f32_input(op, "grad_y", gy_obj, 4);
  auto code = u8_input(op, "codes", code_obj, 4);
  auto x = f32_input(op, "x", x_obj, 4);
  auto w = f32_input(op, "w", w_obj, 4);
  const ConvGeom g = make_geom(op, x, w, stride, padding, dilation, groups);
  const Pool2dGeom pg = pool2x2_geometry(op, g.OH, g.OW);
  const Shape want{g.N, g.O, pg.OH, pg.OW};
  if (shape_of(gp) != want) {
    throw_value_error(op, ": grad_y shape ", shape_str(shape_of(gp)),
                      " must equal the pooled conv output shape ", shape_str(want));
  }
  if (shape_of(code) != want) {
    throw_value_error(op, ": codes shape ", shape_str(shape_of(code)),
                      " must equal grad_y shape ", shape_str(want));
  }
  py::array_t<float> relu_y;
  if (!relu_obj.is_none()) {
    relu_y = f32_input(op, "relu_y", relu_obj, 4);
    if (shape_of(relu_y) != want) {
      throw_value_error(op, ": relu_y shape ", shape_str(shape_of(relu_y)),
                        " must equal grad_y shape ", shape_str(want));
    }
  }
  const uint8_t* cp = code.data();
  check_pool_codes(op, cp, static_cast<int64_t>(code.size()));
  const bool per_image = conv2d_backward_per_image_ok(g, need_gx, need_gw) ||
                         conv2d_backward_blocks_ok(g, need_gx, need_gw);  // or per block
  py::array_t<float> gy_whole;
  if (!per_image) gy_whole = f32_empty(op, {g.N, g.O, g.OH, g.OW});
  Grads d(op, g, need_gx, need_gw, need_gb);
  const float* rp = relu_obj.is_none() ? nullptr : relu_y.data();
  {
    py::gil_scoped_release nogil;
    backward_through_pool2x2_nogil(g, pg, gp.data(), cp, rp, x.data(), w.data(),
                                   per_image ? nullptr : gy_whole.mutable_data(), d);
  }
  return d.tuple();
}

}  // namespace

void bind_conv2d(py::module_& m) {
  const Ints one{1, 1}, zero{0, 0};
  m.def("conv2d",
        [](const py::handle& x, const py::handle& w, const py::object& b, const Ints& s,
           const Ints& p, const Ints& d, int64_t groups) {
          return forward("conv2d", false, x, w, b, s, p, d, groups);
        },
        py::arg("x"), py::arg("w"), py::arg("bias") = py::none(), py::arg("stride") = one,
        py::arg("padding") = zero, py::arg("dilation") = one, py::arg("groups") = 1);
  m.def("conv2d_relu",
        [](const py::handle& x, const py::handle& w, const py::object& b, const Ints& s,
           const Ints& p, const Ints& d, int64_t groups) {
          return forward("conv2d_relu", true, x, w, b, s, p, d, groups);
        },
        py::arg("x"), py::arg("w"), py::arg("bias") = py::none(), py::arg("stride") = one,
        py::arg("padding") = zero, py::arg("dilation") = one, py::arg("groups") = 1);
  m.def("conv2d_backward", &backward, py::arg("grad_y"), py::arg("x"), py::arg("w"),
        py::arg("stride") = one, py::arg("padding") = zero, py::arg("dilation") = one,
        py::arg("groups") = 1, py::arg("need_input_grad") = true,
        py::arg("need_weight_grad") = true, py::arg("need_bias_grad") = true);
  m.def("conv2d_relu_max_pool2d_2x2", &relu_pool2x2_forward, py::arg("x"), py::arg("w"),
        py::arg("bias") = py::none(), py::arg("stride") = one, py::arg("padding") = zero,
        py::arg("dilation") = one, py::arg("groups") = 1);
  m.def("conv2d_max_pool2d_2x2_backward", &backward_through_pool2x2, py::arg("grad_y"),
        py::arg("codes"), py::arg("relu_y"), py::arg("x"), py::arg("w"), py::arg("stride") = one,
        py::arg("padding") = zero, py::arg("dilation") = one, py::arg("groups") = 1,
        py::arg("need_input_grad") = true, py::arg("need_weight_grad") = true,
        py::arg("need_bias_grad") = true);
  m.def("set_conv_algorithm", [](const std::string& name) {
    ConvAlgo a;
    if (!parse_conv_algo(name, &a)) {
      throw_value_error("set_conv_algorithm: algorithm must be one of auto, gemm, winograd, "
                        "winograd4, got '", name, "'");
    }
    set_conv_algo(a);
  }, py::arg("algorithm"));
  m.def("_init_conv_algorithm_from_env", [] {
    const char* v = std::getenv("FASTVISION_CONV_ALGO");
    if (v == nullptr || *v == '\0') return;
    ConvAlgo a;
    if (!parse_conv_algo(v, &a)) {
      throw_value_error("FASTVISION_CONV_ALGO must be one of auto, gemm, winograd, winograd4, "
                        "got '", v, "'");
    }
    set_conv_algo(a);
  });
  m.def("get_conv_algorithm", [] {
    switch (conv_algo()) {
      case ConvAlgo::gemm: return std::string("gemm");
      case ConvAlgo::winograd: return std::string("winograd");
      case ConvAlgo::winograd4: return std::string("winograd4");
      default: return std::string("auto");
    }
  });
}

}  // namespace fv
