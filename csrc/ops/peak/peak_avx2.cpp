// peak probe, AVX2 (see peak.h): 12 independent 8-lane FMA chains.
#include <immintrin.h>

#include "ops/peak/peak.h"

namespace fv {
namespace {

float run(int64_t iterations) {
  __m256 acc[12];
  for (int j = 0; j < 12; ++j) acc[j] = _mm256_set1_ps(1.0f + 0.001f * j);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < iterations; ++i) {
    for (int j = 0; j < 12; ++j) acc[j] = _mm256_fmadd_ps(acc[j], a, b);
  }
  __m256 s = acc[0];
  for (int j = 1; j < 12; ++j) s = _mm256_add_ps(s, acc[j]);
  float lanes[8];
  _mm256_storeu_ps(lanes, s);
  float r = 0.0f;
  for (int j = 0; j < 8; ++j) r += lanes[j];
  return r;
}

}  // namespace

extern const PeakKernels peak_kernels_avx2 = {12 * 8 * 2, &run};

}  // namespace fv
