// optim bindings: sgd_step, adam_step, rmsprop_step (in-place updates; see optim.h).
// Everything is validated before the first write: in-place arrays (float32, C-contiguous,
// writeable: TypeError), shapes equal to param's and no two arrays overlapping in memory
// (ValueError), hyper-parameters with torch.optim's rules (ValueError). Then the GIL is
// released and the elements are split over threads.
#include "ops/optim/optim.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "core/array.h"
#include "core/parallel.h"

namespace fv {
namespace {

const KernelSet<OptimKernels> kSet = FV_KERNEL_SET(OptimKernels, optim_kernels);
constexpr int64_t kGrain = 1 << 15;  // ~32k floats (a few us of work) per thread chunk

using Named = std::pair<const char*, py::array_t<float>>;

// Shapes equal to param's, and no two arrays sharing memory (an update through one would be
// read through another, differently at each ISA and thread count).
void check_arrays(const char* op, const std::vector<Named>& arrays) {
  const Shape ps = shape_of(arrays[0].second);
  for (size_t i = 1; i < arrays.size(); ++i) {
    const Shape s = shape_of(arrays[i].second);
    if (s != ps) {
      throw_value_error(op, ": ", arrays[i].first, " shape ", shape_str(s),
                        " must equal param shape ", shape_str(ps));
    }
  }
  for (size_t i = 0; i < arrays.size(); ++i) {
    for (size_t j = i + 1; j < arrays.size(); ++j) {
      const auto& a = arrays[i].second;
      const auto& b = arrays[j].second;
      if (a.size() == 0) continue;
      const char* a0 = reinterpret_cast<const char*>(a.data());
      const char* b0 = reinterpret_cast<const char*>(b.data());
      if (a0 < b0 + b.nbytes() && b0 < a0 + a.nbytes()) {
        throw_value_error(op, ": ", arrays[i].first, " and ", arrays[j].first,
                          " must not overlap in memory");
      }
    }
  }
}

void check_ge0(const char* op, const char* arg, double v) {
  if (!(v >= 0.0)) throw_value_error(op, ": ", arg, " must be >= 0, got ", v);
}
void check_beta(const char* op, const char* arg, double v) {
  if (!(v >= 0.0 && v < 1.0)) throw_value_error(op, ": ", arg, " must be in [0, 1), got ", v);
}
// A buffer argument: None gives null (when not needed), else a checked in-place array.
bool present(const py::handle& h) { return !h.is_none(); }
float* data_or_null(std::vector<Named>& arrays, const char* name) {
  for (auto& a : arrays)
    if (std::strcmp(a.first, name) == 0) return a.second.mutable_data();
  return nullptr;
}

void sgd_step(const py::handle& param_obj, const py::handle& grad_obj, const py::handle& buf_obj,
              double lr, double momentum, double dampening, bool nesterov, double weight_decay,
              bool first_step) {
  static const char* op = "sgd_step";
  std::vector<Named> arrays;
  arrays.emplace_back("param", f32_inplace(op, "param", param_obj, -1));
  arrays.emplace_back("grad", f32_input(op, "grad", grad_obj, -1));
  if (present(buf_obj)) arrays.emplace_back("momentum_buf", f32_inplace(op, "momentum_buf", buf_obj, -1));
  check_arrays(op, arrays);
  check_ge0(op, "lr", lr);
  check_ge0(op, "momentum", momentum);
  check_ge0(op, "weight_decay", weight_decay);
  if (!std::isfinite(dampening)) throw_value_error(op, ": dampening must be finite, got ", dampening);
  if (nesterov && (momentum <= 0.0 || dampening != 0.0)) {
    throw_value_error(op, ": nesterov momentum requires momentum > 0 and dampening = 0, got momentum = ",
                      momentum, ", dampening = ", dampening);
  }
  if (momentum != 0.0 && !present(buf_obj)) {
    throw_value_error(op, ": momentum_buf must be an array when momentum != 0, got None");
  }
  SgdParams hp;
  hp.neg_lr = static_cast<float>(-lr);
  hp.weight_decay = static_cast<float>(weight_decay);
  hp.momentum = static_cast<float>(momentum);
  hp.keep = static_cast<float>(1.0 - dampening);
  hp.nesterov = nesterov;
  hp.first_step = first_step;
  float* p = arrays[0].second.mutable_data();
  const float* g = arrays[1].second.data();
  float* buf = momentum != 0.0 ? data_or_null(arrays, "momentum_buf") : nullptr;
  const OptimKernels& k = kSet.cpu();
  const int64_t n = arrays[0].second.size();
  py::gil_scoped_release nogil;
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    k.sgd(p + b, g + b, buf ? buf + b : nullptr, e - b, hp);
  });
}

