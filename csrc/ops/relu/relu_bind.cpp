// relu bindings: validate, allocate, release the GIL, split over threads, call the table.
#include "ops/relu/relu.h"

#include "core/array.h"
#include "core/parallel.h"

namespace fv {
namespace {

const KernelSet<ReluKernels> kRelu = FV_KERNEL_SET(ReluKernels, relu_kernels);
constexpr int64_t kGrain = 1 << 14;  // below ~16k floats a second thread costs more than it saves

py::array_t<float> relu(const py::handle& x_obj) {
  auto x = f32_input("relu", "x", x_obj, -1);
  auto y = f32_empty("relu", shape_of(x));
  const float* xp = x.data();
  float* yp = y.mutable_data();
  const int64_t n = x.size();
  const ReluKernels& k = kRelu.cpu();
  py::gil_scoped_release nogil;
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) { k.forward(xp + b, yp + b, e - b); });
  return y;
}

py::array_t<float> relu_backward(const py::handle& gy_obj, const py::handle& y_obj) {
  auto gy = f32_input("relu_backward", "grad_y", gy_obj, -1);
  auto y = f32_input("relu_backward", "y", y_obj, -1);
  if (shape_of(gy) != shape_of(y)) {
    throw_value_error("relu_backward: grad_y shape ", shape_str(shape_of(gy)),
                      " must equal y shape ", shape_str(shape_of(y)));
  }
  auto gx = f32_empty("relu_backward", shape_of(y));
  const float *gyp = gy.data(), *yp = y.data();
  float* gxp = gx.mutable_data();
  const ReluKernels& k = kRelu.cpu();
  py::gil_scoped_release nogil;
  parallel_for(y.size(), kGrain, [&](int64_t b, int64_t e) { k.backward(gyp + b, yp + b, gxp + b, e - b); });
  return gx;
}

}  // namespace

void bind_relu(py::module_& m) {
  m.def("relu", &relu, py::arg("x"));
  m.def("relu_backward", &relu_backward, py::arg("grad_y"), py::arg("y"));
}

}  // namespace fv
