// peak probe binding: _C.fma_probe(iterations) runs the probe on every pool thread at the
// active ISA and returns the FLOPs executed (the caller times it).
#include <pybind11/pybind11.h>

#include <atomic>

#include "core/check.h"
#include "core/parallel.h"
#include "ops/peak/peak.h"

namespace fv {
namespace py = pybind11;
namespace {

const KernelSet<PeakKernels> kPeak = FV_KERNEL_SET(PeakKernels, peak_kernels);

double fma_probe(int64_t iterations) {
  if (iterations < 1) throw_value_error("fma_probe: iterations must be >= 1, got ", iterations);
  const PeakKernels& k = kPeak.cpu();
  const int threads = num_threads();
  std::atomic<int> sink{0};
  {
    py::gil_scoped_release nogil;
    parallel_for(threads, 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) sink += k.run(iterations) > 0.0f;
    });
  }
  return static_cast<double>(k.flops_per_iteration) * static_cast<double>(iterations) * threads;
}

}  // namespace

void bind_peak(py::module_& m) { m.def("fma_probe", &fma_probe, py::arg("iterations")); }

}  // namespace fv
