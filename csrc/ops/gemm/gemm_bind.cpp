// gemm bindings: matmul, linear, linear_relu, linear_backward and the private _sgemm_test
// (full sgemm surface on a caller's C, for tests: sub-matrices, beta, epilogue).
// Validate, allocate, release the GIL, call fv::sgemm (which threads itself).
#include <pybind11/pybind11.h>

#include <algorithm>
#include <string>

#include "core/array.h"
#include "ops/gemm/gemm.h"

namespace fv {
namespace {

int64_t leading(const Shape& s) {  // product of all but the last dimension
  int64_t n = 1;
  for (size_t i = 0; i + 1 < s.size(); ++i) n *= s[i];
  return n;
}

Shape with_last(Shape s, int64_t last) {
  s.back() = last;
  return s;
}

py::array_t<float> matmul(const py::handle& a_obj, const py::handle& b_obj, bool trans_a,
                          bool trans_b) {
  auto a = f32_input("matmul", "a", a_obj, 2);
  auto b = f32_input("matmul", "b", b_obj, 2);
  const int64_t M = trans_a ? a.shape(1) : a.shape(0), K = trans_a ? a.shape(0) : a.shape(1);
  const int64_t Kb = trans_b ? b.shape(1) : b.shape(0), N = trans_b ? b.shape(0) : b.shape(1);
  if (K != Kb) {
    throw_value_error("matmul: inner dimensions must match, got a ", shape_str(shape_of(a)),
                      " and b ", shape_str(shape_of(b)), " (trans_a=", trans_a ? "True" : "False",
                      ", trans_b=", trans_b ? "True" : "False", ": ", K, " != ", Kb, ")");
  }
  auto c = f32_empty("matmul", {M, N});
  const float *ap = a.data(), *bp = b.data();
  float* cp = c.mutable_data();
  const int64_t lda = a.shape(1), ldb = b.shape(1);
  py::gil_scoped_release nogil;
  sgemm(trans_a, trans_b, M, N, K, ap, lda, bp, ldb, 0.0f, cp, N);
  return c;
}

// x (..., in), w (out, in), b (out,) or None -> x @ w.T + b, optionally relu'd in the store.
py::array_t<float> linear_impl(const char* op, const py::handle& x_obj, const py::handle& w_obj,
                               const py::handle& b_obj, bool relu) {
  auto x = f32_input(op, "x", x_obj, -1);
  auto w = f32_input(op, "w", w_obj, 2);
  if (x.ndim() < 1) throw_value_error(op, ": x must be at least 1-D, got a 0-D array");
  const Shape xs = shape_of(x);
  const int64_t out = w.shape(0), in = w.shape(1);
  if (xs.back() != in) {
    throw_value_error(op, ": x shape ", shape_str(xs), " must end in in_features = w.shape[1] = ",
                      in, " (w shape ", shape_str(shape_of(w)), ")");
  }
  py::array_t<float> bias;
  GemmEpilogue ep;
  ep.relu = relu;
  if (!b_obj.is_none()) {
    bias = f32_input(op, "b", b_obj, 1);
    if (bias.shape(0) != out) {
      throw_value_error(op, ": b shape ", shape_str(shape_of(bias)), " must be (", out,
                        ",) = (w.shape[0],)");
    }
    ep.bias_kind = GemmEpilogue::Bias::per_col;
    ep.bias = bias.data();
  }
  auto y = f32_empty(op, with_last(xs, out));
  const int64_t n = leading(xs);
  const float *xp = x.data(), *wp = w.data();
  float* yp = y.mutable_data();
  py::gil_scoped_release nogil;
  sgemm(false, true, n, out, in, xp, in, wp, in, 0.0f, yp, out, ep);
  return y;
}

py::tuple linear_backward(const py::handle& gy_obj, const py::handle& x_obj,
                          const py::handle& w_obj, bool need_input_grad) {
  const char* op = "linear_backward";
  auto gy = f32_input(op, "grad_y", gy_obj, -1);
  auto x = f32_input(op, "x", x_obj, -1);
  auto w = f32_input(op, "w", w_obj, 2);
  if (x.ndim() < 1) throw_value_error(op, ": x must be at least 1-D, got a 0-D array");
  const Shape xs = shape_of(x), gs = shape_of(gy);
  const int64_t out = w.shape(0), in = w.shape(1);
  if (xs.back() != in) {
    throw_value_error(op, ": x shape ", shape_str(xs), " must end in in_features = w.shape[1] = ",
                      in, " (w shape ", shape_str(shape_of(w)), ")");
  }
  if (gs != with_last(xs, out)) {
    throw_value_error(op, ": grad_y shape ", shape_str(gs), " must be ",
                      shape_str(with_last(xs, out)), " (x shape ", shape_str(xs), ", w shape ",
                      shape_str(shape_of(w)), ")");
  }
  py::array_t<float> gx;
  if (need_input_grad) gx = f32_empty(op, xs);
  auto gw = f32_empty(op, {out, in});
  auto gb = f32_empty(op, {out});
  const int64_t n = leading(xs);
  const float *gyp = gy.data(), *xp = x.data(), *wp = w.data();
  float* gxp = need_input_grad ? gx.mutable_data() : nullptr;
  float *gwp = gw.mutable_data(), *gbp = gb.mutable_data();
  {
    py::gil_scoped_release nogil;
    if (need_input_grad) sgemm(false, false, n, in, out, gyp, out, wp, in, 0.0f, gxp, in);
    sgemm(true, false, out, in, n, gyp, out, xp, in, 0.0f, gwp, in);
    // grad_b = column sums of grad_y, each in ascending row order: the same bits at any
    // thread count and ISA (a plain loop in this non-ISA file).
    std::fill(gbp, gbp + out, 0.0f);
    for (int64_t r = 0; r < n; ++r)
      for (int64_t j = 0; j < out; ++j) gbp[j] = gbp[j] + gyp[r * out + j];
  }
  return py::make_tuple(need_input_grad ? py::object(gx) : py::object(py::none()), gw, gb);
}

// C[:m, :n] = beta*C + op(A)[:m, :k] op(B)[:k, :n] (+ bias, relu) on the caller's arrays, with
// the leading dimensions of the full arrays: exercises sub-matrix strides, beta and epilogue.
void sgemm_test(const py::handle& a_obj, const py::handle& b_obj, const py::handle& c_obj,
                int64_t m, int64_t n, int64_t k, bool trans_a, bool trans_b, float beta,
                const py::handle& bias_obj, const std::string& bias_kind, bool relu) {
  const char* op = "_sgemm_test";
  auto a = f32_input(op, "a", a_obj, 2);
  auto b = f32_input(op, "b", b_obj, 2);
  auto c = f32_inplace(op, "c", c_obj, 2);
  if (m < 0 || n < 0 || k < 0) throw_value_error(op, ": m, n, k must be >= 0, got ", m, ", ", n, ", ", k);
  if (beta != 0.0f && beta != 1.0f) throw_value_error(op, ": beta must be 0 or 1, got ", beta);
  const int64_t ar = trans_a ? k : m, ac = trans_a ? m : k;
  const int64_t br = trans_b ? n : k, bc = trans_b ? k : n;
  if (a.shape(0) < ar || a.shape(1) < ac || b.shape(0) < br || b.shape(1) < bc ||
      c.shape(0) < m || c.shape(1) < n) {
    throw_value_error(op, ": arrays too small for m, n, k = ", m, ", ", n, ", ", k);
  }
  GemmEpilogue ep;
  ep.relu = relu;
  py::array_t<float> bias;
  if (bias_kind != "none") {
    if (bias_kind != "row" && bias_kind != "col")
      throw_value_error(op, ": bias_kind must be none, row or col, got '", bias_kind, "'");
    bias = f32_input(op, "bias", bias_obj, 1);
    if (bias.shape(0) < (bias_kind == "row" ? m : n)) throw_value_error(op, ": bias too short");
    ep.bias_kind = bias_kind == "row" ? GemmEpilogue::Bias::per_row : GemmEpilogue::Bias::per_col;
    ep.bias = bias.data();
  }
  const float *ap = a.data(), *bp = b.data();
  float* cp = c.mutable_data();
  const int64_t lda = a.shape(1), ldb = b.shape(1), ldc = c.shape(1);
  py::gil_scoped_release nogil;
  sgemm(trans_a, trans_b, m, n, k, ap, lda, bp, ldb, beta, cp, ldc, ep);
}

}  // namespace

void bind_gemm(py::module_& m) {
  m.def("matmul", &matmul, py::arg("a"), py::arg("b"), py::kw_only(), py::arg("trans_a") = false,
        py::arg("trans_b") = false);
  m.def("linear", [](const py::handle& x, const py::handle& w, const py::handle& b) {
    return linear_impl("linear", x, w, b, false);
  }, py::arg("x"), py::arg("w"), py::arg("b") = py::none());
  m.def("linear_relu", [](const py::handle& x, const py::handle& w, const py::handle& b) {
    return linear_impl("linear_relu", x, w, b, true);
  }, py::arg("x"), py::arg("w"), py::arg("b") = py::none());
  m.def("linear_backward", &linear_backward, py::arg("grad_y"), py::arg("x"), py::arg("w"),
        py::kw_only(), py::arg("need_input_grad") = true);
  m.def("_sgemm_test", &sgemm_test, py::arg("a"), py::arg("b"), py::arg("c"), py::arg("m"),
        py::arg("n"), py::arg("k"), py::arg("trans_a"), py::arg("trans_b"), py::arg("beta"),
        py::arg("bias"), py::arg("bias_kind"), py::arg("relu"));
}

}  // namespace fv
