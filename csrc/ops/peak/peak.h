// peak: an FMA throughput probe, so benchmarks can state "% of this machine's measured fp32
// peak" instead of trusting a nominal clock (the boost clock here is well above 'cpu MHz').
// Each kernel runs `iterations` rounds of 12 independent FMA chains (enough to cover FMA
// latency x pipes on current x86 cores) and returns a value derived from the result so the
// compiler cannot drop the work.
#pragma once

#include <cstdint>

#include "core/dispatch.h"

namespace fv {

struct PeakKernels {
  int flops_per_iteration;  // 12 chains x lanes x 2
  float (*run)(int64_t iterations);
};

FV_DECLARE_KERNELS(PeakKernels, peak_kernels);

}  // namespace fv