void adam_step(const py::handle& param_obj, const py::handle& grad_obj, const py::handle& m_obj,
               const py::handle& v_obj, int64_t step, double lr, double beta1, double beta2,
               double eps, double weight_decay, bool amsgrad, const py::handle& vmax_obj,
               bool decoupled_weight_decay) {
  static const char* op = "adam_step";
  std::vector<Named> arrays;
  arrays.emplace_back("param", f32_inplace(op, "param", param_obj, -1));
  arrays.emplace_back("grad", f32_input(op, "grad", grad_obj, -1));
  arrays.emplace_back("m", f32_inplace(op, "m", m_obj, -1));
  arrays.emplace_back("v", f32_inplace(op, "v", v_obj, -1));
  if (present(vmax_obj)) arrays.emplace_back("v_max", f32_inplace(op, "v_max", vmax_obj, -1));
  check_arrays(op, arrays);
  if (step < 1) throw_value_error(op, ": step must be >= 1, got ", step);
  check_ge0(op, "lr", lr);
  check_ge0(op, "eps", eps);
  check_beta(op, "beta1", beta1);
  check_beta(op, "beta2", beta2);
  check_ge0(op, "weight_decay", weight_decay);
  if (amsgrad && !present(vmax_obj)) {
    throw_value_error(op, ": v_max must be an array when amsgrad is True, got None");
  }
  // torch computes these in Python floats (double), then the tensor ops round them to float.
  const double bc1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  AdamParams hp;
  const bool wd = weight_decay != 0.0;
  hp.weight_decay = wd && !decoupled_weight_decay ? static_cast<float>(weight_decay) : 0.0f;
  hp.decay = wd && decoupled_weight_decay ? static_cast<float>(1.0 - lr * weight_decay) : 1.0f;
  hp.w1 = static_cast<float>(1.0 - beta1);
  hp.beta2 = static_cast<float>(beta2);
  hp.w2 = static_cast<float>(1.0 - beta2);
  hp.bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  hp.eps = static_cast<float>(eps);
  hp.neg_step_size = static_cast<float>(-(lr / bc1));
  hp.amsgrad = amsgrad;
  float* p = arrays[0].second.mutable_data();
  const float* g = arrays[1].second.data();
  float* m = arrays[2].second.mutable_data();
  float* v = arrays[3].second.mutable_data();
  float* vmax = amsgrad ? data_or_null(arrays, "v_max") : nullptr;
  const OptimKernels& k = kSet.cpu();
  const int64_t n = arrays[0].second.size();
  py::gil_scoped_release nogil;
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    k.adam(p + b, g + b, m + b, v + b, vmax ? vmax + b : nullptr, e - b, hp);
  });
}

void rmsprop_step(const py::handle& param_obj, const py::handle& grad_obj, const py::handle& sq_obj,
                  double lr, double alpha, double eps, double momentum, const py::handle& buf_obj,
                  bool centered, const py::handle& gavg_obj, double weight_decay) {
  static const char* op = "rmsprop_step";
  std::vector<Named> arrays;
  arrays.emplace_back("param", f32_inplace(op, "param", param_obj, -1));
  arrays.emplace_back("grad", f32_input(op, "grad", grad_obj, -1));
  arrays.emplace_back("square_avg", f32_inplace(op, "square_avg", sq_obj, -1));
  if (present(buf_obj)) arrays.emplace_back("momentum_buf", f32_inplace(op, "momentum_buf", buf_obj, -1));
  if (present(gavg_obj)) arrays.emplace_back("grad_avg", f32_inplace(op, "grad_avg", gavg_obj, -1));
  check_arrays(op, arrays);
  check_ge0(op, "lr", lr);
  check_ge0(op, "alpha", alpha);
  check_ge0(op, "eps", eps);
  check_ge0(op, "momentum", momentum);
  check_ge0(op, "weight_decay", weight_decay);
  if (momentum > 0.0 && !present(buf_obj)) {
    throw_value_error(op, ": momentum_buf must be an array when momentum > 0, got None");
  }
  if (centered && !present(gavg_obj)) {
    throw_value_error(op, ": grad_avg must be an array when centered is True, got None");
  }
  RmspropParams hp;
  hp.weight_decay = static_cast<float>(weight_decay);
  hp.alpha = static_cast<float>(alpha);
  hp.w = static_cast<float>(1.0 - alpha);
  hp.eps = static_cast<float>(eps);
  hp.momentum = static_cast<float>(momentum);
  hp.neg_lr = static_cast<float>(-lr);
  hp.centered = centered;
  float* p = arrays[0].second.mutable_data();
  const float* g = arrays[1].second.data();
  float* sq = arrays[2].second.mutable_data();
  float* buf = momentum > 0.0 ? data_or_null(arrays, "momentum_buf") : nullptr;
  float* gavg = centered ? data_or_null(arrays, "grad_avg") : nullptr;
  const OptimKernels& k = kSet.cpu();
  const int64_t n = arrays[0].second.size();
  py::gil_scoped_release nogil;
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    k.rmsprop(p + b, g + b, sq + b, buf ? buf + b : nullptr, gavg ? gavg + b : nullptr, e - b, hp);
  });
}

}  // namespace

void bind_optim(py::module_& m) {
  m.def("sgd_step", &sgd_step, py::arg("param"), py::arg("grad"), py::arg("momentum_buf"),
        py::kw_only(), py::arg("lr"), py::arg("momentum") = 0.0, py::arg("dampening") = 0.0,
        py::arg("nesterov") = false, py::arg("weight_decay") = 0.0, py::arg("first_step") = false);
  m.def("adam_step", &adam_step, py::arg("param"), py::arg("grad"), py::arg("m"), py::arg("v"),
        py::kw_only(), py::arg("step"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"),
        py::arg("eps"), py::arg("weight_decay") = 0.0, py::arg("amsgrad") = false,
        py::arg("v_max") = py::none(), py::arg("decoupled_weight_decay") = false);
  m.def("rmsprop_step", &rmsprop_step, py::arg("param"), py::arg("grad"), py::arg("square_avg"),
        py::kw_only(), py::arg("lr"), py::arg("alpha"), py::arg("eps"), py::arg("momentum") = 0.0,
        py::arg("momentum_buf") = py::none(), py::arg("centered") = false,
        py::arg("grad_avg") = py::none(), py::arg("weight_decay") = 0.0);
}

}  // namespace fv
