// peak probe, scalar (see peak.h). -ffp-contract=off keeps mul+add separate: 2 FLOP each.
#include "ops/peak/peak.h"

namespace fv {
namespace {

float run(int64_t iterations) {
  float acc[12];
  for (int j = 0; j < 12; ++j) acc[j] = 1.0f + 0.001f * j;
  const float a = 0.999999f, b = 1e-7f;
  for (int64_t i = 0; i < iterations; ++i) {
    for (int j = 0; j < 12; ++j) acc[j] = acc[j] * a + b;
  }
  float s = 0.0f;
  for (int j = 0; j < 12; ++j) s += acc[j];
  return s;
}

}  // namespace

extern const PeakKernels peak_kernels_scalar = {12 * 2, &run};

}  // namespace fv
