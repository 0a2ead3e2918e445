// fastvision._C: the private compiled module. fastvision/ re-exports the public API.
#include <pybind11/pybind11.h>

#include "core/buffer_cache.h"
#include "core/check.h"
#include "core/isa.h"
#include "core/parallel.h"
#include "ops/op_list.h"

namespace py = pybind11;

namespace fv {
#define FV_DECLARE_BIND(name) void bind_##name(py::module_& m);
FV_FOR_EACH_OP(FV_DECLARE_BIND)
#undef FV_DECLARE_BIND
}  // namespace fv

PYBIND11_MODULE(_C, m) {
  m.doc() = "fastvision compiled kernels (private; use fastvision / fastvision.ops)";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const fv::TypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    }
  });

  // Called by fastvision/__init__.py right after import (an exception raised inside module
  // init would surface as ImportError; a bad environment variable is a ValueError).
  m.def("_init_from_env", [] {
    fv::init_isa_from_env();
    fv::init_threads_from_env();
  });

  m.def("isa", [] { return std::string(fv::isa_name(fv::active_isa())); });
  m.def("detected_isa", [] { return std::string(fv::isa_name(fv::detected_isa())); });
  m.def("set_isa", [](const std::string& name) {
    fv::Isa isa;
    if (!fv::parse_isa(name.c_str(), &isa)) {
      fv::throw_value_error("set_isa: isa must be one of scalar, avx2, avx512, got '", name, "'");
    }
    fv::set_active_isa(isa);
  }, py::arg("isa"));
  m.def("get_num_threads", &fv::num_threads);
  m.def("set_num_threads", &fv::set_num_threads, py::arg("n"));
  m.attr("cuda_built") = false;
  m.def("cached_free_bytes", &fv::cached_free_bytes);
  m.def("empty_cache", &fv::empty_cache);

#define FV_CALL_BIND(name) fv::bind_##name(m);
  FV_FOR_EACH_OP(FV_CALL_BIND)
#undef FV_CALL_BIND
}
