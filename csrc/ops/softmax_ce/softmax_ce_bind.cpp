// softmax_ce bindings: softmax_cross_entropy, log_softmax, log_softmax_backward.
// Validate everything (shapes, labels, reduction, label_smoothing), allocate, release the GIL,
// split rows over threads, then (mean / sum) add the per-row losses in float64 in row order,
// so the reduction never depends on the thread count.
#include "ops/softmax_ce/softmax_ce.h"

#include <cmath>
#include <string>
#include <vector>

#include "core/array.h"
#include "core/parallel.h"

namespace fv {
namespace {

const KernelSet<SoftmaxCeKernels> kSet = FV_KERNEL_SET(SoftmaxCeKernels, softmax_ce_kernels);

// Rows per thread chunk: ~16k floats of work before a second thread pays off.
int64_t row_grain(int64_t c) { return c >= (1 << 14) ? 1 : (1 << 14) / c; }

void check_rows(const char* op, const char* arg, const Shape& s) {
  if (s[0] < 1 || s[1] < 1) {
    throw_value_error(op, ": ", arg, " must have at least one row and one column, got shape ",
                      shape_str(s));
  }
}

py::tuple softmax_cross_entropy(const py::handle& x_obj, const py::handle& labels_obj,
                                const std::string& reduction, double label_smoothing) {
  static const char* op = "softmax_cross_entropy";
  auto x = f32_input(op, "logits", x_obj, 2);
  auto labels = i64_input(op, "labels", labels_obj, 1);
  const Shape xs = shape_of(x);
  check_rows(op, "logits", xs);
  const int64_t n = xs[0], c = xs[1];
  if (labels.shape(0) != n) {
    throw_value_error(op, ": labels shape ", shape_str(shape_of(labels)),
                      " must be (N,) with N = logits.shape[0] = ", n);
  }
  int mode;  // 0 none, 1 mean, 2 sum
  if (reduction == "none") mode = 0;
  else if (reduction == "mean") mode = 1;
  else if (reduction == "sum") mode = 2;
  else throw_value_error(op, ": reduction must be 'mean', 'sum' or 'none', got '", reduction, "'");
  if (!(label_smoothing >= 0.0 && label_smoothing <= 1.0)) {
    throw_value_error(op, ": label_smoothing must be in [0, 1], got ", label_smoothing);
  }
  const int64_t* lp = labels.data();
  for (int64_t i = 0; i < n; ++i) {
    if (lp[i] < 0 || lp[i] >= c) {
      throw_value_error(op, ": labels[", i, "] = ", lp[i], " is out of range [0, ", c, ")");
    }
  }

  SoftmaxCeParams p;
  p.c = c;
  p.t_other = static_cast<float>(label_smoothing / static_cast<double>(c));
  p.t_label = static_cast<float>((1.0 - label_smoothing) + label_smoothing / static_cast<double>(c));
  p.keep = static_cast<float>(1.0 - label_smoothing);
  p.smooth = p.t_other;
  p.grad_scale = mode == 1 ? static_cast<float>(1.0 / static_cast<double>(n)) : 1.0f;

  auto grad = f32_empty(op, xs);
  py::array_t<float> loss_arr;
  std::vector<float> loss_buf;
  float* loss;
  if (mode == 0) {
    loss_arr = f32_empty(op, {n});
    loss = loss_arr.mutable_data();
  } else {
    loss_buf.resize(static_cast<size_t>(n));
    loss = loss_buf.data();
  }
  const float* xp = x.data();
  float* gp = grad.mutable_data();
  const SoftmaxCeKernels& k = kSet.cpu();
  double total = 0.0;
  {
    py::gil_scoped_release nogil;
    parallel_for(n, row_grain(c), [&](int64_t b, int64_t e) {
      k.cross_entropy(xp + b * c, lp + b, loss + b, gp + b * c, e - b, p);
    });
    if (mode != 0) {
      for (int64_t i = 0; i < n; ++i) total += loss[i];  // fixed order: deterministic
      if (mode == 1) total /= static_cast<double>(n);
    }
  }
  if (mode == 0) return py::make_tuple(loss_arr, grad);
  return py::make_tuple(py::float_(total), grad);
}

py::array_t<float> log_softmax(const py::handle& x_obj, int64_t dim) {
  static const char* op = "log_softmax";
  auto x = f32_input(op, "x", x_obj, 2);
  if (dim != -1 && dim != 1) throw_value_error(op, ": dim must be -1 or 1 for a 2-D input, got ", dim);
  const Shape xs = shape_of(x);
  check_rows(op, "x", xs);
  const int64_t c = xs[1];
  auto y = f32_empty(op, xs);
  const float* xp = x.data();
  float* yp = y.mutable_data();
  const SoftmaxCeKernels& k = kSet.cpu();
  py::gil_scoped_release nogil;
  parallel_for(xs[0], row_grain(c), [&](int64_t b, int64_t e) {
    k.log_softmax(xp + b * c, yp + b * c, e - b, c);
  });
  return y;
}

py::array_t<float> log_softmax_backward(const py::handle& gy_obj, const py::handle& y_obj) {
  static const char* op = "log_softmax_backward";
  auto gy = f32_input(op, "grad_y", gy_obj, 2);
  auto y = f32_input(op, "y", y_obj, 2);
  const Shape ys = shape_of(y);
  if (shape_of(gy) != ys) {
    throw_value_error(op, ": grad_y shape ", shape_str(shape_of(gy)), " must equal y shape ",
                      shape_str(ys));
  }
  check_rows(op, "y", ys);
  const int64_t c = ys[1];
  auto gx = f32_empty(op, ys);
  const float *gyp = gy.data(), *yp = y.data();
  float* gxp = gx.mutable_data();
  const SoftmaxCeKernels& k = kSet.cpu();
  py::gil_scoped_release nogil;
  parallel_for(ys[0], row_grain(c), [&](int64_t b, int64_t e) {
    k.log_softmax_backward(gyp + b * c, yp + b * c, gxp + b * c, e - b, c);
  });
  return gx;
}

}  // namespace

void bind_softmax_ce(py::module_& m) {
  m.def("softmax_cross_entropy", &softmax_cross_entropy, py::arg("logits"), py::arg("labels"),
        py::arg("reduction") = "mean", py::arg("label_smoothing") = 0.0);
  m.def("log_softmax", &log_softmax, py::arg("x"), py::arg("dim") = -1);
  m.def("log_softmax_backward", &log_softmax_backward, py::arg("grad_y"), py::arg("y"));
}

}  // namespace fv
