// optim bindings: sgd_step, adam_step, adam_step_foreach, rmsprop_step (in-place updates;
// see optim.h).
// Everything is validated before the first write: in-place arrays (float32, C-contiguous,
// writeable: TypeError), shapes equal to param's and no two arrays overlapping in memory
// (ValueError), hyper-parameters with torch.optim's rules (ValueError). Then the GIL is
// released and the elements are split over threads.
#include "ops/optim/optim.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/array.h"
#include "core/parallel.h"

namespace fv {
namespace {

const KernelSet<OptimKernels> kSet = FV_KERNEL_SET(OptimKernels, optim_kernels);
constexpr int64_t kGrain = 1 << 15;  // ~32k floats (a few us of work) per thread chunk

using Named = std::pair<std::string, py::array_t<float>>;

// Shapes equal to param's, and no two arrays sharing memory (an update through one would be
// read through another, differently at each ISA and thread count).
void check_arrays(const char* op, const std::vector<Named>& arrays) {
  const Shape ps = shape_of(arrays[0].second);
  for (size_t i = 1; i < arrays.size(); ++i) {
    const Shape s = shape_of(arrays[i].second);
    if (s != ps) {
      throw_value_error(op, ": ", arrays[i].first.c_str(), " shape ", shape_str(s),
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
        throw_value_error(op, ": ", arrays[i].first.c_str(), " and ", arrays[j].first.c_str(),
                          " must not overlap in memory");
      }
    }
  }
}

// No array of one tensor's group overlaps an array of another's, except two read-only
// gradients (nothing writes them): the tensors' updates run in parallel.
void check_disjoint_tensors(const char* op, const std::vector<std::vector<Named>>& groups) {
  struct Span {
    const char *begin, *end;
    size_t group;
    bool written;
    const std::string* name;
  };
  std::vector<Span> spans;
  for (size_t i = 0; i < groups.size(); ++i) {
    for (size_t j = 0; j < groups[i].size(); ++j) {
      const auto& a = groups[i][j].second;
      if (a.size() == 0) continue;
      const char* b = reinterpret_cast<const char*>(a.data());
      spans.push_back(Span{b, b + a.nbytes(), i, j != 1, &groups[i][j].first});
    }
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  for (size_t i = 0; i < spans.size(); ++i) {
    for (size_t j = i + 1; j < spans.size() && spans[j].begin < spans[i].end; ++j) {
      if (spans[i].group != spans[j].group && (spans[i].written || spans[j].written)) {
        throw_value_error(op, ": ", spans[i].name->c_str(), " and ", spans[j].name->c_str(),
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
    if (a.first == name) return a.second.mutable_data();
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

// Checks Adam's hyper-parameters (torch.optim's rules) and computes its coefficients.
AdamParams adam_params(const char* op, int64_t step, double lr, double beta1, double beta2,
                       double eps, double weight_decay, bool decoupled_weight_decay,
                       bool amsgrad) {
  if (step < 1) throw_value_error(op, ": step must be >= 1, got ", step);
  check_ge0(op, "lr", lr);
  check_ge0(op, "eps", eps);
  check_beta(op, "beta1", beta1);
  check_beta(op, "beta2", beta2);
  check_ge0(op, "weight_decay", weight_decay);
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
  return hp;
}

// One tensor's Adam arrays, checked: param, grad, m, v and, when given, v_max, named in
// messages by names[0..4] ("param", ... for adam_step; "params[i]", ... for the foreach form).
std::vector<Named> adam_arrays(const char* op, const std::string names[5],
                               const py::handle& param_obj, const py::handle& grad_obj,
                               const py::handle& m_obj, const py::handle& v_obj,
                               const py::handle& vmax_obj) {
  std::vector<Named> arrays;
  arrays.emplace_back(names[0], f32_inplace(op, names[0].c_str(), param_obj, -1));
  arrays.emplace_back(names[1], f32_input(op, names[1].c_str(), grad_obj, -1));
  arrays.emplace_back(names[2], f32_inplace(op, names[2].c_str(), m_obj, -1));
  arrays.emplace_back(names[3], f32_inplace(op, names[3].c_str(), v_obj, -1));
  if (present(vmax_obj)) {
    arrays.emplace_back(names[4], f32_inplace(op, names[4].c_str(), vmax_obj, -1));
  }
  check_arrays(op, arrays);
  return arrays;
}

// The kernel's pointers into one tensor's checked arrays.
struct AdamTensor {
  float* p;
  const float* g;
  float* m;
  float* v;
  float* vmax;
  int64_t n;
  AdamParams hp;
};

AdamTensor adam_tensor(std::vector<Named>& arrays, const AdamParams& hp) {
  const bool has_vmax = arrays.size() == 5;
  return AdamTensor{arrays[0].second.mutable_data(), arrays[1].second.data(),
                    arrays[2].second.mutable_data(), arrays[3].second.mutable_data(),
                    hp.amsgrad && has_vmax ? arrays[4].second.mutable_data() : nullptr,
                    static_cast<int64_t>(arrays[0].second.size()), hp};
}

void adam_step(const py::handle& param_obj, const py::handle& grad_obj, const py::handle& m_obj,
               const py::handle& v_obj, int64_t step, double lr, double beta1, double beta2,
               double eps, double weight_decay, bool amsgrad, const py::handle& vmax_obj,
               bool decoupled_weight_decay) {
  static const char* op = "adam_step";
  static const std::string names[5] = {"param", "grad", "m", "v", "v_max"};
  std::vector<Named> arrays = adam_arrays(op, names, param_obj, grad_obj, m_obj, v_obj, vmax_obj);
  const AdamParams hp = adam_params(op, step, lr, beta1, beta2, eps, weight_decay,
                                    decoupled_weight_decay, amsgrad);
  if (amsgrad && !present(vmax_obj)) {
    throw_value_error(op, ": v_max must be an array when amsgrad is True, got None");
  }
  const AdamTensor t = adam_tensor(arrays, hp);
  const OptimKernels& k = kSet.cpu();
  py::gil_scoped_release nogil;
  parallel_for(t.n, kGrain, [&](int64_t b, int64_t e) {
    k.adam(t.p + b, t.g + b, t.m + b, t.v + b, t.vmax ? t.vmax + b : nullptr, e - b, t.hp);
  });
}

// adam_step over lists of tensors in one call (torch's foreach=True): the same update, bit
// for bit, per tensor (steps[i], eps[i]: the caller's per-tensor step count and, for Keras's
// convention, per-step eps). Everything is checked first, including that no array written
// overlaps another tensor's arrays; then the tensors' elements are split over the threads
// together (a small network's many small tensors make one parallel region, not one each).
void adam_step_foreach(const py::sequence& params, const py::sequence& grads,
                       const py::sequence& ms, const py::sequence& vs,
                       const py::sequence& steps, double lr, double beta1, double beta2,
                       const py::sequence& eps, double weight_decay, bool amsgrad,
                       const py::handle& vmaxs_obj, bool decoupled_weight_decay) {
  static const char* op = "adam_step_foreach";
  const size_t n = params.size();
  const bool has_vmax = present(vmaxs_obj);
  const py::sequence vmaxs = has_vmax ? py::reinterpret_borrow<py::sequence>(vmaxs_obj)
                                      : py::sequence(py::list());
  const std::pair<const char*, size_t> lengths[] = {
      {"grads", grads.size()}, {"ms", ms.size()}, {"vs", vs.size()},
      {"steps", steps.size()}, {"eps", eps.size()}, {"v_maxs", has_vmax ? vmaxs.size() : n}};
  for (const auto& l : lengths) {
    if (l.second != n) {
      throw_value_error(op, ": ", l.first, " must have one entry per param (", n, "), got ",
                        l.second);
    }
  }
  if (amsgrad && !has_vmax) {
    throw_value_error(op, ": v_maxs must be a list of arrays when amsgrad is True, got None");
  }
  std::vector<std::vector<Named>> arrays(n);
  std::vector<AdamTensor> tensors;
  tensors.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string at = "[" + std::to_string(i) + "]";
    const std::string names[5] = {"params" + at, "grads" + at, "ms" + at, "vs" + at,
                                  "v_maxs" + at};
    const py::handle step_obj = steps[i], eps_obj = eps[i];
    if (!py::isinstance<py::int_>(step_obj) || py::isinstance<py::bool_>(step_obj)) {
      throw_type_error(op, ": steps", at.c_str(), " must be an int, got ",
                       py::str(py::type::handle_of(step_obj).attr("__name__")).cast<std::string>());
    }
    if (!py::isinstance<py::float_>(eps_obj) && !py::isinstance<py::int_>(eps_obj)) {
      throw_type_error(op, ": eps", at.c_str(), " must be a float, got ",
                       py::str(py::type::handle_of(eps_obj).attr("__name__")).cast<std::string>());
    }
    arrays[i] = adam_arrays(op, names, params[i], grads[i], ms[i], vs[i],
                            has_vmax ? py::handle(vmaxs[i]) : py::handle(py::none()));
    const AdamParams hp = adam_params(op, step_obj.cast<int64_t>(), lr, beta1, beta2,
                                      eps_obj.cast<double>(), weight_decay,
                                      decoupled_weight_decay, amsgrad);
    tensors.push_back(adam_tensor(arrays[i], hp));
  }
  check_disjoint_tensors(op, arrays);
  // Work units: (tensor, kGrain-float piece), in tensor order.
  std::vector<std::pair<size_t, int64_t>> units;
  for (size_t i = 0; i < n; ++i) {
    for (int64_t b = 0; b < tensors[i].n; b += kGrain) units.emplace_back(i, b);
  }
  const OptimKernels& k = kSet.cpu();
  py::gil_scoped_release nogil;
  parallel_for(static_cast<int64_t>(units.size()), 1, [&](int64_t ub, int64_t ue) {
    for (int64_t u = ub; u < ue; ++u) {
      const AdamTensor& t = tensors[units[u].first];
      const int64_t b = units[u].second, e = std::min(t.n, b + kGrain);
      k.adam(t.p + b, t.g + b, t.m + b, t.v + b, t.vmax ? t.vmax + b : nullptr, e - b, t.hp);
    }
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
  m.def("adam_step_foreach", &adam_step_foreach, py::arg("params"), py::arg("grads"),
        py::arg("ms"), py::arg("vs"), py::kw_only(), py::arg("steps"), py::arg("lr"),
        py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("weight_decay") = 0.0,
        py::arg("amsgrad") = false, py::arg("v_maxs") = py::none(),
        py::arg("decoupled_weight_decay") = false);
  m.def("rmsprop_step", &rmsprop_step, py::arg("param"), py::arg("grad"), py::arg("square_avg"),
        py::kw_only(), py::arg("lr"), py::arg("alpha"), py::arg("eps"), py::arg("momentum") = 0.0,
        py::arg("momentum_buf") = py::none(), py::arg("centered") = false,
        py::arg("grad_avg") = py::none(), py::arg("weight_decay") = 0.0);
}

}  // namespace fv
